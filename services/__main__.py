"""`python -m services` (what `make run` calls): the whole system on one machine, on SQLite files
under var/. Each service runs as its own process; their logs are interleaved, each line prefixed
with the service's name. Ctrl-C stops them all.
"""

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from shared.cli import DEFAULT_INTAKE
from shared.signing import KeyPair, jwks

VAR = Path("var")
SERVICES = {
    "intake": {
        "module": "services.intake",
        "env": {
            "SIAPNET_INTAKE_DATABASE_URL": f"sqlite:///{VAR}/intake.db",
            "SIAPNET_INTAKE_KEY_DIR": str(VAR / "keys" / "intake"),
            "SIAPNET_INTAKE_IDENTITY_JWKS_FILE": str(VAR / "keys" / "identity.jwks.json"),
        },
    },
}
COLOURS = ["36", "33", "35", "32", "34"]


def prepare() -> None:
    """Keys that must exist before the services start; a second run reuses them."""
    identity = KeyPair.load_or_create(VAR / "keys" / "identity" / "signing.pem")
    (VAR / "keys" / "identity.jwks.json").write_text(json.dumps(jwks(identity.public_jwk)))


def relay(name: str, colour: str, stream) -> None:
    prefix = f"\x1b[{colour}m{name:<8}\x1b[0m | " if sys.stdout.isatty() else f"{name:<8} | "
    for line in iter(stream.readline, ""):
        sys.stdout.write(prefix + line)
        sys.stdout.flush()


def main() -> None:
    prepare()
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    processes = []
    for (name, spec), colour in zip(SERVICES.items(), COLOURS, strict=False):
        process = subprocess.Popen(
            [sys.executable, "-m", spec["module"]],
            env={**os.environ, **spec["env"]},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=relay, args=(name, colour, process.stdout), daemon=True).start()
        processes.append(process)
    print(
        f"\nSIAPNET is starting on SQLite files under {VAR}/:\n"
        f"  intake   {DEFAULT_INTAKE}   (docs at {DEFAULT_INTAKE}/docs)\n"
        "  admin token:  .venv/bin/siapnet admin token\n"
        "  walkthrough:  README.md, 'Your first recommendation'\n"
        "Ctrl-C stops everything.\n",
        flush=True,
    )
    try:
        while not stopping.is_set() and all(process.poll() is None for process in processes):
            stopping.wait(0.5)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
    failed = [p.returncode for p in processes if p.returncode not in (0, -signal.SIGTERM)]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

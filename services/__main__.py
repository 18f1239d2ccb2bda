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

from shared.signing import KeyPair, jwks

VAR = Path("var")
IDENTITY_JWKS = str(VAR / "keys" / "identity.jwks.json")
INTAKE_URL, PROVINCE_URL, NATIONAL_URL = (
    "http://127.0.0.1:8001",
    "http://127.0.0.1:8002",
    "http://127.0.0.1:8003",
)
SERVICES = {
    "intake": {
        "module": "services.intake",
        "url": INTAKE_URL,
        "env": {
            "SIAPNET_INTAKE_DATABASE_URL": f"sqlite:///{VAR}/intake.db",
            "SIAPNET_INTAKE_KEY_DIR": str(VAR / "keys" / "intake"),
            "SIAPNET_INTAKE_IDENTITY_JWKS_FILE": IDENTITY_JWKS,
            "SIAPNET_INTAKE_DEFAULT_ROUTE": PROVINCE_URL,
        },
    },
    "banten": {
        "module": "services.recommendation",
        "url": PROVINCE_URL,
        "env": {
            "SIAPNET_RECOMMENDATION_TIER": "province",
            "SIAPNET_RECOMMENDATION_PROVINCES": '["36"]',
            "SIAPNET_RECOMMENDATION_PORT": "8002",
            "SIAPNET_RECOMMENDATION_DATABASE_URL": f"sqlite:///{VAR}/recommendation-36.db",
            "SIAPNET_RECOMMENDATION_KEY_DIR": str(VAR / "keys" / "recommendation-36"),
            "SIAPNET_RECOMMENDATION_IDENTITY_JWKS_FILE": IDENTITY_JWKS,
            "SIAPNET_RECOMMENDATION_INTAKE_URL": INTAKE_URL,
            "SIAPNET_RECOMMENDATION_NATIONAL_URL": NATIONAL_URL,
        },
    },
    "national": {
        "module": "services.recommendation",
        "url": NATIONAL_URL,
        "env": {
            "SIAPNET_RECOMMENDATION_TIER": "national",
            "SIAPNET_RECOMMENDATION_PORT": "8003",
            "SIAPNET_RECOMMENDATION_DATABASE_URL": f"sqlite:///{VAR}/recommendation-national.db",
            "SIAPNET_RECOMMENDATION_KEY_DIR": str(VAR / "keys" / "recommendation-national"),
            "SIAPNET_RECOMMENDATION_IDENTITY_JWKS_FILE": IDENTITY_JWKS,
            "SIAPNET_RECOMMENDATION_INTAKE_URL": INTAKE_URL,
            "SIAPNET_RECOMMENDATION_DEFAULT_PROVINCE_URL": PROVINCE_URL,
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


def migrate() -> None:
    """`make migrate`: bring every service's database to the newest schema."""
    for spec in SERVICES.values():
        subprocess.run(
            [sys.executable, "-m", spec["module"], "migrate"],
            env={**os.environ, **spec["env"]},
            check=True,
        )


def main() -> None:
    if sys.argv[1:] == ["migrate"]:
        migrate()
        return
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
    services = "".join(
        f"  {name:<9}{spec['url']}   (docs at {spec['url']}/docs)\n"
        for name, spec in SERVICES.items()
    )
    print(
        f"\nSIAPNET is starting on SQLite files under {VAR}/:\n"
        f"{services}"
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

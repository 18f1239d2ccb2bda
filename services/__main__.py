"""`python -m services` (what `make run` calls): the whole system on one machine, on SQLite files
under var/: the gateway over HTTPS, intake, the Banten province service and national. Each
service runs as its own process; their logs are interleaved, each line prefixed with the
service's name. Ctrl-C stops them all. A second run reuses the databases, keys, certificate and
accounts it finds.
"""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from services import demo
from services.local import Layout, Ports, stop

LAYOUT = Layout(Path("var"), Ports(gateway=int(os.environ.get("SIAPNET_PORT", "8443"))))
OFFICE_KEYS = LAYOUT.var / "office-keys"
COLOURS = ["36", "33", "35", "32", "34"]


def prepare() -> dict[str, str]:
    """What must exist before the services start: the token key, the certificate, the demo
    accounts. A second run reuses all of it. Returns the demo passwords."""
    LAYOUT.prepare()
    secrets_ = demo.passwords(LAYOUT.var)
    demo.seed_accounts(LAYOUT.database_url("gateway"), secrets_)
    return secrets_


def welcome(secrets_: dict[str, str], stopping: threading.Event) -> None:
    """Once the gateway answers: register the demo offices' keys, then say where to look."""
    try:
        demo.register_office_keys(LAYOUT.gateway_url, LAYOUT.ca, secrets_["admin"], OFFICE_KEYS)
    except (SystemExit, Exception) as exc:  # the services' own logs say why
        if not stopping.is_set():
            print(f"\nthe demo could not be set up: {exc}", flush=True)
        return
    services = "".join(f"  {s.name:<9}{s.url}\n" for s in LAYOUT.services() if s.name != "gateway")
    ca = LAYOUT.ca
    print(
        f"""
SIAPNET is running on SQLite files under {LAYOUT.var}/.

  gateway  {LAYOUT.gateway_url}   (API docs: {LAYOUT.gateway_url}/docs)
  behind it, on loopback only:
{services}
  Trust the local certificate authority: {ca}
    curl --cacert {ca} {LAYOUT.gateway_url}/healthz
    (Debian, system-wide: cp {ca} /usr/local/share/ca-certificates/siapnet.crt
     && update-ca-certificates)

  Log in as  admin          password {secrets_["admin"]}
             bawaslu-ri, bawaslu-36, bawaslu-36.01 ... bawaslu-36.74
                            password {secrets_["demo"]}
    .venv/bin/siapnet login --username bawaslu-36.01
  Office signing keys: {OFFICE_KEYS}/<office>.pem (registered)
  Walkthrough: README.md, 'The story'.  Ctrl-C stops everything.
""",
        flush=True,
    )


def relay(name: str, colour: str, stream) -> None:
    prefix = f"\x1b[{colour}m{name:<8}\x1b[0m | " if sys.stdout.isatty() else f"{name:<8} | "
    for line in iter(stream.readline, ""):
        sys.stdout.write(prefix + line)
        sys.stdout.flush()


def migrate() -> None:
    """`make migrate`: bring every service's database to the newest schema."""
    for service in LAYOUT.services():
        subprocess.run(
            [sys.executable, "-m", service.module, "migrate"],
            env={**os.environ, **service.env},
            check=True,
        )


def main() -> None:
    if sys.argv[1:] == ["migrate"]:
        migrate()
        return
    secrets_ = prepare()
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    processes = []
    for service, colour in zip(LAYOUT.services(), COLOURS, strict=False):
        process = LAYOUT.start(service, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(
            target=relay, args=(service.name, colour, process.stdout), daemon=True
        ).start()
        processes.append(process)
    threading.Thread(target=welcome, args=(secrets_, stopping), daemon=True).start()
    try:
        while not stopping.is_set() and all(process.poll() is None for process in processes):
            stopping.wait(0.5)
    finally:
        stop(processes)
    failed = [p.returncode for p in processes if p.returncode not in (0, -signal.SIGTERM)]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

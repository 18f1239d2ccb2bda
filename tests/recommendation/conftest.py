"""The whole chain in-process: intake → province → national and status events back, each service
on its own database with its own keys, talking HTTP through one in-process mesh."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.intake.app import create_app as create_intake
from services.recommendation.app import create_app as create_recommendation
from tests.conftest import recommendation_settings, registered_office, running, submit
from tests.support.mesh import Mesh
from tests.support.offices import OfficeSigner

FAST_OUTBOX = {
    "relay_enabled": True,
    "outbox_poll_seconds": 0.05,
    "outbox_backoff_base_seconds": 0.05,
    "outbox_backoff_cap_seconds": 0.3,
    # Every service here shares the test's one event loop, so one service's work would make
    # every relay wait. Making way is a matter of one process (tests/test_outbox.py).
    "outbox_busy_lateness_seconds": 0,
}
PEERS = {
    "intake": "http://intake",
    "recommendation-national": "http://national",
    "recommendation-province-36": "http://province",
    "recommendation-province-32": "http://province",
}


async def eventually(check, timeout: float = 15.0) -> None:
    """Wait until `check()` (async, returning bool) holds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the services to settle")
        await asyncio.sleep(0.05)


@dataclass
class System:
    mesh: Mesh
    intake: httpx.AsyncClient
    province: httpx.AsyncClient
    national: httpx.AsyncClient
    token_for: object
    admin_headers: dict[str, str]

    def as_office(self, office: str, *roles: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token_for(office, *(roles or ('officer',)))}"}

    async def office(self, office_id: str = "bawaslu-36.01") -> OfficeSigner:
        return await registered_office(self.intake, self.admin_headers, office_id)

    async def submitted(self, office: OfficeSigner, **claims) -> str:
        """Submit at intake and wait until the province holds it; the recommendation's id."""
        response = await submit(self.intake, office.sign(**claims))
        assert response.status_code == 201, response.text
        document_id = response.json()["document_id"]
        province_office = f"bawaslu-{office.office_id.removeprefix('bawaslu-')[:2]}"

        async def arrived() -> bool:
            answer = await self.province.get(
                f"/v1/recommendations/{document_id}", headers=self.as_office(province_office)
            )
            return answer.status_code == 200

        await eventually(arrived)
        return document_id

    async def act(
        self,
        client: httpx.AsyncClient,
        office: str,
        recommendation_id: str,
        action: str,
        details: dict | None = None,
        note: str | None = None,
    ):
        """Read the recommendation, then take `action` with its ETag."""
        headers = self.as_office(office)
        read = await client.get(f"/v1/recommendations/{recommendation_id}", headers=headers)
        assert read.status_code == 200, read.text
        return await client.post(
            f"/v1/recommendations/{recommendation_id}/transitions",
            json={"action": action, "note": note, "details": details},
            headers={**headers, "if-match": read.headers["etag"]},
        )

    async def status_at(self, client: httpx.AsyncClient, office: str, recommendation_id: str):
        answer = await client.get(
            f"/v1/recommendations/{recommendation_id}", headers=self.as_office(office)
        )
        return answer.json().get("status") if answer.status_code == 200 else None


@pytest.fixture
async def system(tmp_path: Path, identity_key, token_for, admin_headers) -> AsyncIterator[System]:
    mesh = Mesh()
    intake_app = create_intake(_intake_settings(tmp_path), relay_transport=mesh)
    province_app = create_recommendation(
        recommendation_settings(tmp_path, "province", peers=PEERS, **FAST_OUTBOX),
        peer_transport=mesh,
    )
    national_app = create_recommendation(
        recommendation_settings(
            tmp_path,
            "national",
            peers=PEERS,
            default_province_url="http://province",
            **FAST_OUTBOX,
        ),
        peer_transport=mesh,
    )
    for host, app in (
        ("intake", intake_app),
        ("province", province_app),
        ("national", national_app),
    ):
        mesh.add(host, app)
    async with AsyncExitStack() as stack:
        intake = await stack.enter_async_context(running(intake_app, "http://intake"))
        province = await stack.enter_async_context(running(province_app, "http://province"))
        national = await stack.enter_async_context(running(national_app, "http://national"))
        yield System(mesh, intake, province, national, token_for, admin_headers)


def _intake_settings(tmp_path: Path):
    from services.intake.settings import IntakeSettings

    return IntakeSettings(
        database_url=f"sqlite:///{tmp_path}/intake.db",
        key_dir=tmp_path / "keys" / "intake",
        identity_jwks_file=tmp_path / "identity.jwks.json",
        routes={"36": "http://province", "32": "http://province"},
        default_route="http://province",
        **FAST_OUTBOX,
    )

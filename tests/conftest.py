"""Fixtures: one database per test, the app's lifespan run, real keys and tokens."""

import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from services.intake.app import create_app as create_intake
from services.intake.settings import IntakeSettings
from shared.db import Database
from shared.identity import mint_access_token
from shared.signing import KeyPair, jwks
from tests.support.offices import OfficeSigner
from tests.support.postgres import Cluster, NoPostgres, start_cluster

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    try:
        cluster = start_cluster()
    except NoPostgres as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: Cluster) -> str:
    return postgres_cluster.create_database()


@pytest.fixture
def identity_key(tmp_path: Path) -> KeyPair:
    """The key access tokens are signed with; its JWKS is what services trust."""
    key = KeyPair.generate()
    (tmp_path / "identity.jwks.json").write_text(json.dumps(jwks(key.public_jwk)))
    return key


@pytest.fixture
def token_for(identity_key: KeyPair) -> Callable[..., str]:
    def mint(office: str, *roles: str, subject: str | None = None) -> str:
        return mint_access_token(
            identity_key,
            subject=subject or f"{office}-user",
            office=office,
            roles=list(roles or ("officer",)),
            token_id=str(uuid.uuid4()),
        )

    return mint


@pytest.fixture
def admin_headers(token_for) -> dict[str, str]:
    return {"authorization": f"Bearer {token_for('bawaslu-ri', 'admin', subject='admin')}"}


@pytest.fixture
def intake_settings(tmp_path: Path, identity_key: KeyPair) -> IntakeSettings:
    return IntakeSettings(
        database_url=f"sqlite:///{tmp_path}/intake.db",
        key_dir=tmp_path / "keys" / "intake",
        identity_jwks_file=tmp_path / "identity.jwks.json",
        relay_enabled=False,
    )


@pytest.fixture
async def intake(intake_settings: IntakeSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_intake(intake_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def pandeglang(intake: httpx.AsyncClient, admin_headers) -> OfficeSigner:
    """Bawaslu Kabupaten Pandeglang, with its key registered at intake."""
    return await registered_office(intake, admin_headers, "bawaslu-36.01")


async def registered_office(
    intake: httpx.AsyncClient, admin_headers: dict[str, str], office_id: str
) -> OfficeSigner:
    signer = OfficeSigner(office_id)
    response = await intake.post(
        f"/v1/offices/{office_id}/keys", json={"jwk": signer.key.public_jwk}, headers=admin_headers
    )
    assert response.status_code == 201, response.text
    return signer


def submit(client: httpx.AsyncClient, compact: str | bytes, **headers: str):
    return client.post(
        "/v1/documents",
        content=compact,
        headers={"content-type": "application/jose", **headers},
    )


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path: Path) -> str:
    """Each database kind a service runs on: an SQLite file, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/service.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A service's database at head, with no service around it: intake's, whose schema has the
    outbox and the audit log every service keeps."""
    from services.intake.app import MIGRATIONS

    database = Database(database_url, MIGRATIONS)
    database.upgrade()
    yield database
    database.dispose()


def recommendation_settings(tmp_path: Path, tier: str, **changes):
    from services.recommendation.settings import RecommendationSettings

    name = f"recommendation-{tier}"
    defaults = {
        "tier": tier,
        "provinces": ["36", "32"],
        "database_url": f"sqlite:///{tmp_path}/{name}.db",
        "key_dir": tmp_path / "keys" / name,
        "identity_jwks_file": tmp_path / "identity.jwks.json",
        "relay_enabled": False,
    }
    return RecommendationSettings(**{**defaults, **changes})


@asynccontextmanager
async def running(app, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An app with its lifespan run, and a client that talks to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def province(tmp_path: Path, identity_key: KeyPair) -> AsyncIterator[httpx.AsyncClient]:
    """A province service serving Banten (36) and Jawa Barat (32), alone, on its own SQLite."""
    from services.recommendation.app import create_app

    async with running(
        create_app(recommendation_settings(tmp_path, "province")), "http://province"
    ) as client:
        yield client


@pytest.fixture
async def national(tmp_path: Path, identity_key: KeyPair) -> AsyncIterator[httpx.AsyncClient]:
    """The national service, alone, on its own SQLite."""
    from services.recommendation.app import create_app

    async with running(
        create_app(recommendation_settings(tmp_path, "national")), "http://national"
    ) as client:
        yield client

"""The intake application factory."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from services.intake import models  # noqa: F401  (registers the tables)
from services.intake.api import router
from services.intake.settings import IntakeSettings
from shared.api import BodyLimit, operations, published_keys
from shared.db import Database
from shared.documents import province_service
from shared.identity import TrustedIssuer
from shared.logs import RequestIdMiddleware
from shared.metrics import install_metrics
from shared.outbox import OutboxRelay
from shared.peers import PeerKeys
from shared.problems import install_problem_handlers
from shared.signing import KeyPair

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: IntakeSettings | None = None,
    *,
    relay_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    settings = settings or IntakeSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings.database_url, MIGRATIONS)
        if settings.migrate_on_start:
            await asyncio.to_thread(database.upgrade)
        app.state.database = database
        app.state.signing_key = KeyPair.load_or_create(settings.key_dir / "signing.pem")
        relay = OutboxRelay(
            database,
            resolve=lambda destination: _route(settings, destination),
            policy=settings.retry_policy(),
            transport=relay_transport,
            poll_seconds=settings.outbox_poll_seconds,
        )
        app.state.relay = relay
        app.state.relay_wake = relay.wake
        # Province services' keys, fetched where the relay sends them their envelopes.
        app.state.peer_keys = PeerKeys(
            lambda peer: _route(settings, peer), transport=relay_transport
        )
        task = asyncio.create_task(relay.run()) if settings.relay_enabled else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            database.dispose()

    app = FastAPI(
        title="SIAPNET intake",
        version="1",
        lifespan=lifespan,
        description="Receives signed recommendations from Bawaslu offices.",
    )
    app.state.settings = settings
    app.state.trusted_issuer = TrustedIssuer(
        settings.identity_jwks_file,
        issuer=settings.identity_issuer,
        audience=settings.identity_audience,
    )
    install_problem_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    install_metrics(app, "intake")
    app.include_router(router)
    app.include_router(operations)
    app.include_router(published_keys)
    return app


def _route(settings: IntakeSettings, destination: str) -> str:
    province_code = destination.removeprefix(province_service(""))
    return settings.route_for(province_code)

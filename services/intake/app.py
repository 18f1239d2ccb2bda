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
from shared.api import (
    NO_TELEMETRY,
    install_service_basics,
    open_database_and_key,
    published_keys,
)
from shared.documents import province_service
from shared.metrics import busy_when_late
from shared.outbox import OutboxRelay
from shared.peers import PeerKeys

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: IntakeSettings | None = None,
    *,
    relay_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    settings = settings or IntakeSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await open_database_and_key(app, settings, MIGRATIONS)
        database = app.state.database
        relay = OutboxRelay(
            database,
            resolve=lambda destination: _route(settings, destination),
            policy=settings.retry_policy(),
            transport=relay_transport,
            poll_seconds=settings.outbox_poll_seconds,
            busy=busy_when_late(app, settings.outbox_busy_lateness_seconds),
            busy_pause_seconds=settings.outbox_busy_pause_seconds,
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
        docs_url=None,  # served by shared.apidocs, with no CDN
        redoc_url=None,
        telemetry=NO_TELEMETRY,
    )
    install_service_basics(app, settings, "intake")
    app.include_router(router)
    app.include_router(published_keys)
    return app


def _route(settings: IntakeSettings, destination: str) -> str:
    province_code = destination.removeprefix(province_service(""))
    return settings.route_for(province_code)

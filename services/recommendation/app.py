"""The recommendation service's application factory (one codebase, run per tier)."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from services.recommendation import models, service  # noqa: F401  (models registers the tables)
from services.recommendation.api import router
from services.recommendation.settings import RecommendationSettings
from services.recommendation.totals import router as totals_router
from shared.api import (
    NO_TELEMETRY,
    install_service_basics,
    open_database_and_key,
    published_keys,
)
from shared.metrics import busy_when_late
from shared.outbox import OutboxRelay
from shared.peers import PeerKeys

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger("siapnet.recommendation")


def create_app(
    settings: RecommendationSettings | None = None,
    *,
    peer_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """`peer_transport` carries outbox deliveries and key fetches (tests pass an in-process one)."""
    settings = settings or RecommendationSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await open_database_and_key(app, settings, MIGRATIONS)
        database = app.state.database
        app.state.context = service.Context(settings=settings, signing_key=app.state.signing_key)
        app.state.peer_keys = PeerKeys(settings.peer_url, transport=peer_transport)
        relay = OutboxRelay(
            database,
            resolve=settings.peer_url,
            policy=settings.retry_policy(),
            transport=peer_transport,
            poll_seconds=settings.outbox_poll_seconds,
            busy=busy_when_late(app, settings.outbox_busy_lateness_seconds),
            busy_pause_seconds=settings.outbox_busy_pause_seconds,
        )
        app.state.relay = relay
        app.state.relay_wake = relay.wake
        tasks = []
        if settings.relay_enabled:
            tasks.append(asyncio.create_task(relay.run()))
        if settings.tier == "national":
            tasks.append(asyncio.create_task(_overdue_job(app)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            database.dispose()

    title = f"SIAPNET recommendation ({settings.tier})"
    app = FastAPI(
        title=title,
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry=NO_TELEMETRY,
    )
    install_service_basics(app, settings, f"recommendation-{settings.tier}")
    app.include_router(router)
    app.include_router(totals_router)
    app.include_router(published_keys)
    return app


async def _overdue_job(app: FastAPI) -> None:
    """The system's `mark_overdue`: a PPK follow-up past its due date becomes overdue."""
    while True:
        try:
            while marked := await app.state.database.run(_mark_overdue, app):
                log.info("marked overdue", extra={"count": marked})
                app.state.relay_wake()
                if marked < service.OVERDUE_BATCH:
                    break
                await asyncio.sleep(0)  # on SQLite a batch runs on the loop: let requests in
        except Exception:
            log.exception("overdue check failed")
        await asyncio.sleep(app.state.settings.overdue_check_seconds)


def _mark_overdue(app: FastAPI) -> int:
    with app.state.database.session() as session:
        return service.mark_overdue(session, context=app.state.context)

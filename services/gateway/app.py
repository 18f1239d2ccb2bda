"""The gateway application factory."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from services.gateway import models  # noqa: F401  (registers the tables)
from services.gateway.api import router
from services.gateway.openapi import TAGS, with_shared_schemas
from services.gateway.ratelimit import RateLimiter
from services.gateway.routing import Upstreams
from services.gateway.settings import GatewaySettings
from shared.api import NO_TELEMETRY, install_service_basics, open_database_and_key, operations
from shared.signing import KeyPair, jwks

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: GatewaySettings | None = None,
    *,
    upstream_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await open_database_and_key(app, settings, MIGRATIONS)
        database = app.state.database
        publish_identity_keys(app.state.signing_key, settings.identity_jwks_file)
        app.state.upstreams = Upstreams(settings, upstream_transport)
        try:
            yield
        finally:
            await app.state.upstreams.close()
            database.dispose()

    app = FastAPI(
        title="SIAPNET exchange",
        version="1",
        description=(
            "The public door of the SIAPNET exchange: Bawaslu offices submit signed ASN "
            "neutrality recommendations and follow them up the hierarchy. Every error is RFC 9457 "
            "`application/problem+json`."
        ),
        openapi_url="/v1/openapi.json",
        docs_url=None,  # served by shared.apidocs, with no CDN
        redoc_url=None,
        openapi_tags=TAGS,
        lifespan=lifespan,
        telemetry=NO_TELEMETRY,
    )
    # The gateway alone serves browsers over HTTPS: HSTS is its promise to keep doing so.
    install_service_basics(app, settings, "gateway", hsts=True)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "if-match", "x-request-id"],
            expose_headers=["etag", "retry-after", "x-request-id", "location"],
        )
    app.include_router(router)
    app.openapi = with_shared_schemas(app, router, operations)  # type: ignore[method-assign]
    return app


def publish_identity_keys(key: KeyPair, path: Path) -> None:
    """Write the token key's public half where the services behind the gateway read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = json.dumps(jwks(key.public_jwk), indent=2)
    if not path.exists() or path.read_text() != document:
        path.write_text(document)

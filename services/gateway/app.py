"""The gateway application factory."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway import models  # noqa: F401  (registers the tables)
from services.gateway.api import router
from services.gateway.openapi import TAGS, with_shared_schemas
from services.gateway.ratelimit import RateLimiter
from services.gateway.routing import Upstreams
from services.gateway.settings import GatewaySettings
from shared.api import install_service_basics, open_database_and_key, operations
from shared.signing import KeyPair, jwks

MIGRATIONS = Path(__file__).parent / "migrations"
SECURITY_HEADERS = [
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
DOCS_CSP = (  # Swagger UI's page loads its script and styles from a CDN
    b"default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net;"
    b" style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net;"
    b" img-src 'self' data: https://fastapi.tiangolo.com"
)
API_CSP = b"default-src 'none'; frame-ancestors 'none'"


class SecurityHeaders:
    """HSTS and the usual hardening headers on every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope["path"] in ("/docs", "/redoc") else API_CSP

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                message["headers"] = [
                    *message.get("headers", []),
                    *extra,
                    (b"content-security-policy", csp),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


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
        docs_url="/docs",
        redoc_url=None,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    install_service_basics(app, settings, "gateway")
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "if-match", "x-request-id"],
            expose_headers=["etag", "retry-after", "x-request-id", "location"],
        )
    app.add_middleware(SecurityHeaders)
    app.include_router(router)
    app.openapi = with_shared_schemas(app, router, operations)  # type: ignore[method-assign]
    return app


def publish_identity_keys(key: KeyPair, path: Path) -> None:
    """Write the token key's public half where the services behind the gateway read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = json.dumps(jwks(key.public_jwk), indent=2)
    if not path.exists() or path.read_text() != document:
        path.write_text(document)

"""HTTP pieces every service shares: a database session per request, the signed-body reader,
the body cap and deadline, the security headers, and the operations routes (liveness,
readiness, published keys, metrics)."""

import asyncio
import json
import time
from collections.abc import Callable, Coroutine, Iterator
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request, Response, status
from fastapi.routing import APIRoute
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlmodel import Session
from starlette.types import ASGIApp

from shared.apidocs import api_docs
from shared.db import Database
from shared.identity import TrustedIssuer
from shared.logs import RequestIdMiddleware
from shared.metrics import install_metrics
from shared.outbox import JOSE_MEDIA_TYPE
from shared.problems import (
    MalformedRequest,
    NotFound,
    PayloadTooLarge,
    Problem,
    RequestTimeout,
    UnsupportedMediaType,
    install_problem_handlers,
    problem_response,
)
from shared.schemas import Health, JsonWebKeySet, Readiness
from shared.settings import ServiceSettings
from shared.signing import MAX_JSON_DEPTH, KeyPair, jwks, nests_deeper_than

# For every service's `FastAPI(telemetry=...)`: FastAPI's own OpenTelemetry bridge, off. Once an
# OpenTelemetry SDK is configured in the process, it hands each request's body (a password, a
# reporter's name) to span and log processors and exports crash messages with their stack; and
# it looks for a configured SDK on every request. Metrics and logs here are our own
# (shared.metrics, shared.logs), with personal data kept out.
NO_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}


class DepthCheckedRequest(Request):
    """A request whose JSON body is refused, as FastAPI refuses malformed JSON (422), when it
    nests deeper than MAX_JSON_DEPTH: before `json.loads` recurses into it (see
    `shared.signing.nests_deeper_than`)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            if nests_deeper_than(body):
                raise json.JSONDecodeError(f"nests deeper than {MAX_JSON_DEPTH} levels", "", 0)
            self._json = json.loads(body)
        return self._json


class JsonBodies(APIRoute):
    """Every service's route class: FastAPI's, reading JSON bodies with DepthCheckedRequest."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def depth_checked(request: Request) -> Response:
            return await handle(DepthCheckedRequest(request.scope, request.receive))

        return depth_checked


def database_session(request: Request) -> Iterator[Session]:
    with request.app.state.database.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(database_session)]


async def read_compact_jws(request: Request) -> str:
    """The body as a compact JWS: `application/jose`, at most `max_body_bytes`, ASCII."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != JOSE_MEDIA_TYPE:
        raise UnsupportedMediaType(
            f"send the compact JWS with Content-Type: {JOSE_MEDIA_TYPE}", accept=JOSE_MEDIA_TYPE
        )
    limit = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"a document may be at most {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PayloadTooLarge(f"a document may be at most {limit} bytes")
    try:
        return body.decode("ascii").strip()
    except UnicodeDecodeError:
        raise MalformedRequest("a compact JWS is ASCII only") from None


operations = APIRouter(tags=["ops"])
published_keys = APIRouter(tags=["ops"])


@published_keys.get(
    "/.well-known/jwks.json",
    response_model=JsonWebKeySet,
    operation_id="get_jwks",
    summary="This service's public signing keys",
)
def get_jwks(request: Request) -> dict:
    """This service's public signing keys."""
    return jwks(request.app.state.signing_key.public_jwk)


@operations.get("/healthz", response_model=Health, operation_id="get_health", summary="Liveness")
def get_health() -> dict:
    """Answers while the process runs."""
    return {"status": "ok"}


@operations.get(
    "/readyz",
    response_model=Readiness,
    response_model_exclude_none=True,
    operation_id="get_readiness",
    summary="Readiness",
    responses={503: {"model": Readiness, "description": "Not ready; try again shortly"}},
)
def get_readiness(request: Request, response: Response) -> dict:
    """Ready when the database answers and its migrations are at head."""
    try:
        at_head = request.app.state.database.at_head()
    except Exception:
        at_head = None
    if not at_head:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        response.headers["retry-after"] = "5"
        detail = "database unreachable" if at_head is None else "migrations not at head"
        return {"status": "unavailable", "detail": detail}
    return {"status": "ready"}


@operations.get("/metrics", operation_id="get_metrics", include_in_schema=False)
def get_metrics(request: Request) -> Response:
    """Prometheus metrics of this service alone (see shared.metrics)."""
    registry = getattr(request.app.state, "metrics", None)
    if registry is None:
        raise NotFound("this service exports no metrics")
    allowed = [ip_network(block) for block in request.app.state.settings.metrics_allow_from]
    client = request.client.host if request.client else ""
    try:
        address = ip_address(client)
    except ValueError:
        address = None
    if address is None or not any(address in block for block in allowed):
        raise NotFound("this service exports no metrics to this address")
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class BodyLimit:
    """Refuse any request body over `max_bytes` with 413 — declared or streamed — before a
    handler reads it into memory, and one still incomplete `timeout_seconds` after the request
    began with 408, closing its connection: a client dribbling bytes holds nothing for long."""

    def __init__(self, app, max_bytes: int, timeout_seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._answer(self._too_large(), scope, receive, send)
            return
        deadline = time.monotonic() + self.timeout_seconds
        seen = 0
        complete = refused = responding = False

        async def counted() -> dict:
            nonlocal seen, complete, refused
            if complete or refused or responding:
                return await receive()
            message = None
            with anyio.move_on_after(deadline - time.monotonic()):
                message = await receive()
            if message is None:
                problem: Problem = RequestTimeout(
                    f"the request body must arrive within {self.timeout_seconds:g} seconds",
                    headers={"connection": "close"},
                )
            elif message["type"] != "http.request":
                return message
            else:
                seen += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if seen <= self.max_bytes:
                    return message
                problem = self._too_large()
            # Answer now; to the handler the client is gone, so it stops reading.
            refused = True
            await self._answer(problem, scope, receive, send)
            return {"type": "http.disconnect"}

        async def unless_refused(message: dict) -> None:
            nonlocal responding
            if not refused:
                responding = True
                await send(message)

        await self.app(scope, counted, unless_refused)

    def _too_large(self) -> Problem:
        return PayloadTooLarge(f"a request body may be at most {self.max_bytes} bytes")

    @staticmethod
    async def _answer(problem: Problem, scope, receive, send) -> None:
        await problem_response(problem, scope["path"])(scope, receive, send)


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
DOCS_PATHS = ("/docs",)
# The docs page: Swagger UI's files from this service, and its inline start-up script.
DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline';"
    b" style-src 'self' 'unsafe-inline'; img-src 'self' data:"
)
API_CSP = b"default-src 'none'; frame-ancestors 'none'"


class SecurityHeaders:
    """The usual hardening headers on every answer, and HSTS where the service itself faces
    browsers over HTTPS. An answer that already names one of them keeps its own."""

    def __init__(self, app, *, hsts: bool) -> None:
        self.app = app
        self.headers = [*SECURITY_HEADERS, HSTS] if hsts else SECURITY_HEADERS

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope["path"] in DOCS_PATHS else API_CSP

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in self.headers if n not in present]
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", csp))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def wrap_everything(app: FastAPI, wrap: Callable[[ASGIApp], ASGIApp]) -> None:
    """Wrap the whole application, Starlette's own error middleware included, so that even the
    500 of a crash passes through `wrap` (`add_middleware` would put it inside)."""
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: wrap(build())  # type: ignore[method-assign]


def install_service_basics(
    app: FastAPI, settings: ServiceSettings, service: str, *, hsts: bool = False
) -> None:
    """What every service's app has: its settings, the access-token check, problem+json errors,
    the body cap and deadline, request ids, metrics, security headers (HSTS with `hsts`: only
    for a service that serves HTTPS itself), and the operations routes."""
    if app.docs_url or app.redoc_url:
        # FastAPI's own pages load Swagger UI and ReDoc from a CDN, and would shadow ours.
        raise ValueError(
            "create the app with docs_url=None, redoc_url=None: shared.apidocs serves /docs"
        )
    app.state.settings = settings
    app.state.trusted_issuer = TrustedIssuer(
        settings.identity_jwks_file,
        issuer=settings.identity_issuer,
        audience=settings.identity_audience,
    )
    install_problem_handlers(app)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        timeout_seconds=settings.body_timeout_seconds,
    )
    install_metrics(app, service)
    # Outside the error middleware: a crash's 500 carries its request id and the headers too.
    wrap_everything(app, RequestIdMiddleware)
    wrap_everything(app, lambda inner: SecurityHeaders(inner, hsts=hsts))
    app.include_router(operations)
    app.include_router(api_docs)


async def open_database_and_key(app: FastAPI, settings: ServiceSettings, migrations: Path) -> None:
    """The start of every service's lifespan: its database (migrated when the settings say so)
    and its signing key, made on first start."""
    database = Database(settings.database_url, migrations)
    if getattr(settings, "migrate_on_start", True):
        await asyncio.to_thread(database.upgrade)
    database.checkpoint_in_background()
    app.state.database = database
    app.state.signing_key = KeyPair.load_or_create(settings.key_dir / "signing.pem")

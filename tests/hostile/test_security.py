"""Specification: every answer of every service — success, refusal, unknown route, oversize body,
even a crash — carries the hardening headers (and the gateway, which serves HTTPS, HSTS); and the
logs of a whole README story, failed login included, hold no personal data, password, private key
or token, in the JSON lines operators read; and no request reaches an OpenTelemetry SDK by way of
FastAPI's own telemetry."""

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack

import fastapi.telemetry._asgi
import httpx
import pytest
from fastapi import FastAPI
from fastapi.telemetry import TelemetryData, get_telemetry_data

from services.gateway.app import create_app as create_gateway
from shared.logs import JsonFormatter
from tests.gateway.conftest import PASSWORD, eventually, gateway_settings
from tests.gateway.test_story import SANCTION, act
from tests.support.offices import OfficeSigner, example

pytestmark = pytest.mark.anyio

HARDENING = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
HSTS = "strict-transport-security"
WRONG_PASSWORD = "bukan-kata-sandinya-42"
SERVICES = ("gateway", "intake", "province", "national")


@pytest.fixture
async def services(front) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """Each service as a client across the network sees it, with a route that crashes: a crash
    is a 500 answer, not an exception."""
    apps = {
        "gateway": front.gateway.app,
        "intake": front.system.intake.app,
        "province": front.system.province.app,
        "national": front.system.national.app,
    }
    async with AsyncExitStack() as stack:
        clients = {}
        for name, app in apps.items():

            async def crash() -> None:
                raise RuntimeError("a bug")

            app.add_api_route("/test-only/crash", crash)
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            clients[name] = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url=f"http://{name}")
            )
        yield clients


def assert_hardened(answer: httpx.Response, *, hsts: bool) -> None:
    where = f"{answer.request.method} {answer.request.url} -> {answer.status_code}"
    for name, value in HARDENING.items():
        assert answer.headers.get(name) == value, (where, name, dict(answer.headers))
    csp = answer.headers.get("content-security-policy", "")
    assert "default-src" in csp, (where, csp)
    if answer.request.url.path != "/docs":
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, (where, csp)
    assert (HSTS in answer.headers) is hsts, (where, dict(answer.headers))
    if hsts:
        assert answer.headers[HSTS].startswith("max-age=31536000"), where


@pytest.mark.parametrize("service", SERVICES)
async def test_every_answer_of_every_service_carries_the_security_headers(front, services, service):
    client = services[service]
    token = await front.headers_for("bawaslu-36.01", "officer")
    protected = "/v1/me" if service == "gateway" else "/v1/recommendations"
    if service == "intake":
        protected = "/v1/offices/bawaslu-36.01/keys"
    answers = [
        await client.get("/healthz"),
        await client.get("/readyz"),
        await client.get("/.well-known/jwks.json"),
        await client.get("/metrics"),
        await client.get("/docs"),
        await client.get(protected, headers=token),  # 200
        await client.get(protected),  # 401
        await client.get("/no/such/path"),  # 404
        await client.delete("/healthz"),  # 405
        await client.post(protected, content=b"x" * (2 * 1024 * 1024), headers=token),  # 413
        await client.get("/test-only/crash", headers={"x-request-id": "crash-42"}),  # 500
    ]

    statuses = {answer.status_code for answer in answers}
    assert {200, 401, 404, 405, 413, 500} <= statuses, statuses
    for answer in answers:
        assert_hardened(answer, hsts=service == "gateway")
        assert answer.headers.get("x-request-id"), answer.request.url
    # An operator can find the crash in the logs by the id the client saw.
    assert answers[-1].headers["x-request-id"] == "crash-42"


async def test_a_cors_preflight_answered_by_the_middleware_carries_them_too(tmp_path):
    app = create_gateway(gateway_settings(tmp_path, cors_origins=["https://dashboard.example"]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://gateway") as client:
        answer = await client.options(
            "/v1/recommendations",
            headers={
                "origin": "https://dashboard.example",
                "access-control-request-method": "GET",
            },
        )

    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "https://dashboard.example"
    assert_hardened(answer, hsts=True)


# --- what telemetry sees --------------------------------------------------------------------


@pytest.fixture
def configured_telemetry(monkeypatch) -> None:
    """As if an operator had configured an OpenTelemetry SDK in the process."""
    monkeypatch.setattr(fastapi.telemetry._asgi, "_unconfigured", lambda provider: False)


async def telemetry_seen_by(app: FastAPI) -> TelemetryData | None:
    """What FastAPI's own telemetry holds of a request (its body, among others) while the
    request is handled."""
    seen: list[TelemetryData | None] = []

    async def look() -> None:
        seen.append(get_telemetry_data())

    app.add_api_route("/test-only/telemetry", look)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        await client.get("/test-only/telemetry")
    return seen[0]


async def test_no_service_hands_its_requests_to_an_opentelemetry_sdk(front, configured_telemetry):
    # FastAPI's default would: that is what this test stands guard against.
    assert await telemetry_seen_by(FastAPI()) is not None
    for app in (
        front.gateway.app,
        front.system.intake.app,
        front.system.province.app,
        front.system.national.app,
    ):
        assert await telemetry_seen_by(app) is None, app.title


# --- what the logs hold -----------------------------------------------------------------------


@pytest.fixture
def operator_logs() -> Iterator[io.StringIO]:
    """Every record of every service at DEBUG, as the JSON lines operators read."""
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter("any"))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lines
    root.removeHandler(handler)
    root.setLevel(level)


async def test_the_logs_of_the_readme_story_hold_no_personal_data_password_key_or_token(
    front, operator_logs
):
    report = example("report")
    office = OfficeSigner("bawaslu-36.01")
    front.create_account("petugas-pandeglang", "bawaslu-36.01", "officer")
    admin = await front.headers_for("bawaslu-ri", "admin")
    banten = await front.headers_for("bawaslu-36", "officer")
    national = await front.headers_for("bawaslu-ri", "officer")
    refused = await front.login("petugas-pandeglang", WRONG_PASSWORD)
    login = await front.login("petugas-pandeglang")
    assert refused.status_code == 401 and login.status_code == 200
    tokens = login.json()
    pandeglang = {"authorization": f"Bearer {tokens['access_token']}"}
    refreshed = await front.gateway.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 200

    registered = await front.gateway.post(
        "/v1/offices/bawaslu-36.01/keys", json={"jwk": office.key.public_jwk}, headers=admin
    )
    assert registered.status_code == 201, registered.text
    compact = office.sign(recommendation=report)
    submitted = await front.gateway.post(
        "/v1/recommendations",
        content=compact,
        headers={**pandeglang, "content-type": "application/jose"},
    )
    assert submitted.status_code == 201, submitted.text
    rec = submitted.json()["document_id"]
    again = await front.gateway.post(
        "/v1/recommendations",
        content=compact,
        headers={**pandeglang, "content-type": "application/jose"},
    )
    assert again.status_code == 200

    async def status_is(headers, status: str) -> bool:
        answer = await front.gateway.get(f"/v1/recommendations/{rec}", headers=headers)
        return answer.json().get("status") == status

    await eventually(lambda: status_is(banten, "submitted"))
    for action in ("verify", "forward"):
        assert (await act(front, banten, rec, action)).status_code == 200
    await eventually(lambda: status_is(national, "forwarded"))
    for action, details in (("send", None), ("review", None), ("recommend", SANCTION)):
        assert (await act(front, national, rec, action, details)).status_code == 200
    await eventually(lambda: status_is(pandeglang, "sanction_recommended"))
    reads = [
        await front.gateway.get(f"/v1/recommendations/{rec}", headers=pandeglang),
        await front.gateway.get(f"/v1/receipts/{rec}", headers=pandeglang),
        await front.gateway.get("/v1/recommendations", headers=banten),
        await front.gateway.get("/v1/stats?group_by=region,status", headers=national),
        await front.gateway.get("/v1/stats/vulnerability", headers=national),
    ]
    assert all(answer.status_code == 200 for answer in reads)
    assert report["reporter"]["name"] in reads[0].text  # on the path: Pandeglang sees it

    keys = [
        office.key,
        front.gateway.app.state.signing_key,
        front.system.intake.app.state.signing_key,
        front.system.province.app.state.signing_key,
        front.system.national.app.state.signing_key,
    ]
    secrets = {
        "reporter name": report["reporter"]["name"],
        "reporter contact": report["reporter"]["contact"],
        "subject name": report["subject"]["name"],
        "subject NIP": report["subject"]["nip"],
        "summary": report["summary"],
        "password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "PEM private key": "PRIVATE KEY",
        "refresh token": tokens["refresh_token"],
        "rotated refresh token": refreshed.json()["refresh_token"],
        "access token": tokens["access_token"],
        **{f"private JWK d of {key.kid}": key.private_jwk()["d"] for key in keys},
    }
    logged = operator_logs.getvalue()
    lines = logged.splitlines()
    assert len(lines) > 50 and all(json.loads(line) for line in lines)
    assert '"status": 401' in logged  # the failed login was logged, without its password
    leaked = {what: value for what, value in secrets.items() if value in logged}
    assert not leaked, leaked

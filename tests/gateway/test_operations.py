"""Specification: what operators rely on at the door — limits, failures, headers, keys."""

import asyncio
import logging
import time

import pytest

from services.gateway.app import create_app
from tests.conftest import running
from tests.gateway.conftest import gateway_settings

pytestmark = pytest.mark.anyio


async def test_a_rate_limit_trips_and_recovers(front, tmp_path, system, identity_key):
    identity_key.save(tmp_path / "keys" / "limited" / "signing.pem")
    settings = gateway_settings(
        tmp_path,
        database_url=f"sqlite:///{tmp_path}/limited.db",
        key_dir=tmp_path / "keys" / "limited",
        rate_limit_per_minute=600,
        rate_limit_burst=3,
    )
    headers = await front.headers_for("bawaslu-36")
    async with running(create_app(settings, upstream_transport=system.mesh), "https://g") as gw:
        answers = [await gw.get("/v1/me", headers=headers) for _ in range(4)]
        await asyncio.sleep(0.25)  # 10 requests a second refill
        recovered = await gw.get("/v1/me", headers=headers)

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].headers["retry-after"] == "1"
    assert answers[-1].headers["content-type"] == "application/problem+json"
    assert recovered.status_code == 200


async def test_an_upstream_that_is_down_answers_503_quickly(front):
    headers = await front.headers_for("bawaslu-36")
    front.system.mesh.down.add("province")

    started = time.monotonic()
    answer = await front.gateway.get("/v1/recommendations", headers=headers)
    elapsed = time.monotonic() - started

    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert answer.headers["content-type"] == "application/problem+json"
    assert elapsed < 1.0


async def test_every_answer_carries_hsts_and_hardening_headers(front):
    for path in ("/healthz", "/v1/me", "/no/such/path"):
        answer = await front.gateway.get(path)
        assert answer.headers["strict-transport-security"].startswith("max-age=")
        assert answer.headers["x-content-type-options"] == "nosniff"


async def test_the_request_id_travels_to_the_service_behind(front, caplog):
    caplog.set_level(logging.INFO)
    headers = await front.headers_for("bawaslu-36")

    answer = await front.gateway.get(
        "/v1/recommendations", headers={**headers, "x-request-id": "req-from-mobile-42"}
    )

    assert answer.headers["x-request-id"] == "req-from-mobile-42"
    carried = [r for r in caplog.records if getattr(r, "request_id", None) == "req-from-mobile-42"]
    assert {r.path for r in carried if r.name == "siapnet.http"} == {"/v1/recommendations"}
    assert len([r for r in carried if r.name == "siapnet.http"]) == 2  # gateway and province


async def test_the_jwks_publishes_every_services_keys(front):
    keys = {k["kid"] for k in (await front.gateway.get("/.well-known/jwks.json")).json()["keys"]}

    for client in (
        front.system.intake,
        front.system.province,
        front.system.national,
        front.gateway,
    ):
        assert client.app.state.signing_key.kid in keys


async def test_the_openapi_description_names_every_operation(front):
    spec = (await front.gateway.get("/v1/openapi.json")).json()

    operations = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {
        "issue_token",
        "revoke_token",
        "get_me",
        "submit_recommendation",
        "list_recommendations",
        "get_recommendation",
        "transition_recommendation",
        "get_stats",
        "get_vulnerability",
        "get_receipt",
        "register_office_key",
        "list_office_keys",
        "retire_office_key",
        "get_jwks",
    } <= operations


async def test_the_gateway_exports_its_metrics(front):
    headers = await front.headers_for("bawaslu-36")
    await front.gateway.get(
        "/v1/recommendations/00000000-0000-4000-8000-000000000000", headers=headers
    )

    text = (await front.gateway.get("/metrics")).text

    assert 'route="/v1/recommendations/{recommendation_id}"' in text
    assert 'service="gateway"' in text


async def test_an_oversized_body_is_413_everywhere_before_it_is_read(front):
    headers = await front.headers_for("bawaslu-36")
    huge = b'{"action": "verify", "note": "' + b"x" * (2 * 1024 * 1024) + b'"}'

    declared = await front.gateway.post(
        "/v1/recommendations/00000000-0000-4000-8000-000000000000/transitions",
        content=huge,
        headers={**headers, "content-type": "application/json"},
    )

    async def streamed():
        for start in range(0, len(huge), 65536):
            yield huge[start : start + 65536]

    chunked = await front.gateway.post(
        "/v1/accounts", content=streamed(), headers={**headers, "content-type": "application/json"}
    )

    assert declared.status_code == chunked.status_code == 413
    assert chunked.headers["content-type"] == "application/problem+json"


async def test_the_gateways_metrics_are_not_for_the_public(front, tmp_path, system, identity_key):
    identity_key.save(tmp_path / "keys" / "closed" / "signing.pem")
    settings = gateway_settings(
        tmp_path,
        database_url=f"sqlite:///{tmp_path}/closed.db",
        key_dir=tmp_path / "keys" / "closed",
        metrics_allow_from=["10.0.0.0/8"],
    )
    async with running(create_app(settings, upstream_transport=system.mesh), "https://g") as gw:
        refused = await gw.get("/metrics")  # the in-process client's address is 127.0.0.1

    assert refused.status_code == 404
    assert "siapnet_http" not in refused.text

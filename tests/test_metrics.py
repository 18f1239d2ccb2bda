"""Specification: every service answers GET /metrics for Prometheus — requests by route template
and status, their latency, the outbox's pending and failed messages, and how long the process
stood still (its event loop late, its garbage collector pausing)."""

import asyncio
import gc
import time

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import select

from services.intake.app import create_app as create_intake
from shared.metrics import busy_when_late, install_metrics
from shared.outbox import DeliveryState, OutboxMessage
from tests.conftest import running, submit

pytestmark = pytest.mark.anyio

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    return response.text


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the one sample `name{labels}` in an exposition, or None when absent."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    return None


async def test_requests_are_counted_by_route_template_and_status(intake, pandeglang, admin_headers):
    document_id = (await submit(intake, pandeglang.sign())).json()["document_id"]
    for _ in range(2):
        read = await intake.get(f"/v1/documents/{document_id}", headers=admin_headers)
        assert read.status_code == 200
    missing = await intake.get(f"/v1/documents/{UNKNOWN_ID}", headers=admin_headers)
    assert missing.status_code == 404

    text = await scrape(intake)

    requests = "siapnet_http_requests_total"
    by_id = {"service": "intake", "method": "GET", "route": "/v1/documents/{document_id}"}
    assert sample(text, requests, **by_id, status="200") == 2.0
    assert sample(text, requests, **by_id, status="404") == 1.0
    submitted = {"service": "intake", "method": "POST", "route": "/v1/documents"}
    assert sample(text, requests, **submitted, status="201") == 1.0
    assert document_id not in text and UNKNOWN_ID not in text


async def test_a_path_no_route_serves_counts_as_unmatched(intake):
    await intake.get("/v1/nothing-here/12345")

    text = await scrape(intake)

    labels = {"service": "intake", "method": "GET", "route": "unmatched", "status": "404"}
    assert sample(text, "siapnet_http_requests_total", **labels) == 1.0
    assert "nothing-here" not in text


async def test_latencies_fall_into_buckets_from_a_millisecond_to_ten_seconds(intake):
    await intake.get("/healthz")

    text = await scrape(intake)

    name = "siapnet_http_request_duration_seconds"
    labels = {"service": "intake", "method": "GET", "route": "/healthz"}
    assert sample(text, f"{name}_count", **labels) == 1.0
    assert sample(text, f"{name}_sum", **labels) > 0
    for bound in ("0.001", "0.1", "1.0", "10.0", "+Inf"):
        assert sample(text, f"{name}_bucket", **labels, le=bound) is not None
    assert sample(text, f"{name}_bucket", **labels, le="+Inf") == 1.0


async def test_an_undelivered_submission_shows_as_pending_outbox(intake, pandeglang):
    await submit(intake, pandeglang.sign())

    text = await scrape(intake)

    assert 'siapnet_outbox_pending{service="intake"} 1.0' in text
    assert 'siapnet_outbox_failed{service="intake"} 0.0' in text


async def test_a_message_given_up_on_shows_as_failed_outbox(intake, pandeglang):
    await submit(intake, pandeglang.sign())
    with intake.app.state.database.session() as session:
        message = session.exec(select(OutboxMessage)).one()
        message.state = DeliveryState.failed
        session.add(message)
        session.commit()

    text = await scrape(intake)

    assert sample(text, "siapnet_outbox_failed", service="intake") == 1.0
    assert sample(text, "siapnet_outbox_pending", service="intake") == 0.0


async def test_metrics_still_answer_when_the_outbox_cannot_be_read(intake):
    intake.app.state.database.downgrade("base")

    text = await scrape(intake)

    assert sample(text, "siapnet_outbox_pending", service="intake") is None
    assert sample(text, "siapnet_outbox_failed", service="intake") is None


async def test_two_apps_in_one_process_keep_separate_counts(intake, intake_settings, tmp_path):
    other_settings = intake_settings.model_copy(
        update={"database_url": f"sqlite:///{tmp_path}/other.db", "key_dir": tmp_path / "other"}
    )
    async with running(create_intake(other_settings), "http://other") as other:
        for _ in range(3):
            await intake.get("/healthz")
        await other.get("/healthz")

        ours, theirs = await scrape(intake), await scrape(other)

    labels = {"service": "intake", "method": "GET", "route": "/healthz", "status": "200"}
    assert sample(ours, "siapnet_http_requests_total", **labels) == 3.0
    assert sample(theirs, "siapnet_http_requests_total", **labels) == 1.0


async def test_the_province_service_exports_its_own_metrics(province, intake, token_for):
    headers = {"authorization": f"Bearer {token_for('bawaslu-36')}"}
    missing = await province.get(f"/v1/recommendations/{UNKNOWN_ID}", headers=headers)
    assert missing.status_code == 404

    text = await scrape(province)

    labels = {
        "service": "recommendation-province",
        "method": "GET",
        "route": "/v1/recommendations/{recommendation_id}",
        "status": "404",
    }
    assert sample(text, "siapnet_http_requests_total", **labels) == 1.0
    assert sample(text, "siapnet_outbox_pending", service="recommendation-province") == 0.0
    assert UNKNOWN_ID not in text
    assert "recommendation-province" not in await scrape(intake)


async def test_routes_included_under_a_prefix_are_labelled_with_the_whole_template():
    offices = APIRouter()

    @offices.get("/offices/{office_id}")
    def get_office(office_id: str) -> dict:
        return {"id": office_id}

    app = FastAPI()
    install_metrics(app, "example")
    app.include_router(offices, prefix="/v2/{tier}")
    async with running(app, "http://example") as client:
        assert (await client.get("/v2/province/offices/bawaslu-36")).status_code == 200

    text = generate_latest(app.state.metrics).decode()
    labels = {
        "service": "example",
        "method": "GET",
        "route": "/v2/{tier}/offices/{office_id}",
        "status": "200",
    }
    assert sample(text, "siapnet_http_requests_total", **labels) == 1.0
    assert "bawaslu-36" not in text


# --- when the process stood still --------------------------------------------------------------


def longer_than(text: str, name: str, seconds: str, **labels: str) -> float:
    """How many observations of a histogram took longer than `seconds` (a bucket bound)."""
    count = sample(text, f"{name}_count", **labels) or 0.0
    return count - (sample(text, f"{name}_bucket", **labels, le=seconds) or 0.0)


async def test_a_blocked_event_loop_is_counted_with_how_long_it_stood(intake):
    lag = "siapnet_event_loop_lag_seconds"
    await asyncio.sleep(0.25)  # the watch is running
    before = await scrape(intake)

    # A statement that holds the loop for 0.4 s, as a stuck SQLite write would: the timer due
    # within the next 0.1 s runs 0.3-0.4 s late.
    time.sleep(0.4)
    await asyncio.sleep(0.15)

    after = await scrape(intake)
    stalls = [
        longer_than(after, lag, bound, service="intake")
        - longer_than(before, lag, bound, service="intake")
        for bound in ("0.1", "0.25", "0.5")
    ]
    assert stalls == [1.0, 1.0, 0.0]  # one stall, of between a quarter and half a second
    assert (sample(after, f"{lag}_count", service="intake") or 0) >= 3


async def test_a_loop_late_check_after_check_reads_as_busy_until_it_catches_up(intake):
    """What an outbox relay asks before it takes the cores from requests (shared.outbox)."""
    busy = busy_when_late(intake.app, 0.05)
    await asyncio.sleep(0.25)
    assert not busy()

    time.sleep(0.3)  # more work queued on the loop than it can do
    await asyncio.sleep(0.15)
    assert busy()

    await asyncio.sleep(0.6)  # six checks on time: each halves what is remembered
    assert not busy()
    assert busy_when_late(intake.app, 0) is None  # 0: never busy


async def test_garbage_collections_are_timed_by_generation(intake):
    pauses = "siapnet_gc_pause_seconds"
    full = {"service": "intake", "generation": "2"}
    before = sample(await scrape(intake), f"{pauses}_count", **full) or 0.0

    gc.collect()

    after = await scrape(intake)
    assert sample(after, f"{pauses}_count", **full) == before + 1
    assert (sample(after, f"{pauses}_sum", **full) or 0.0) > 0.0


async def test_the_watch_stops_with_the_app(tmp_path):
    app = FastAPI()
    install_metrics(app, "example")
    callbacks = list(gc.callbacks)
    async with running(app, "http://example"):
        assert len(gc.callbacks) == len(callbacks) + 1
        assert any(task.get_name() == "event-loop-lag" for task in asyncio.all_tasks())

    assert gc.callbacks == callbacks
    await asyncio.sleep(0)
    assert not any(task.get_name() == "event-loop-lag" for task in asyncio.all_tasks())

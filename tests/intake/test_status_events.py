"""Specification: intake learns from a province service, over a signed status event, that a
recommendation was returned, so the office can correct it with a document that supersedes it."""

import asyncio
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select

from services.intake.settings import IntakeSettings
from shared import audit
from shared.documents import RECEIPT_TYP, STATUS_TYP, ReceiptPayload
from shared.signing import KeyPair, jwks, unverified_payload, verify
from tests.conftest import submit
from tests.support.servers import ThreadedServer
from tests.support.snapshot import snapshot

pytestmark = pytest.mark.anyio

BANTEN = "recommendation-province-36"


class ProvinceService:
    """The province service as intake sees it: a service key, published at its JWKS address."""

    def __init__(self) -> None:
        self.key = KeyPair.generate()
        self.fetches = 0
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.get("/.well-known/jwks.json")(self._jwks)
        self.server = ThreadedServer(self.app)

    def _jwks(self) -> dict:
        with self._lock:
            self.fetches += 1
        return jwks(self.key.public_jwk)

    def event(self, recommendation_id: str, **claims: Any) -> str:
        """A signed status event about `recommendation_id`, by default `returned`, to intake."""
        payload = {
            "jti": str(uuid.uuid4()),
            "iss": BANTEN,
            "aud": "intake",
            "iat": int(time.time()),
            "recommendation_id": recommendation_id,
            "sequence": 1,
            "from": "submitted",
            "to": "returned",
            "at": datetime.now(UTC).isoformat(),
            "actor": {"office": "bawaslu-36", "user": "bawaslu-36-user"},
            "note": "Please attach the screenshot.",
            "details": {"reason": "the evidence is missing"},
        }
        payload.update(claims)
        return self.key.sign(payload, STATUS_TYP)


@pytest.fixture
def province_service() -> Iterator[ProvinceService]:
    province = ProvinceService()
    province.server.start()
    yield province
    province.server.stop()


@pytest.fixture
def intake_settings(
    intake_settings: IntakeSettings, province_service: ProvinceService
) -> IntakeSettings:
    """Intake routing Banten (36) and Jawa Barat (32) to the one province service running."""
    url = province_service.server.url
    return intake_settings.model_copy(update={"routes": {"36": url, "32": url}})


def send(intake: httpx.AsyncClient, event: str):
    return intake.post(
        "/exchange/v1/status-events", content=event, headers={"content-type": "application/jose"}
    )


async def submitted(intake: httpx.AsyncClient, office) -> str:
    response = await submit(intake, office.sign())
    assert response.status_code == 201, response.text
    return response.json()["document_id"]


async def status_of(intake: httpx.AsyncClient, token_for, document_id: str) -> str:
    headers = {"authorization": f"Bearer {token_for('bawaslu-36.01')}"}
    response = await intake.get(f"/v1/documents/{document_id}", headers=headers)
    return response.json()["status"]


def status_changes(intake: httpx.AsyncClient) -> list[dict]:
    with intake.app.state.database.session() as session:
        entries = session.exec(
            select(audit.AuditEntry).where(audit.AuditEntry.kind == audit.AuditKind.status_changed)
        ).all()
        return [{"document_id": e.document_id, **json.loads(e.details)} for e in entries]


async def test_a_returned_event_lets_the_office_supersede_its_recommendation(
    intake, pandeglang, province_service, token_for
):
    document_id = await submitted(intake, pandeglang)
    event = province_service.event(document_id)

    answer = await send(intake, event)

    assert answer.status_code == 202, answer.text
    assert await status_of(intake, token_for, document_id) == "returned"
    assert status_changes(intake) == [
        {
            "document_id": document_id,
            "from": "received",
            "to": "returned",
            "event_id": unverified_payload(event)["jti"],
            "sender": BANTEN,
        }
    ]
    correction = await submit(intake, pandeglang.sign(supersedes=document_id))
    assert correction.status_code == 201, correction.text
    assert await status_of(intake, token_for, document_id) == "superseded"


async def test_the_same_event_twice_is_harmless(intake, pandeglang, province_service, token_for):
    document_id = await submitted(intake, pandeglang)
    event = province_service.event(document_id)
    assert (await send(intake, event)).status_code == 202
    before = snapshot(intake.app.state.database)

    again = await send(intake, event)

    assert again.status_code == 202, again.text
    assert snapshot(intake.app.state.database) == before
    assert await status_of(intake, token_for, document_id) == "returned"
    assert len(status_changes(intake)) == 1
    assert province_service.fetches == 1


async def test_a_returned_event_never_moves_a_superseded_recommendation_back(
    intake, pandeglang, province_service, token_for
):
    document_id = await submitted(intake, pandeglang)
    assert (await send(intake, province_service.event(document_id))).status_code == 202
    assert (await submit(intake, pandeglang.sign(supersedes=document_id))).status_code == 201

    late = await send(intake, province_service.event(document_id))

    assert late.status_code == 202
    assert await status_of(intake, token_for, document_id) == "superseded"


@pytest.mark.parametrize("to", ["verified", "forwarded", "not_proven"])
async def test_other_statuses_are_acknowledged_and_change_nothing(
    intake, pandeglang, province_service, to
):
    document_id = await submitted(intake, pandeglang)
    before = snapshot(intake.app.state.database)

    answer = await send(intake, province_service.event(document_id, to=to))

    assert answer.status_code == 202, answer.text
    assert snapshot(intake.app.state.database) == before


async def test_an_event_signed_with_a_key_the_province_does_not_publish_is_refused(
    intake, pandeglang, province_service
):
    document_id = await submitted(intake, pandeglang)
    impostor = ProvinceService()  # same claims, a key nobody published
    before = snapshot(intake.app.state.database)

    answer = await send(intake, impostor.event(document_id))

    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert snapshot(intake.app.state.database) == before


async def test_a_province_cannot_speak_about_another_provinces_recommendation(
    intake, pandeglang, province_service
):
    document_id = await submitted(intake, pandeglang)
    before = snapshot(intake.app.state.database)

    answer = await send(
        intake, province_service.event(document_id, iss="recommendation-province-32")
    )

    assert answer.status_code == 404
    assert snapshot(intake.app.state.database) == before


async def test_an_event_about_an_unknown_recommendation_is_not_found(intake, province_service):
    answer = await send(intake, province_service.event(str(uuid.uuid4())))

    assert answer.status_code == 404


@pytest.mark.parametrize("aud", ["recommendation-national", "siapnet:intake", BANTEN])
async def test_an_event_addressed_to_another_service_is_refused(
    intake, pandeglang, province_service, aud
):
    document_id = await submitted(intake, pandeglang)
    before = snapshot(intake.app.state.database)

    answer = await send(intake, province_service.event(document_id, aud=aud))

    assert answer.status_code == 401
    assert snapshot(intake.app.state.database) == before


@pytest.mark.parametrize(
    "sender",
    ["recommendation-national", "recommendation-province-99", "recommendation-province-36.01"],
)
async def test_only_a_province_service_may_send_status_events(
    intake, pandeglang, province_service, sender
):
    document_id = await submitted(intake, pandeglang)

    answer = await send(intake, province_service.event(document_id, iss=sender))

    assert answer.status_code == 401
    assert province_service.fetches == 0  # refused before any key was fetched


async def test_an_event_with_invalid_fields_is_refused(intake, pandeglang, province_service):
    document_id = await submitted(intake, pandeglang)
    before = snapshot(intake.app.state.database)

    answer = await send(intake, province_service.event(document_id, sequence=0))

    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "sequence"
    assert snapshot(intake.app.state.database) == before


async def test_a_province_that_is_down_makes_intake_answer_503_and_change_nothing(
    intake, pandeglang, province_service, token_for
):
    document_id = await submitted(intake, pandeglang)
    event = province_service.event(document_id)
    province_service.server.stop()  # before intake ever fetched its keys
    before = snapshot(intake.app.state.database)

    answer = await send(intake, event)

    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert "cannot fetch the keys of recommendation-province-36" in answer.json()["detail"]
    assert snapshot(intake.app.state.database) == before

    province_service.server.start()  # the same port: the outbox's retry gets through
    await asyncio.sleep(intake.app.state.peer_keys.min_refetch_seconds + 0.1)
    retried = await send(intake, event)
    assert retried.status_code == 202, retried.text
    assert await status_of(intake, token_for, document_id) == "returned"


async def test_the_acknowledgement_verifies_with_intakes_published_keys(
    intake, pandeglang, province_service
):
    received = (await submit(intake, pandeglang.sign())).json()
    event = province_service.event(received["document_id"])

    answer = await send(intake, event)

    published = (await intake.get("/.well-known/jwks.json")).json()["keys"]
    keys = {key["kid"]: key for key in published}
    receipt = verify(answer.json()["acknowledgement"], typ=RECEIPT_TYP, key_for=keys.get)
    acknowledgement = ReceiptPayload.model_validate(receipt.payload)
    assert acknowledgement.iss == "intake"
    assert acknowledgement.aud == BANTEN
    assert str(acknowledgement.sub) == unverified_payload(event)["jti"]
    assert acknowledgement.document_sha256 == hashlib.sha256(event.encode()).hexdigest()
    assert acknowledgement.registration_number == received["registration_number"]


async def test_a_status_event_must_be_sent_as_application_jose(
    intake, pandeglang, province_service
):
    document_id = await submitted(intake, pandeglang)

    answer = await intake.post(
        "/exchange/v1/status-events",
        content=province_service.event(document_id),
        headers={"content-type": "application/json"},
    )

    assert answer.status_code == 415


@pytest.mark.parametrize(
    "claims",
    [{"iat": int(time.time()) + 3600}, {"exp": int(time.time()) - 3600}],
    ids=["signed in the future", "expired"],
)
async def test_an_event_outside_its_time_window_is_refused(
    intake, pandeglang, province_service, claims
):
    document_id = await submitted(intake, pandeglang)
    before = snapshot(intake.app.state.database)

    answer = await send(intake, province_service.event(document_id, **claims))

    assert answer.status_code == 401
    assert snapshot(intake.app.state.database) == before

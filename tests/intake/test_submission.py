"""Specification: an office submits a signed recommendation to intake."""

import hashlib

import pytest

from shared.documents import RECEIPT_TYP
from shared.signing import verify
from tests.conftest import submit

pytestmark = pytest.mark.anyio


async def test_a_signed_recommendation_is_stored_and_answered_with_a_signed_receipt(
    intake, pandeglang
):
    compact = pandeglang.sign()

    response = await submit(intake, compact)

    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["registration_number"].startswith("3601-")
    assert answer["registration_number"].endswith("-000001")
    jwks = (await intake.get("/.well-known/jwks.json")).json()["keys"]
    receipt = verify(
        answer["receipt"],
        typ=RECEIPT_TYP,
        key_for=lambda kid: next((k for k in jwks if k["kid"] == kid), None),
    ).payload
    assert receipt["sub"] == answer["document_id"]
    assert receipt["aud"] == "bawaslu-36.01"
    assert receipt["document_sha256"] == hashlib.sha256(compact.encode()).hexdigest()
    assert receipt["registration_number"] == answer["registration_number"]


async def test_the_exact_bytes_are_stored(intake, pandeglang):
    compact = pandeglang.sign()
    document_id = (await submit(intake, compact)).json()["document_id"]

    with intake.app.state.database.session() as session:
        from services.intake.models import Document

        stored = session.get(Document, document_id)
    assert stored.compact == compact
    assert stored.sha256 == hashlib.sha256(compact.encode()).hexdigest()


async def test_the_same_bytes_again_answer_200_with_the_same_receipt(intake, pandeglang):
    compact = pandeglang.sign()
    first = await submit(intake, compact)

    again = await submit(intake, compact)

    assert again.status_code == 200
    assert again.json() == first.json()


async def test_the_same_document_id_with_other_bytes_is_409(intake, pandeglang):
    payload = pandeglang.payload()
    await submit(intake, pandeglang.sign(payload))
    payload["recommendation"]["summary"] = "A different summary under the same id."

    response = await submit(intake, pandeglang.sign(payload))

    assert response.status_code == 409
    assert response.json()["type"].endswith("/document-id-reused")


async def test_registration_numbers_count_per_office(intake, pandeglang, admin_headers):
    from tests.conftest import registered_office
    from tests.support.offices import example

    banten = await registered_office(intake, admin_headers, "bawaslu-36")
    numbers = [
        (await submit(intake, pandeglang.sign())).json()["registration_number"],
        (await submit(intake, pandeglang.sign())).json()["registration_number"],
        (await submit(intake, banten.sign(banten.payload(example())))).json()[
            "registration_number"
        ],
    ]

    assert [n.split("-")[0] for n in numbers] == ["3601", "3601", "36"]
    assert [n.split("-")[2] for n in numbers] == ["000001", "000002", "000001"]


async def test_a_report_with_its_reporter_is_accepted_and_the_reporter_is_not_logged(
    intake, pandeglang, caplog
):
    from tests.support.offices import example

    report = example("report")
    response = await submit(intake, pandeglang.sign(pandeglang.payload(report)))

    assert response.status_code == 201, response.text
    logged = "\n".join(str(record.__dict__) for record in caplog.records)
    assert report["reporter"]["name"] not in logged
    assert report["reporter"]["contact"] not in logged


async def test_a_token_of_another_office_cannot_submit(intake, pandeglang, token_for):
    token = token_for("bawaslu-36.02")

    response = await submit(intake, pandeglang.sign(), authorization=f"Bearer {token}")

    assert response.status_code == 403


async def test_a_token_of_the_signing_office_may_submit(intake, pandeglang, token_for):
    token = token_for("bawaslu-36.01")

    response = await submit(intake, pandeglang.sign(), authorization=f"Bearer {token}")

    assert response.status_code == 201


async def test_the_receipt_can_be_fetched_by_the_office_and_above_only(
    intake, pandeglang, token_for
):
    document_id = (await submit(intake, pandeglang.sign())).json()["document_id"]

    def get(office):
        return intake.get(
            f"/v1/receipts/{document_id}", headers={"authorization": f"Bearer {token_for(office)}"}
        )

    assert (await get("bawaslu-36.01")).status_code == 200
    assert (await get("bawaslu-36")).status_code == 200
    assert (await get("bawaslu-ri")).status_code == 200
    assert (await get("bawaslu-36.02")).status_code == 404
    assert (await get("bawaslu-32")).status_code == 404
    assert (await intake.get(f"/v1/receipts/{document_id}")).status_code == 401


async def test_document_state_shows_the_pending_delivery(intake, pandeglang, token_for):
    document_id = (await submit(intake, pandeglang.sign())).json()["document_id"]

    response = await intake.get(
        f"/v1/documents/{document_id}",
        headers={"authorization": f"Bearer {token_for('bawaslu-36.01')}"},
    )

    assert response.status_code == 200
    state = response.json()
    assert state["status"] == "received"
    assert state["delivery"]["destination"] == "recommendation-province-36"
    assert state["delivery"]["state"] == "pending"
    assert state["delivery"]["attempts"] == []

"""Specification: a returned recommendation is corrected by a new document that supersedes it."""

import pytest

from services.intake import service
from services.intake.models import DocumentStatus
from tests.conftest import registered_office, submit
from tests.support.snapshot import snapshot

pytestmark = pytest.mark.anyio


async def returned_document(intake, office) -> str:
    """A document the province returned (the status intake learns from the province)."""
    document_id = (await submit(intake, office.sign())).json()["document_id"]
    with intake.app.state.database.session() as session:
        service.record_status(session, document_id=document_id, status=DocumentStatus.returned)
    return document_id


async def test_a_correction_supersedes_the_returned_recommendation(intake, pandeglang, token_for):
    returned = await returned_document(intake, pandeglang)

    response = await submit(intake, pandeglang.sign(supersedes=returned))

    assert response.status_code == 201, response.text
    headers = {"authorization": f"Bearer {token_for('bawaslu-36.01')}"}
    corrected = await intake.get(f"/v1/documents/{response.json()['document_id']}", headers=headers)
    earlier = await intake.get(f"/v1/documents/{returned}", headers=headers)
    assert corrected.json()["supersedes"] == returned
    assert earlier.json()["status"] == "superseded"


async def test_a_recommendation_that_was_not_returned_cannot_be_superseded(intake, pandeglang):
    pending = (await submit(intake, pandeglang.sign())).json()["document_id"]
    before = snapshot(intake.app.state.database)

    response = await submit(intake, pandeglang.sign(supersedes=pending))

    assert response.status_code == 409
    assert snapshot(intake.app.state.database) == before


async def test_a_returned_recommendation_is_superseded_only_once(intake, pandeglang):
    returned = await returned_document(intake, pandeglang)
    assert (await submit(intake, pandeglang.sign(supersedes=returned))).status_code == 201

    second = await submit(intake, pandeglang.sign(supersedes=returned))

    assert second.status_code == 409


async def test_an_office_cannot_supersede_another_offices_recommendation(
    intake, pandeglang, admin_headers
):
    returned = await returned_document(intake, pandeglang)
    lebak = await registered_office(intake, admin_headers, "bawaslu-36.02")
    recommendation = lebak.payload()["recommendation"]
    recommendation["region_code"] = "36.02"
    before = snapshot(intake.app.state.database)

    response = await submit(intake, lebak.sign(lebak.payload(recommendation, supersedes=returned)))

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "supersedes"
    assert snapshot(intake.app.state.database) == before


async def test_superseding_an_unknown_recommendation_is_refused(intake, pandeglang):
    response = await submit(
        intake, pandeglang.sign(supersedes="00000000-0000-4000-8000-000000000000")
    )

    assert response.status_code == 422

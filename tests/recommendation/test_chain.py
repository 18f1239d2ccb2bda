"""Specification: a recommendation travels intake → province → national with real signatures,
and national's decisions come back down, until every office reads the same status."""

import pytest
from sqlmodel import select

from shared.outbox import OutboxMessage
from tests.recommendation.conftest import eventually

pytestmark = pytest.mark.anyio

SANCTION = {
    "sanction": {"kind": "discipline", "type": "allowance_cut_6m"},
    "ppk": {"title": "Bupati Pandeglang", "agency": "Pemerintah Kabupaten Pandeglang"},
}


async def test_a_recommendation_goes_up_and_its_status_comes_back_down(system):
    pandeglang = await system.office("bawaslu-36.01")
    rec = await system.submitted(pandeglang)

    assert await system.status_at(system.province, "bawaslu-36.01", rec) == "submitted"
    assert (await system.act(system.province, "bawaslu-36", rec, "verify")).status_code == 200
    forwarded = await system.act(system.province, "bawaslu-36", rec, "forward", note="Lengkap")
    assert forwarded.json()["status"] == "forwarded"

    async def at_national() -> bool:
        return await system.status_at(system.national, "bawaslu-ri", rec) == "forwarded"

    await eventually(at_national)
    for action, details in (("send", None), ("review", None), ("recommend", SANCTION)):
        answer = await system.act(system.national, "bawaslu-ri", rec, action, details)
        assert answer.status_code == 200, answer.text

    async def settled() -> bool:
        here = await system.status_at(system.province, "bawaslu-36.01", rec)
        return here == "sanction_recommended"

    await eventually(settled)
    seen_by_pandeglang = (
        await system.province.get(
            f"/v1/recommendations/{rec}", headers=system.as_office("bawaslu-36.01")
        )
    ).json()
    seen_by_national = (
        await system.national.get(
            f"/v1/recommendations/{rec}", headers=system.as_office("bawaslu-ri")
        )
    ).json()
    assert seen_by_pandeglang["status"] == seen_by_national["status"]
    assert seen_by_pandeglang["ppk_due_on"] == seen_by_national["ppk_due_on"] is not None
    assert [h["to_status"] for h in seen_by_pandeglang["history"]] == [
        "submitted",
        "verified",
        "forwarded",
        "sent_to_ruling_body",
        "under_review",
        "sanction_recommended",
    ]
    assert [h["actor_office"] for h in seen_by_pandeglang["history"]][-1] == "bawaslu-ri"
    assert seen_by_pandeglang["recommendation"]["subject"]["nip"] == "198503122010011002"


async def test_a_forward_waits_while_national_is_down_and_arrives_once(system):
    rec = await system.submitted(await system.office())
    await system.act(system.province, "bawaslu-36", rec, "verify")
    system.mesh.down.add("national")

    await system.act(system.province, "bawaslu-36", rec, "forward")

    async def retried() -> bool:
        with system.province.app.state.database.session() as session:
            message = session.exec(
                select(OutboxMessage).where(OutboxMessage.document_id == rec)
            ).one()
            return message.attempts >= 3

    await eventually(retried)
    assert await system.status_at(system.national, "bawaslu-ri", rec) is None
    system.mesh.down.discard("national")

    async def arrived() -> bool:
        return await system.status_at(system.national, "bawaslu-ri", rec) == "forwarded"

    await eventually(arrived)
    listing = await system.national.get(
        "/v1/recommendations", headers=system.as_office("bawaslu-ri")
    )
    assert [item["id"] for item in listing.json()["items"]] == [rec]
    history = (
        await system.national.get(
            f"/v1/recommendations/{rec}", headers=system.as_office("bawaslu-ri")
        )
    ).json()["history"]
    assert [h["to_status"] for h in history] == ["forwarded"]


async def test_a_returned_recommendation_can_be_corrected_by_a_superseding_one(system):
    pandeglang = await system.office()
    rec = await system.submitted(pandeglang)

    returned = await system.act(
        system.province, "bawaslu-36", rec, "return", {"reason": "Bukti tidak lengkap"}
    )
    assert returned.json()["status"] == "returned"

    async def intake_knows() -> bool:
        answer = await system.intake.get(
            f"/v1/documents/{rec}", headers=system.as_office("bawaslu-36.01")
        )
        return answer.json()["status"] == "returned"

    await eventually(intake_knows)
    correction = await system.submitted(pandeglang, supersedes=rec)
    detail = (
        await system.province.get(
            f"/v1/recommendations/{correction}", headers=system.as_office("bawaslu-36")
        )
    ).json()
    assert detail["supersedes"] == rec

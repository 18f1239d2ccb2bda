"""Specification: a recommendation travels intake → province → national with real signatures,
and national's decisions come back down, until every office reads the same status."""

import pytest
from sqlmodel import select

from shared.outbox import OutboxMessage
from tests.conftest import submit
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


async def test_a_batch_of_envelopes_is_answered_envelope_by_envelope(system):
    """`POST /exchange/v1/envelope-batches` takes each envelope as the single door does, with
    that door's answer: stored once, a repeat acknowledged, a forgery refused and not stored."""
    system.mesh.down.add("province")  # intake's relay cannot deliver: the envelopes wait
    office = await system.office()
    ids = [(await submit(system.intake, office.sign())).json()["document_id"] for _ in range(2)]
    with system.intake.app.state.database.session() as session:
        envelopes = {
            message.document_id: message.body for message in session.exec(select(OutboxMessage))
        }
    first, second = (envelopes[document_id] for document_id in ids)
    header, payload, _ = first.split(".")
    forged = f"{header}.{payload}.{second.split('.')[2]}"  # another envelope's signature
    single_answer = await system.province.post(
        "/exchange/v1/envelopes", content=forged, headers={"content-type": "application/jose"}
    )

    answer = await system.province.post(
        "/exchange/v1/envelope-batches",
        json={"envelopes": [first, second, first, forged, "not a JWS", "ünï.cödé.jws"]},
    )

    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [result["status"] for result in results] == [
        201,
        201,
        200,
        single_answer.status_code,
        400,
        400,
    ]
    assert single_answer.status_code == 401
    refusal = {k: v for k, v in single_answer.json().items() if k != "instance"}
    assert results[3]["problem"] == refusal
    assert all(result["acknowledgement"] for result in results[:3])
    listing = await system.province.get(
        "/v1/recommendations", headers=system.as_office("bawaslu-36")
    )
    assert sorted(item["id"] for item in listing.json()["items"]) == sorted(ids)


async def test_a_batch_too_large_or_malformed_is_refused_whole_and_changes_nothing(system):
    too_many = await system.province.post(
        "/exchange/v1/envelope-batches", json={"envelopes": ["x.y.z"] * 51}
    )
    empty = await system.province.post("/exchange/v1/envelope-batches", json={"envelopes": []})
    not_json = await system.province.post(
        "/exchange/v1/envelope-batches",
        content=b"x.y.z",
        headers={"content-type": "application/jose"},
    )
    for answer in (too_many, empty, not_json):
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    listing = await system.province.get(
        "/v1/recommendations", headers=system.as_office("bawaslu-36")
    )
    assert listing.json()["items"] == []

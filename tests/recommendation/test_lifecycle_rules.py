"""Specification: the lifecycle table decides who may do what, versions guard every change, and
national's status events apply in sequence order."""

import asyncio
import itertools
import json
import uuid
from datetime import timedelta

import pytest
from sqlmodel import select

from services.recommendation import service
from services.recommendation.models import Recommendation
from shared import documents, lifecycle
from shared.db import utcnow
from shared.lifecycle import Action, Actor, Status
from tests.recommendation.conftest import eventually

pytestmark = pytest.mark.anyio

VALID_DETAILS = {
    Action.return_: {"reason": "Bukti tidak lengkap"},
    Action.recommend: {
        "sanction": {"kind": "ethics", "type": "closed_statement"},
        "ppk": {"title": "Bupati Pandeglang", "agency": "Pemerintah Kabupaten Pandeglang"},
    },
    Action.record_follow_up: {"decree_number": "800/123/BKPSDM/2024", "decided_on": "2024-12-02"},
}
OFFICE_OF = {Actor.province: "bawaslu-36", Actor.national: "bawaslu-ri"}


def set_status(client, recommendation_id: str, status: Status) -> None:
    with client.app.state.database.session() as session:
        row = session.exec(
            select(Recommendation).where(Recommendation.id == recommendation_id)
        ).one()
        row.status = status
        row.version += 1
        session.add(row)
        session.commit()


async def forwarded_to_national(system) -> str:
    rec = await system.submitted(await system.office())
    await system.act(system.province, "bawaslu-36", rec, "verify")
    await system.act(system.province, "bawaslu-36", rec, "forward")

    async def arrived() -> bool:
        return await system.status_at(system.national, "bawaslu-ri", rec) == "forwarded"

    await eventually(arrived)
    return rec


async def outbox_drained(client) -> bool:
    return client.app.state.relay.depth()["pending"] == 0


async def test_every_action_is_allowed_exactly_where_the_table_says(system):
    rec = await forwarded_to_national(system)
    actions = [a for a in Action if a is not Action.mark_overdue]
    outcomes = {}
    for actor, client in ((Actor.national, system.national), (Actor.province, system.province)):
        if actor is Actor.province:
            await eventually(lambda: outbox_drained(system.national))
        for status, action in itertools.product(Status, actions):
            set_status(client, rec, status)
            answer = await system.act(
                client, OFFICE_OF[actor], rec, action, VALID_DETAILS.get(action)
            )
            outcomes[(status, action, actor)] = (answer.status_code, answer.json())

    for (status, action, actor), (code, body) in outcomes.items():
        allowed = lifecycle.allowed_actions(status, actor)
        if action in allowed:
            expected = lifecycle.next_status(status, action, actor)
            assert (code, body["status"]) == (200, expected), (status, action, actor, body)
        else:
            assert code == 409, (status, action, actor, body)
            assert body["allowed"] == [str(a) for a in allowed]


async def test_a_regency_office_takes_no_action(system):
    rec = await system.submitted(await system.office())

    answer = await system.act(system.province, "bawaslu-36.01", rec, "verify")

    assert answer.status_code == 409
    assert answer.json()["allowed"] == []


async def test_a_province_action_at_the_national_service_is_refused(system):
    rec = await forwarded_to_national(system)
    set_status(system.national, rec, Status.submitted)

    answer = await system.act(system.national, "bawaslu-36", rec, "verify")

    assert answer.status_code in (404, 409)


async def test_required_details_are_checked(system):
    rec = await system.submitted(await system.office())

    answer = await system.act(system.province, "bawaslu-36", rec, "return", {})

    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["details.reason"]


async def test_two_clients_with_the_same_etag_one_wins_one_gets_412(system):
    rec = await system.submitted(await system.office())
    headers = system.as_office("bawaslu-36")
    read = await system.province.get(f"/v1/recommendations/{rec}", headers=headers)
    etag = read.headers["etag"]

    def change(action: str, details=None):
        return system.province.post(
            f"/v1/recommendations/{rec}/transitions",
            json={"action": action, "details": details},
            headers={**headers, "if-match": etag},
        )

    first, second = await asyncio.gather(change("verify"), change("return", {"reason": "x"}))

    assert sorted([first.status_code, second.status_code]) == [200, 412]


async def test_a_change_without_if_match_is_428(system):
    rec = await system.submitted(await system.office())

    answer = await system.province.post(
        f"/v1/recommendations/{rec}/transitions",
        json={"action": "verify"},
        headers=system.as_office("bawaslu-36"),
    )

    assert answer.status_code == 428


def status_event(system, rec: str, sequence: int, source: str, target: str) -> str:
    key = system.national.app.state.signing_key
    return key.sign(
        {
            "jti": str(uuid.uuid4()),
            "iss": documents.NATIONAL_SERVICE,
            "aud": documents.province_service("36"),
            "iat": documents.timestamp(),
            "recommendation_id": rec,
            "sequence": sequence,
            "from": source,
            "to": target,
            "at": utcnow().isoformat(),
            "actor": {"office": "bawaslu-ri", "user": "tester"},
            "note": None,
            "details": {},
        },
        documents.STATUS_TYP,
    )


async def test_late_and_repeated_status_events_never_overwrite_a_newer_state(system):
    rec = await system.submitted(await system.office())
    set_status(system.province, rec, Status.forwarded)
    first = status_event(system, rec, 1, "forwarded", "sent_to_ruling_body")
    second = status_event(system, rec, 2, "sent_to_ruling_body", "under_review")

    def post(event: str):
        return system.province.post(
            "/exchange/v1/status-events",
            content=event,
            headers={"content-type": "application/jose"},
        )

    answers = [await post(second), await post(first), await post(second)]

    assert [a.status_code for a in answers] == [202, 202, 202]
    detail = (
        await system.province.get(
            f"/v1/recommendations/{rec}", headers=system.as_office("bawaslu-36")
        )
    ).json()
    assert detail["status"] == "under_review"
    events = [h for h in detail["history"] if h["sequence"] is not None]
    assert [(h["sequence"], h["applied"]) for h in events] == [(2, True), (1, False)]


async def test_a_status_event_not_signed_by_national_is_refused(system):
    rec = await system.submitted(await system.office())
    from shared.signing import KeyPair

    forged = KeyPair.generate().sign(
        json.loads(json.dumps({"jti": str(uuid.uuid4()), "iss": documents.NATIONAL_SERVICE})),
        documents.STATUS_TYP,
    )

    answer = await system.province.post(
        "/exchange/v1/status-events", content=forged, headers={"content-type": "application/jose"}
    )

    assert answer.status_code == 401
    assert await system.status_at(system.province, "bawaslu-36", rec) == "submitted"


async def sanction_past_due(system) -> str:
    """A recommendation national recommended a sanction on, its PPK follow-up due yesterday."""
    rec = await forwarded_to_national(system)
    for action, details in (
        ("send", None),
        ("review", None),
        ("recommend", VALID_DETAILS[Action.recommend]),
    ):
        assert (
            await system.act(system.national, "bawaslu-ri", rec, action, details)
        ).status_code == 200
    with system.national.app.state.database.session() as session:
        row = session.exec(select(Recommendation).where(Recommendation.id == rec)).one()
        row.ppk_due_on = service.today() - timedelta(days=1)
        session.add(row)
        session.commit()
    return rec


async def test_a_past_due_follow_up_becomes_overdue_everywhere(system):
    rec = await sanction_past_due(system)

    with system.national.app.state.database.session() as session:
        marked = service.mark_overdue(session, context=system.national.app.state.context)
    system.national.app.state.relay_wake()

    assert marked == 1

    async def overdue_at_province() -> bool:
        return await system.status_at(system.province, "bawaslu-36.01", rec) == "overdue"

    await eventually(overdue_at_province)
    follow_up = await system.act(
        system.national,
        "bawaslu-ri",
        rec,
        "record_follow_up",
        VALID_DETAILS[Action.record_follow_up],
    )
    assert follow_up.json()["status"] == "followed_up"


async def test_overdue_follow_ups_are_marked_in_bounded_batches(system):
    recs = [await sanction_past_due(system) for _ in range(3)]

    context = system.national.app.state.context
    batches = []
    for _ in range(3):
        with system.national.app.state.database.session() as session:
            batches.append(service.mark_overdue(session, context=context, limit=2))

    assert batches == [2, 1, 0]
    for rec in recs:
        assert await system.status_at(system.national, "bawaslu-ri", rec) == "overdue"

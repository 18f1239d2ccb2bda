"""Specification: the outbox delivers every message once the peer can take it, exactly once."""

import asyncio
import contextlib
import json
import time
import uuid

import httpx
import pytest

from services.intake.app import create_app
from shared import outbox
from shared.db import Database
from shared.documents import ENVELOPE_TYP
from shared.http import ServiceClient
from shared.signing import verify
from tests.conftest import registered_office, submit
from tests.support.receiver import Receiver
from tests.support.servers import ThreadedServer, free_port

pytestmark = pytest.mark.anyio


async def wait_until(condition, timeout: float = 20.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(interval)


def fast_retries(settings, **changes):
    return settings.model_copy(
        update={
            "relay_enabled": True,
            "outbox_poll_seconds": 0.05,
            "outbox_backoff_base_seconds": 0.05,
            "outbox_backoff_cap_seconds": 0.4,
            **changes,
        }
    )


def enqueued(database: Database, bodies: list[str], destination: str = "peer") -> list[str]:
    with database.session() as session:
        ids = [
            outbox.enqueue(
                session,
                document_id=str(uuid.uuid4()),
                destination=destination,
                path="/exchange/v1/envelopes",
                body=body,
            )
            for body in bodies
        ]
        session.commit()
    return ids


async def one_pass(database: Database, url: str) -> int:
    async with ServiceClient(timeout=10) as client:
        return await outbox.OutboxRelay(database, resolve=lambda _: url).deliver_due(client)


def outcomes(database: Database, ids: list[str]) -> list[tuple[str, list[int | None]]]:
    with database.session() as session:
        return [
            (
                session.get(outbox.OutboxMessage, message_id).state,
                [attempt.status_code for attempt in outbox.attempts_of(session, message_id)],
            )
            for message_id in ids
        ]


async def test_a_peer_that_is_down_for_a_while_gets_every_envelope_exactly_once_when_back(
    intake_settings, admin_headers, token_for
):
    receiver = Receiver()
    port = free_port()
    app = create_app(fast_retries(intake_settings, default_route=f"http://127.0.0.1:{port}"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as intake:
            office = await registered_office(intake, admin_headers, "bawaslu-36.01")
            bodies = [office.sign() for _ in range(5)]
            ids = [(await submit(intake, body)).json()["document_id"] for body in bodies]
            headers = {"authorization": f"Bearer {token_for('bawaslu-36.01')}"}

            async def states() -> list[dict]:
                answers = [await intake.get(f"/v1/documents/{i}", headers=headers) for i in ids]
                return [answer.json()["delivery"] for answer in answers]

            async def each_failed_twice() -> bool:
                return all(len(state["attempts"]) >= 2 for state in await states())

            await wait_until(each_failed_twice)
            assert {state["state"] for state in await states()} == {"pending"}

            server = ThreadedServer(receiver.app, port=port).start()
            try:

                async def all_delivered() -> bool:
                    return all(state["state"] == "delivered" for state in await states())

                await wait_until(all_delivered)
                await asyncio.sleep(0.5)  # time for any duplicate to show up
            finally:
                server.stop()
            final = await states()
            intake_jwk = (await intake.get("/.well-known/jwks.json")).json()["keys"][0]

    assert sorted(receiver.by_request_id) == sorted(ids)
    assert set(receiver.by_request_id.values()) == {1}
    for state in final:
        assert state["attempts"][-1]["outcome"] == "delivered"
        assert all(a["status_code"] is None for a in state["attempts"][:-1])  # refused connections
    envelopes = [
        verify(body.decode(), typ=ENVELOPE_TYP, key_for=lambda kid: intake_jwk).payload
        for body in receiver.bodies
    ]
    assert {e["aud"] for e in envelopes} == {"recommendation-province-36"}
    assert sorted(e["document"] for e in envelopes) == sorted(bodies)
    assert {json.dumps(e["signer_jwk"], sort_keys=True) for e in envelopes} == {
        json.dumps(office.key.public_jwk, sort_keys=True)
    }


async def test_a_message_the_peer_keeps_refusing_is_marked_failed_after_the_last_attempt(
    intake_settings, admin_headers, token_for
):
    receiver = Receiver(answer=503)
    server = ThreadedServer(receiver.app).start()
    settings = fast_retries(intake_settings, default_route=server.url, outbox_max_attempts=3)
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://intake") as intake:
                office = await registered_office(intake, admin_headers, "bawaslu-36.01")
                document_id = (await submit(intake, office.sign())).json()["document_id"]
                headers = {"authorization": f"Bearer {token_for('bawaslu-36.01')}"}

                async def failed() -> bool:
                    answer = await intake.get(f"/v1/documents/{document_id}", headers=headers)
                    return answer.json()["delivery"]["state"] == "failed"

                await wait_until(failed)
                delivery = (
                    await intake.get(f"/v1/documents/{document_id}", headers=headers)
                ).json()["delivery"]
    finally:
        server.stop()

    assert [a["status_code"] for a in delivery["attempts"]] == [503, 503, 503]
    assert [a["outcome"] for a in delivery["attempts"]] == ["pending", "pending", "failed"]
    assert delivery["last_error"].startswith("HTTP 503")


def test_backoff_grows_exponentially_is_jittered_and_capped():
    policy = outbox.RetryPolicy(base_seconds=1, cap_seconds=10)

    delays = {attempt: [policy.delay(attempt) for _ in range(200)] for attempt in range(1, 8)}

    assert all(0.5 <= d <= 1 for d in delays[1])
    assert all(2 <= d <= 4 for d in delays[3])
    assert all(5 <= d <= 10 for d in delays[7])  # capped at 10, not 64
    assert len(set(delays[3])) > 100  # jittered


async def test_two_relays_never_deliver_the_same_message(database):
    enqueued(database, ["envelope"] * 200, destination="recommendation-province-36")
    receiver = Receiver(delay_seconds=0.002)
    server = ThreadedServer(receiver.app).start()
    relays = [
        outbox.OutboxRelay(database, resolve=lambda _: server.url, batch_size=20, name=name)
        for name in ("relay-a", "relay-b")
    ]
    try:
        async with ServiceClient(timeout=10) as client:
            for _ in range(30):
                delivered = await asyncio.gather(*(relay.deliver_due(client) for relay in relays))
                if sum(delivered) == 0:
                    break
    finally:
        server.stop()
        states = relays[0].depth()

    assert len(receiver.by_request_id) == 200
    assert set(receiver.by_request_id.values()) == {1}
    assert states == {"pending": 0, "failed": 0}


async def test_a_refusal_no_retry_can_cure_fails_at_once(database):
    [message_id] = enqueued(database, ["not an envelope"])
    server = ThreadedServer(Receiver(answer=422).app).start()
    relay = outbox.OutboxRelay(database, resolve=lambda _: server.url)
    try:
        async with ServiceClient(timeout=10) as client:
            await relay.deliver_due(client)
    finally:
        server.stop()
    with database.session() as session:
        stored = session.get(outbox.OutboxMessage, message_id)
        attempts = outbox.attempts_of(session, message_id)

    assert stored.state == "failed"
    assert [(a.status_code, a.outcome) for a in attempts] == [(422, "failed")]


async def test_a_relay_stops_when_cancelled_even_at_the_moment_it_is_woken(database):
    """A service's shutdown cancels its relay and waits for it. Python 3.11's `asyncio.wait_for`
    returns normally, swallowing the cancellation, when what it waits for finishes in the same
    turn of the loop, as a wake from a request just committed does; the relay then ran on and
    the shutdown waited for ever (a CI run hung in a teardown)."""
    relay = outbox.OutboxRelay(database, resolve=lambda _: "http://127.0.0.1:9", poll_seconds=30)
    for _ in range(3):
        task = asyncio.create_task(relay.run())
        await asyncio.sleep(0.05)  # the relay has found nothing due and waits to be woken
        relay.wake()
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=2)
        assert done == {task}, "the relay ran on after it was cancelled"
        assert task.cancelled()


async def test_a_relay_stopped_mid_delivery_hands_its_messages_back_at_once(database):
    """A stopped service (a rolling restart) leaves no message waiting out a lease: the next
    relay delivers it straight away, not 30 seconds later."""
    [message_id] = enqueued(database, ["an envelope"])
    asked = asyncio.Event()

    async def never_answers(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        asked.set()
        await reader.read()  # until the relay hangs up

    hanging = await asyncio.start_server(never_answers, "127.0.0.1", 0)
    hanging_url = f"http://127.0.0.1:{hanging.sockets[0].getsockname()[1]}"
    receiver = Receiver()
    server = ThreadedServer(receiver.app).start()
    try:
        stopping = outbox.OutboxRelay(database, resolve=lambda _: hanging_url)
        task = asyncio.create_task(stopping.run())
        await asyncio.wait_for(asked.wait(), timeout=10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with database.session() as session:
            handed_back = session.get(outbox.OutboxMessage, message_id)
        assert (handed_back.state, handed_back.lease_owner, handed_back.attempts) == (
            "pending",
            None,
            0,
        )

        started = time.monotonic()
        async with ServiceClient(timeout=10) as client:
            delivered = await outbox.OutboxRelay(
                database, resolve=lambda _: server.url
            ).deliver_due(client)
        assert delivered == 1
        assert time.monotonic() - started < 5
    finally:
        server.stop()
        hanging.close()
        await hanging.wait_closed()
    assert receiver.bodies == [b"an envelope"]


async def test_envelopes_due_together_go_to_their_peer_in_one_request(database):
    bodies = [f"envelope-{n}" for n in range(5)]
    ids = enqueued(database, bodies)
    receiver = Receiver(batches=True)
    server = ThreadedServer(receiver.app).start()
    try:
        assert await one_pass(database, server.url) == 5
    finally:
        server.stop()
    assert receiver.batch_sizes == [5]
    assert receiver.by_request_id == {}  # not one of them alone
    assert sorted(receiver.bodies) == sorted(body.encode() for body in bodies)
    assert outcomes(database, ids) == [("delivered", [201])] * 5


async def test_each_envelope_of_a_batch_is_settled_by_its_own_answer(database):
    """A refusal no retry can cure fails only its envelope; a 503 leaves only its envelope to
    be tried again; the rest are delivered."""
    ids = enqueued(database, ["good", "forged", "peer-busy", "also-good"])
    receiver = Receiver(batches=True, answers={b"forged": 422, b"peer-busy": 503})
    server = ThreadedServer(receiver.app).start()
    try:
        await one_pass(database, server.url)
    finally:
        server.stop()
    assert outcomes(database, ids) == [
        ("delivered", [201]),
        ("failed", [422]),
        ("pending", [503]),
        ("delivered", [201]),
    ]
    with database.session() as session:
        assert session.get(outbox.OutboxMessage, ids[1]).last_error == "HTTP 422: refused 422"


async def test_a_peer_that_takes_no_batches_gets_each_envelope_alone(database):
    """Code from before batches answers a batch 404: the same pass sends each envelope alone,
    and later passes do not try a batch again for a while."""
    receiver = Receiver(batches=False)
    server = ThreadedServer(receiver.app).start()
    try:
        async with ServiceClient(timeout=10) as client:
            relay = outbox.OutboxRelay(database, resolve=lambda _: server.url)
            first = enqueued(database, ["a", "b", "c"])
            assert await relay.deliver_due(client) == 3
            then = enqueued(database, ["d", "e"])
            assert await relay.deliver_due(client) == 2
    finally:
        server.stop()
    assert receiver.batch_sizes == [3]
    assert sorted(receiver.bodies) == [b"a", b"b", b"c", b"d", b"e"]
    assert outcomes(database, first + then) == [("delivered", [202])] * 5


async def test_a_batch_that_goes_unanswered_is_tried_again_whole(database):
    ids = enqueued(database, ["a", "b"])
    assert await one_pass(database, f"http://127.0.0.1:{free_port()}") == 2  # nobody listens
    assert outcomes(database, ids) == [("pending", [None])] * 2


async def test_a_busy_service_relay_moves_one_batch_per_pause_and_the_rest_once_the_burst_ends(
    database,
):
    """Answering comes before handing on: while the service is busy (its event loop late), the
    relay takes one pass per pause, so the cores go to the requests and delivery still moves;
    once the burst is over, the rest goes at once."""
    ids = enqueued(database, [f"envelope-{n}" for n in range(120)])
    receiver = Receiver(batches=True)
    server = ThreadedServer(receiver.app).start()
    busy = True
    relay = outbox.OutboxRelay(
        database,
        resolve=lambda _: server.url,
        poll_seconds=30,
        busy=lambda: busy,
        busy_pause_seconds=0.8,
    )

    async def delivered(count: int) -> bool:
        return len(receiver.bodies) >= count

    task = asyncio.create_task(relay.run())
    try:
        await wait_until(lambda: delivered(50), timeout=10)
        relay.wake()  # a new submission does not cut the pause short
        await asyncio.sleep(0.4)
        assert receiver.batch_sizes == [50]

        busy = False
        started = time.monotonic()
        await wait_until(lambda: delivered(120), timeout=10)
        assert time.monotonic() - started < 2
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.stop()
    assert receiver.batch_sizes == [50, 50, 20]
    assert outcomes(database, ids) == [("delivered", [201])] * 120

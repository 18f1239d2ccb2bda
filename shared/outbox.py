"""Transactional outbox: a message is written in the same transaction as the data it announces,
and a relay running in the service's lifespan delivers it over HTTP until the peer accepts it.

Every attempt is recorded. Failed attempts are retried with capped exponential backoff and jitter;
after `max_attempts` (or a refusal no retry can cure) the message is marked `failed`. A relay
claims rows with a lease taken under `FOR UPDATE SKIP LOCKED`, so two relays on PostgreSQL never
deliver the same row at once; a relay that dies mid-delivery loses its lease and the row is
retried once the lease ends (a relay that is stopped hands its leases back at once), and
receivers are idempotent on the document id, so a message takes effect once.

Answering comes before handing on. While its service is busy answering requests (`busy`), a
relay takes one pass per `busy_pause_seconds` instead of one after another: a burst of offices
submitting gets the machine's cores, delivery still moves a batch every pause, and the rest goes
as soon as the burst is over. Without it, under full load a relay and the peer it fed took a
quarter of a two-core machine from the requests (see the README, Measuring it).
"""

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import httpx
from sqlalchemy import (
    Column,
    Connection,
    ForeignKey,
    Index,
    String,
    Text,
    func,
    insert,
    update,
)
from sqlmodel import Field, Session, SQLModel, col, select

from shared.db import Database, DriverSQL, UTCDateTime, connection_of, utcnow
from shared.http import ServiceClient
from shared.logs import REQUEST_ID_HEADER

log = logging.getLogger("siapnet.outbox")

JOSE_MEDIA_TYPE = "application/jose"
# A refusal about the message itself: sending the same bytes again cannot succeed.
PERMANENT_REFUSALS = frozenset({400, 413, 415, 422})
# Paths whose messages a peer also takes several to a request, and where: one request, and one
# round of the peer's HTTP and middleware, for up to BATCH_MESSAGES messages and BATCH_BYTES.
BATCH_PATHS = {"/exchange/v1/envelopes": "/exchange/v1/envelope-batches"}
BATCH_MESSAGES = 50
BATCH_BYTES = 512 * 1024
# A peer that answers a batch 404 or 405 runs code from before batches: it gets its messages
# one to a request for this long before a batch is tried again.
SINGLES_SECONDS = 600.0


class DeliveryState(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    document_id: str = Field(index=True, max_length=36)
    destination: str = Field(max_length=100)
    path: str = Field(max_length=200)
    body: str = Field(sa_column=Column(Text, nullable=False))
    state: DeliveryState = Field(default=DeliveryState.pending, sa_type=String(16))
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    leased_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_owner: str | None = Field(default=None, max_length=64)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)


class OutboxAttempt(SQLModel, table=True):
    __tablename__ = "outbox_attempts"

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(
        sa_column=Column(String(36), ForeignKey("outbox_messages.id"), index=True, nullable=False)
    )
    number: int
    started_at: datetime = Field(sa_type=UTCDateTime)
    duration_ms: int
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)
    outcome: DeliveryState = Field(sa_type=String(16))


_INSERT_MESSAGE = DriverSQL.insert(  # every document's; plain SQL on the driver, see DriverSQL
    "outbox_messages",
    [
        "id",
        "document_id",
        "destination",
        "path",
        "body",
        "state",
        "attempts",
        "created_at",
        "next_attempt_at",
    ],
)


def enqueue(
    db: Session | Connection, *, document_id: str, destination: str, path: str, body: str
) -> str:
    """Add a message to the caller's transaction (a session's or a connection's) and answer its
    id; it is sent only if that transaction commits. A plain INSERT: no ORM object is needed
    for a row only the relay reads."""
    now, message_id = utcnow(), str(uuid.uuid4())
    _INSERT_MESSAGE.execute(
        connection_of(db),
        {
            "id": message_id,
            "document_id": document_id,
            "destination": destination,
            "path": path,
            "body": body,
            "state": str(DeliveryState.pending),
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        },
    )
    return message_id


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 0.5
    cap_seconds: float = 300.0
    max_attempts: int = 200  # at the 5-minute cap, about 16 hours of retrying
    lease_seconds: float = 30.0
    timeout_seconds: float = 10.0

    def delay(self, attempt: int) -> float:
        """Capped exponential backoff with jitter: half fixed, half random, never above the cap."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class Claimed:
    """What the relay needs of a message it holds the lease on."""

    id: str
    document_id: str
    destination: str
    path: str
    body: str


@dataclass(frozen=True)
class Attempt:
    """One try at delivering a message: what came back, or what went wrong."""

    message: Claimed
    started: datetime
    elapsed: timedelta
    status_code: int | None
    error: str | None


MESSAGES = OutboxMessage.__table__
ATTEMPTS = OutboxAttempt.__table__


class OutboxRelay:
    """Delivers a service's pending outbox messages to the peers they are addressed to.

    A pass claims and settles its messages with a few set-wide statements on the connection
    rather than through ORM objects: the relay takes its turn at the database with the
    requests, and loading, flushing and re-reading each message cost it a tenth of intake's
    time under load."""

    def __init__(
        self,
        database: Database,
        resolve: Callable[[str], str],
        *,
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        poll_seconds: float = 1.0,
        batch_size: int = 50,
        name: str | None = None,
        busy: Callable[[], bool] | None = None,
        busy_pause_seconds: float = 1.0,
    ) -> None:
        self.database = database
        self.resolve = resolve
        self.policy = policy or RetryPolicy()
        self.transport = transport
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.busy = busy
        self.busy_pause_seconds = busy_pause_seconds
        self.name = name or f"relay-{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()
        self._singles_until: dict[str, float] = {}  # peer -> monotonic time

    def wake(self) -> None:
        """Deliver now rather than at the next poll (call after committing new messages)."""
        self._wake.set()

    async def run(self) -> None:
        async with ServiceClient(
            timeout=self.policy.timeout_seconds, transport=self.transport
        ) as client:
            while True:
                try:
                    delivered = await self.deliver_due(client)
                except Exception:
                    log.exception("outbox pass failed", extra={"relay": self.name})
                    delivered = 0
                if self.busy is not None and self.busy():
                    # Make way for the requests; the next pass still goes after the pause.
                    await asyncio.sleep(self.busy_pause_seconds)
                    self._wake.clear()
                    continue
                if delivered < self.batch_size:
                    # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that
                    # arrives in the turn the wake does, and the service's shutdown then
                    # waits for this relay for ever. asyncio.timeout tells the two apart.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.poll_seconds):
                            await self._wake.wait()
                    self._wake.clear()

    async def deliver_due(self, client: ServiceClient) -> int:
        """One pass: claim what is due, deliver it concurrently, record the outcomes together."""
        claimed = await self.database.run(self._claim)
        if not claimed:
            return 0
        try:
            delivered = await asyncio.gather(
                *(self._deliver_all(client, group) for group in self._requests(claimed))
            )
        except asyncio.CancelledError:
            # The service is stopping: hand the messages back now, not when their lease runs
            # out, so that the next start (a rolling restart's) delivers them at once. One the
            # peer took meanwhile is taken once, like any retry.
            self._release(claimed)
            raise
        attempts = [attempt for group in delivered for attempt in group]
        await self.database.run(self._record, attempts)
        return len(claimed)

    def _requests(self, claimed: list[Claimed]) -> list[list[Claimed]]:
        """The messages as requests: those a peer takes in batches grouped by peer and path,
        within the batch limits; every other message alone."""
        requests: list[list[Claimed]] = []
        open_batches: dict[tuple[str, str], tuple[list[Claimed], int]] = {}
        now = time.monotonic()
        for message in claimed:
            batchable = (
                message.path in BATCH_PATHS
                and self._singles_until.get(message.destination, 0.0) <= now
                and len(message.body) <= BATCH_BYTES
            )
            if not batchable:
                requests.append([message])
                continue
            key = (message.destination, message.path)
            batch, size = open_batches.get(key, ([], 0))
            if len(batch) == BATCH_MESSAGES or size + len(message.body) > BATCH_BYTES:
                batch, size = [], 0
            if not batch:
                requests.append(batch)
            batch.append(message)
            open_batches[key] = (batch, size + len(message.body))
        return requests

    async def _deliver_all(self, client: ServiceClient, messages: list[Claimed]) -> list[Attempt]:
        if len(messages) == 1:
            return [await self._deliver(client, messages[0])]
        started = utcnow()
        first = messages[0]
        try:
            url = self.resolve(first.destination).rstrip("/") + BATCH_PATHS[first.path]
            response = await client.post(
                url,
                content=json.dumps({"envelopes": [message.body for message in messages]}).encode(),
                headers={"content-type": "application/json", REQUEST_ID_HEADER: str(uuid.uuid4())},
            )
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            return [Attempt(m, started, utcnow() - started, None, error) for m in messages]
        elapsed = utcnow() - started
        if response.status_code in (404, 405) or response.status_code in PERMANENT_REFUSALS:
            # Older code at the peer, or this batch refused as a whole: then each message
            # alone, to be answered for itself.
            if response.status_code in (404, 405):
                self._singles_until[first.destination] = time.monotonic() + SINGLES_SECONDS
            return list(
                await asyncio.gather(*(self._deliver(client, message) for message in messages))
            )
        outcomes = _batch_outcomes(response, len(messages))
        if isinstance(outcomes, str):
            return [Attempt(m, started, elapsed, response.status_code, outcomes) for m in messages]
        return [
            Attempt(message, started, elapsed, code, error)
            for message, (code, error) in zip(messages, outcomes, strict=True)
        ]

    def _claim(self) -> list[Claimed]:
        now = utcnow()
        c = MESSAGES.c
        with self.database.engine.begin() as connection:
            due = connection.execute(
                select(c.id, c.document_id, c.destination, c.path, c.body)
                .where(c.state == DeliveryState.pending)
                .where(c.next_attempt_at <= now)
                .where(c.leased_until.is_(None) | (c.leased_until < now))
                .order_by(c.next_attempt_at, c.created_at)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            if due:
                connection.execute(
                    update(MESSAGES)
                    .where(c.id.in_([row.id for row in due]))
                    .values(
                        lease_owner=self.name,
                        leased_until=now + timedelta(seconds=self.policy.lease_seconds),
                    )
                )
        return [Claimed(*row) for row in due]

    def _release(self, claimed: list[Claimed]) -> None:
        c = MESSAGES.c
        try:
            with self.database.engine.begin() as connection:
                connection.execute(
                    update(MESSAGES)
                    .where(c.id.in_([message.id for message in claimed]))
                    .where(c.lease_owner == self.name)
                    .values(lease_owner=None, leased_until=None)
                )
        except Exception:
            log.warning("could not hand back leased messages; they wait for their lease to end")

    async def _deliver(self, client: ServiceClient, message: Claimed) -> Attempt:
        started = utcnow()
        status_code: int | None = None
        error: str | None = None
        try:
            url = self.resolve(message.destination).rstrip("/") + message.path
            response = await client.post(
                url,
                content=message.body.encode(),
                headers={"content-type": JOSE_MEDIA_TYPE, REQUEST_ID_HEADER: message.document_id},
            )
            status_code = response.status_code
            if not response.is_success:
                error = f"HTTP {status_code}: {response.text[:300]}"
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        return Attempt(message, started, utcnow() - started, status_code, error)

    def _record(self, attempts: list[Attempt]) -> None:
        """Every outcome of one pass in one transaction; a message whose lease ran out meanwhile
        belongs to another relay now and is left to it."""
        c = MESSAGES.c
        now = utcnow()
        settled: list[tuple[Attempt, int, DeliveryState]] = []
        with self.database.engine.begin() as connection:
            held = dict(
                connection.execute(
                    select(c.id, c.attempts)
                    .where(c.id.in_([attempt.message.id for attempt in attempts]))
                    .where(c.lease_owner == self.name)
                    .with_for_update()
                ).all()
            )
            delivered: list[str] = []
            for attempt in attempts:
                if (previous := held.get(attempt.message.id)) is None:
                    continue
                number = previous + 1
                if attempt.error is None:
                    state = DeliveryState.delivered
                    delivered.append(attempt.message.id)
                else:
                    gave_up = (
                        attempt.status_code in PERMANENT_REFUSALS
                        or number >= self.policy.max_attempts
                    )
                    state = DeliveryState.failed if gave_up else DeliveryState.pending
                    retry_at = now + timedelta(seconds=self.policy.delay(number))
                    connection.execute(
                        update(MESSAGES)
                        .where(c.id == attempt.message.id)
                        .values(
                            state=state,
                            attempts=number,
                            last_error=attempt.error,
                            next_attempt_at=c.next_attempt_at if gave_up else retry_at,
                            lease_owner=None,
                            leased_until=None,
                        )
                    )
                settled.append((attempt, number, state))
            if delivered:
                connection.execute(
                    update(MESSAGES)
                    .where(c.id.in_(delivered))
                    .values(
                        state=DeliveryState.delivered,
                        attempts=c.attempts + 1,
                        delivered_at=now,
                        last_error=None,
                        lease_owner=None,
                        leased_until=None,
                    )
                )
            if settled:
                connection.execute(
                    insert(ATTEMPTS),
                    [
                        {
                            "message_id": attempt.message.id,
                            "number": number,
                            "started_at": attempt.started,
                            "duration_ms": int(attempt.elapsed.total_seconds() * 1000),
                            "status_code": attempt.status_code,
                            "error": attempt.error,
                            "outcome": state,
                        }
                        for attempt, number, state in settled
                    ],
                )
        for attempt, number, state in settled:
            extra = {
                "document_id": attempt.message.document_id,
                "destination": attempt.message.destination,
                "attempt": number,
                "state": str(state),
                "status": attempt.status_code,
            }
            if attempt.error is None:
                log.info("delivered", extra=extra)
            else:
                log.warning("delivery failed", extra={**extra, "error": attempt.error})

    def depth(self) -> dict[str, int]:
        """Messages waiting to be delivered and messages given up on, for /metrics and /readyz."""
        with self.database.session() as session:
            counts = session.exec(
                select(OutboxMessage.state, func.count())
                .where(OutboxMessage.state != DeliveryState.delivered)
                .group_by(OutboxMessage.state)
            ).all()
        found = {str(state): count for state, count in counts}
        return {"pending": found.get("pending", 0), "failed": found.get("failed", 0)}


def _batch_outcomes(response: httpx.Response, count: int) -> list[tuple[int, str | None]] | str:
    """Each message's status and error from a batch's answer, or why the answer is no use
    (then every message of the batch is tried again)."""
    if not response.is_success:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    try:
        results = response.json()["results"]
        statuses = [int(result["status"]) for result in results]
    except (ValueError, TypeError, KeyError):
        return f"HTTP {response.status_code}: an unreadable batch answer"
    if len(statuses) != count:
        return f"HTTP {response.status_code}: {len(statuses)} results for {count} messages"
    outcomes: list[tuple[int, str | None]] = []
    for code, result in zip(statuses, results, strict=True):
        if 200 <= code < 300:
            outcomes.append((code, None))
            continue
        problem = result.get("problem") if isinstance(result.get("problem"), dict) else {}
        about = problem.get("detail") or problem.get("title") or ""
        outcomes.append((code, f"HTTP {code}: {about}"[:500]))
    return outcomes


def attempts_of(session: Session, message_id: str) -> list[OutboxAttempt]:
    return list(
        session.exec(
            select(OutboxAttempt)
            .where(OutboxAttempt.message_id == message_id)
            .order_by(col(OutboxAttempt.number))
        ).all()
    )

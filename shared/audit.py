"""The evidence log every service keeps: append-only and hash-chained.

Each entry records one thing a service did with a document — received it, sent it on, changed its
status — and carries the hash of the entry before it, so editing, removing or reordering any entry
breaks every link after it. `verify_chain` walks the log and names the first broken link; operators
run it as `siapnet audit verify`.

An entry's hash is the SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of its id,
`recorded_at` (ISO 8601, UTC, microseconds), kind, document id, details and previous hash. The id is
the entry's position in the chain (1, 2, 3, …), assigned by `append` and part of the hash.

`append` adds the entry to the caller's transaction, so the entry commits or rolls back with the
data it records. Appends are serialised so the chain stays one line: on PostgreSQL by a
transaction-level advisory lock, on SQLite by the write lock every transaction takes up front
(`BEGIN IMMEDIATE`, see `shared.db`).

`details` is a small dict of ids, hashes, numbers and statuses. It never holds personal data — no
reporter name or contact, no subject name or NIP: the log outlives the documents' access rules and
is shown to operators, so it says *that* something happened, not *about whom*. `append` refuses
the obvious keys (`reporter`, `subject`, `name`, `nip`, `contact`) to catch mistakes early.

The chain proves the entries it holds are unaltered and contiguous; removing entries from the *end*
leaves a shorter, intact chain, so anchor the last hash elsewhere when that matters.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Connection, Row, Text
from sqlmodel import Field, Session, SQLModel, col, select

from shared.db import DriverSQL, UTCDateTime, connection_of, utcnow

GENESIS = "0" * 64  # the previous hash of entry 1
# 'SIAPAUDT' in ASCII: one lock per database, held by whoever is extending the chain.
ADVISORY_LOCK_KEY = 0x5349_4150_4155_4454
VERIFY_BATCH_SIZE = 1000
PERSONAL_KEYS = frozenset({"reporter", "subject", "name", "nip", "contact"})


class AuditKind(StrEnum):
    document_received = "document_received"
    envelope_sent = "envelope_sent"
    status_changed = "status_changed"


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)  # the position in the chain, from 1
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    kind: str = Field(max_length=32)
    document_id: str = Field(index=True, max_length=36)
    details: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON, no personal data
    previous_hash: str = Field(max_length=64)
    # Not unique, nor indexed: nothing looks an entry up by its hash, and an index over random
    # hashes cost every append a page of its own (see intake's migration 0003).
    entry_hash: str = Field(max_length=64)


@dataclass(frozen=True)
class BrokenLink:
    """The first entry that does not hold: its id and what is wrong with it."""

    entry_id: int
    reason: str

    def __str__(self) -> str:
        return f"entry {self.entry_id}: {self.reason}"


@dataclass(frozen=True)
class ChainCheck:
    """What a walk of the log found: how many entries held, and the first that did not."""

    entries: int
    broken: BrokenLink | None

    @property
    def intact(self) -> bool:
        return self.broken is None


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def timestamp(at: datetime) -> str:
    """The form `recorded_at` takes inside the hash; fixed width, so it reads back identically."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(
    *,
    id: int,
    recorded_at: datetime,
    kind: str,
    document_id: str,
    details: dict[str, Any],
    previous_hash: str,
) -> str:
    content = {
        "id": id,
        "recorded_at": timestamp(recorded_at),
        "kind": kind,
        "document_id": document_id,
        "details": details,
        "previous_hash": previous_hash,
    }
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()


@dataclass(frozen=True)
class Event:
    """Something to record: what happened, to which document, with which ids and hashes."""

    kind: str
    document_id: str
    details: dict[str, Any]


def append(
    db: Session | Connection, *, kind: str, document_id: str, details: dict[str, Any]
) -> None:
    """Add an entry to the caller's transaction (not committed here) at the end of the chain."""
    append_all(db, [Event(kind, document_id, details)])


def append_all(db: Session | Connection, events: list[Event]) -> None:
    """Add several entries, in order, to the caller's transaction (a session's or a
    connection's), with one look at the end of the chain (each look costs a query, and intake
    records two events per document)."""
    for event in events:
        if found := PERSONAL_KEYS & event.details.keys():
            raise ValueError(f"audit details must not carry personal data: {sorted(found)}")
    if isinstance(db, Session):
        # Write the caller's pending rows first: once we hold the chain lock we never wait on
        # others.
        db.flush()
    connection = connection_of(db)
    if connection.dialect.name == "postgresql":
        _CHAIN_LOCK.first(connection, {"key": ADVISORY_LOCK_KEY})
    last = _LAST_ENTRY.first(connection)
    position, previous = (0, GENESIS) if last is None else last
    rows = []
    for event in events:
        position += 1
        recorded_at = utcnow()
        current = entry_hash(
            id=position,
            recorded_at=recorded_at,
            kind=str(event.kind),
            document_id=event.document_id,
            details=event.details,
            previous_hash=previous,
        )
        rows.append(
            {
                "id": position,
                "recorded_at": recorded_at,
                "kind": str(event.kind),
                "document_id": event.document_id,
                "details": canonical_json(event.details),
                "previous_hash": previous,
                "entry_hash": current,
            }
        )
        previous = current
    # A plain INSERT, not ORM objects: the entries are never changed after, and building and
    # flushing objects was half the cost of receiving a document.
    _INSERT_ENTRIES.execute_many(connection, rows)


# Plain SQL on the driver (see `DriverSQL`): intake appends twice per document.
_CHAIN_LOCK = DriverSQL("SELECT pg_advisory_xact_lock(:key)")  # PostgreSQL only
_LAST_ENTRY = DriverSQL("SELECT id, entry_hash FROM audit_log ORDER BY id DESC LIMIT 1")
_INSERT_ENTRIES = DriverSQL.insert(
    "audit_log",
    ["id", "recorded_at", "kind", "document_id", "details", "previous_hash", "entry_hash"],
)


def check_chain(session: Session, *, batch_size: int = VERIFY_BATCH_SIZE) -> ChainCheck:
    """Walk the whole log in id order, streaming it, and stop at the first broken link."""
    rows = session.exec(
        select(
            AuditEntry.id,
            AuditEntry.recorded_at,
            AuditEntry.kind,
            AuditEntry.document_id,
            AuditEntry.details,
            AuditEntry.previous_hash,
            AuditEntry.entry_hash,
        )
        .order_by(col(AuditEntry.id))
        .execution_options(yield_per=batch_size)
    )
    expected, previous = 1, GENESIS
    for row in rows:
        if (broken := _check_entry(row, expected, previous)) is not None:
            rows.close()
            return ChainCheck(entries=expected - 1, broken=broken)
        expected, previous = expected + 1, row.entry_hash
    return ChainCheck(entries=expected - 1, broken=None)


def verify_chain(session: Session) -> BrokenLink | None:
    """The first broken link in the log, or None when every entry holds."""
    return check_chain(session).broken


def _check_entry(row: Row[Any], expected: int, previous: str) -> BrokenLink | None:
    """What is wrong with one entry, given the position and hash the chain expects of it."""
    if row.id > expected:
        return BrokenLink(expected, "missing from the log")
    if row.id < expected:  # only ids below 1 can sort before the first expected position
        return BrokenLink(row.id, "its id lies outside the chain (ids start at 1)")
    if row.previous_hash != previous:
        if row.id == 1:
            return BrokenLink(row.id, "previous_hash is not the genesis hash")
        return BrokenLink(row.id, f"previous_hash does not match entry {row.id - 1}")
    try:
        details = json.loads(row.details)
    except ValueError:
        return BrokenLink(row.id, "details are not valid JSON")
    # The stored text is the evidence, so it must be exactly the canonical form that was hashed.
    if not isinstance(details, dict) or canonical_json(details) != row.details:
        return BrokenLink(row.id, "details are not the canonical JSON of a dict")
    recomputed = entry_hash(
        id=row.id,
        recorded_at=row.recorded_at,
        kind=row.kind,
        document_id=row.document_id,
        details=details,
        previous_hash=row.previous_hash,
    )
    if recomputed != row.entry_hash:
        return BrokenLink(row.id, "hash does not match its contents")
    return None

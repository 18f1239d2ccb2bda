"""What each service's database holds, read directly with read-only SQL, and the checks the
fault suite makes of it: nothing lost, nothing twice, the tiers agreeing, every outbox empty,
every audit chain intact.

Each check returns a list of problems (empty when it holds), so one failed run says everything
that went wrong at once.
"""

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from shared import audit
from shared.db import normalise_url
from tests.faults.stream import RETURN, Case, Tally

RECOMMENDATION_SERVICES = ("banten", "national")
AUDITED = ("intake", "banten", "national")


def read_only_engine(url: str) -> Engine:
    """An engine that cannot write: SQLite opened `mode=ro`, PostgreSQL read-only sessions."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "").resolve()
        return create_engine(f"sqlite:///file:{path}?mode=ro&uri=true", poolclass=NullPool)
    return create_engine(
        url,
        poolclass=NullPool,
        connect_args={"options": "-c default_transaction_read_only=on"},
    )


@dataclass
class Holdings:
    """One service's rows that matter here, read in one transaction."""

    documents: dict[str, dict[str, Any]] = field(default_factory=dict)  # intake
    recommendations: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows_per_id: Counter = field(default_factory=Counter)  # documents/recommendations by id
    history: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    outbox: list[dict[str, Any]] = field(default_factory=list)
    audit: Counter = field(default_factory=Counter)  # (kind, document id) -> entries

    def outbox_states(self) -> Counter:
        return Counter(message["state"] for message in self.outbox)


def rows(connection, sql: str) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in connection.execute(text(sql))]


def read_holdings(engine: Engine, service: str) -> Holdings:
    held = Holdings()
    with engine.connect() as connection:
        if service == "intake":
            for row in rows(
                connection,
                "SELECT id, office_id, registration_number, status, receipt FROM documents",
            ):
                held.documents[row["id"]] = row
                held.rows_per_id[row["id"]] += 1
        else:
            for row in rows(
                connection, "SELECT id, status, national_sequence, version FROM recommendations"
            ):
                held.recommendations[row["id"]] = row
                held.rows_per_id[row["id"]] += 1
            for row in rows(
                connection,
                "SELECT recommendation_id, event_id, sequence, action, to_status, applied"
                " FROM status_history ORDER BY id",
            ):
                held.history[row["recommendation_id"]].append(row)
        held.outbox = rows(
            connection, "SELECT document_id, destination, path, state FROM outbox_messages"
        )
        for row in rows(connection, "SELECT kind, document_id FROM audit_log"):
            held.audit[(row["kind"], row["document_id"])] += 1
    return held


def read_all(engines: dict[str, Engine]) -> dict[str, Holdings]:
    return {service: read_holdings(engines[service], service) for service in AUDITED}


# --- settling -------------------------------------------------------------------------------


def unsettled(held: dict[str, Holdings], cases: list[Case], tally: Tally) -> list[str]:
    """What is still on its way: outbox messages pending, documents not arrived, tiers apart."""
    waiting = [
        f"{service}: {held[service].outbox_states()['pending']} outbox messages pending"
        for service in AUDITED
        if held[service].outbox_states()["pending"]
    ]
    accepted = [case for case in cases if case.id in tally.accepted]
    missing = [c.id for c in accepted if c.id not in held["banten"].recommendations]
    if missing:
        waiting.append(f"banten lacks {len(missing)} accepted recommendations")
    forwarded = [case for case in accepted if case.forwarded]
    missing = [c.id for c in forwarded if c.id not in held["national"].recommendations]
    if missing:
        waiting.append(f"national lacks {len(missing)} forwarded recommendations")
    apart = [
        case.id
        for case in forwarded
        if case.id in held["national"].recommendations
        and held["national"].recommendations[case.id]["status"]
        != held["banten"].recommendations.get(case.id, {}).get("status")
    ]
    if apart:
        waiting.append(f"{len(apart)} recommendations with banten and national apart")
    return waiting


def wait_settled(
    engines: dict[str, Engine], cases: list[Case], tally: Tally, *, timeout: float
) -> tuple[float, list[str]]:
    """Seconds until nothing is on its way any more, and what still was at the timeout."""
    started = time.monotonic()
    while True:
        waiting = unsettled(read_all(engines), cases, tally)
        if not waiting or time.monotonic() - started > timeout:
            return time.monotonic() - started, waiting
        time.sleep(0.5)


# --- the checks -----------------------------------------------------------------------------


def check_documents(held: dict[str, Holdings], cases: list[Case], tally: Tally) -> list[str]:
    """Every accepted submission once at intake (with the registration the driver was given,
    numbers gap-free per office), once at the province, and — if forwarded — once at national;
    nothing there the driver did not send."""
    problems = []
    intake, banten, national = held["intake"], held["banten"], held["national"]
    accepted = {case.id: case for case in cases if case.id in tally.accepted}
    for where, holdings, expected in (
        ("intake", intake, set(accepted)),
        ("banten", banten, set(accepted)),
        ("national", national, {i for i, case in accepted.items() if case.forwarded}),
    ):
        held_ids = set(holdings.rows_per_id)
        if lost := expected - held_ids:
            problems.append(f"{where} lost {len(lost)} documents, e.g. {sorted(lost)[:3]}")
        if strays := held_ids - expected:
            problems.append(f"{where} holds {len(strays)} unexpected, e.g. {sorted(strays)[:3]}")
        if twice := [i for i, n in holdings.rows_per_id.items() if n != 1]:
            problems.append(f"{where} holds {len(twice)} documents more than once: {twice[:3]}")
        for document_id in expected & held_ids:
            if (n := holdings.audit[("document_received", document_id)]) != 1:
                problems.append(f"{where} logged {document_id} as received {n} times")
    for document_id, acceptance in tally.accepted.items():
        stored = intake.documents.get(document_id)
        if stored and (
            stored["registration_number"] != acceptance.registration_number
            or stored["receipt"] != acceptance.receipt
        ):
            problems.append(
                f"intake registered {document_id} as {stored['registration_number']}, but the"
                f" office was given {acceptance.registration_number} or another receipt"
            )
    for where, holdings, sent in (
        ("intake", intake, set(accepted)),
        ("banten", banten, {i for i, case in accepted.items() if case.forwarded}),
    ):
        for document_id in sent:
            if (n := holdings.audit[("envelope_sent", document_id)]) != 1:
                problems.append(f"{where} logged {n} envelopes sent for {document_id}")
    numbers: dict[str, list[int]] = defaultdict(list)
    for document in intake.documents.values():
        numbers[document["office_id"]].append(int(document["registration_number"].rsplit("-")[-1]))
    for office, taken in numbers.items():
        if sorted(taken) != list(range(1, len(taken) + 1)):
            problems.append(f"{office}'s registration numbers are not 1..{len(taken)}")
    return problems


def check_statuses(held: dict[str, Holdings], cases: list[Case], tally: Tally) -> list[str]:
    """Each planned change taken once where it belongs, each national status event applied at
    the province exactly once and in order, and every recommendation where the plan ends it —
    the same at both tiers; a returned one returned at intake too."""
    problems = []
    intake, banten, national = held["intake"], held["banten"], held["national"]
    for case in cases:
        if case.id not in tally.accepted:
            continue
        at_province = banten.recommendations.get(case.id)
        if at_province is None:
            continue  # reported as lost by check_documents
        if at_province["status"] != case.final_status:
            problems.append(
                f"{case.id}: banten says {at_province['status']}, planned {case.final_status}"
            )
        # The province's own changes carry no national sequence (its `return` has an event id:
        # the status event it sends intake).
        local = Counter(r["action"] for r in banten.history[case.id] if r["sequence"] is None)
        wanted = Counter(["submit", *(s.action for s in case.province_steps)])
        if local != wanted:
            problems.append(f"{case.id}: banten's own history is {dict(local)}, not {dict(wanted)}")
        changes = len(banten.history[case.id]) - 1  # every row but the arrival
        if (n := banten.audit[("status_changed", case.id)]) != changes:
            problems.append(f"{case.id}: banten logged {n} status changes for {changes} rows")
        from_national = [r for r in banten.history[case.id] if r["sequence"]]
        applied = [r["sequence"] for r in from_national if r["applied"]]
        if applied != sorted(set(applied)):
            problems.append(f"{case.id}: banten applied national's events out of order {applied}")
        if any(r["sequence"] > max(applied, default=0) for r in from_national if not r["applied"]):
            problems.append(f"{case.id}: banten set aside an event newer than those it applied")
        document = intake.documents.get(case.id)
        returned = RETURN in case.province_steps
        intake_status = "returned" if returned else "received"
        if document is not None and document["status"] != intake_status:
            problems.append(f"{case.id}: intake says {document['status']}, not {intake_status}")
        if (n := intake.audit[("status_changed", case.id)]) != int(returned):
            problems.append(f"{case.id}: intake logged {n} status changes")
        if not case.forwarded:
            continue
        at_national = national.recommendations.get(case.id)
        if at_national is None:
            continue
        if at_national["status"] != at_province["status"]:
            problems.append(
                f"{case.id}: national says {at_national['status']}, banten {at_province['status']}"
            )
        emitted = [r for r in national.history[case.id] if r["event_id"] is not None]
        actions = [r["action"] for r in national.history[case.id]]
        if actions != ["forward", *(s.action for s in case.national_steps)]:
            problems.append(f"{case.id}: national's history is {actions}")
        if (n := national.audit[("status_changed", case.id)]) != len(actions) - 1:
            problems.append(f"{case.id}: national logged {n} status changes")
        if [r["sequence"] for r in emitted] != list(range(1, len(emitted) + 1)):
            problems.append(f"{case.id}: national's event sequence is not 1..{len(emitted)}")
        arrived = Counter(r["event_id"] for r in from_national)
        for event in emitted:
            if arrived[event["event_id"]] != 1:
                problems.append(
                    f"{case.id}: event {event['event_id']} (seq {event['sequence']}) is at"
                    f" banten {arrived[event['event_id']]} times"
                )
        if set(arrived) - {e["event_id"] for e in emitted}:
            problems.append(f"{case.id}: banten holds events national never emitted")
        if at_province["national_sequence"] != len(emitted):
            problems.append(
                f"{case.id}: banten applied up to sequence {at_province['national_sequence']},"
                f" national emitted {len(emitted)}"
            )
    return problems


def check_outboxes(held: dict[str, Holdings], cases: list[Case], tally: Tally) -> list[str]:
    """No message pending or failed anywhere, and one message per thing announced: an envelope
    per accepted document at intake and per forward at the province, a status event per
    `return` at the province (to intake) and per change at national (to the province)."""
    problems = []
    for service in AUDITED:
        states = held[service].outbox_states()
        if states["pending"] or states["failed"]:
            problems.append(
                f"{service}: {states['pending']} outbox messages pending, {states['failed']} failed"
            )
    accepted = [case for case in cases if case.id in tally.accepted]
    envelopes = {
        "intake": Counter({case.id: 1 for case in accepted}),
        "banten": Counter({case.id: 1 for case in accepted if case.forwarded}),
    }
    for service, wanted in envelopes.items():
        sent = Counter(m["document_id"] for m in held[service].outbox if is_envelope(m))
        if sent != wanted:
            differing = [i for i in set(sent) | set(wanted) if sent[i] != wanted[i]]
            problems.append(f"{service}: not one envelope per document, e.g. {differing[:3]}")
    returned = sum(RETURN in case.province_steps for case in accepted)
    for service in RECOMMENDATION_SERVICES:
        announced = own_events(held, service)
        sent = Counter(m["document_id"] for m in held[service].outbox if not is_envelope(m))
        if set(sent) != announced or any(n != 1 for n in sent.values()):
            problems.append(f"{service}: not exactly one outbox message per status event")
    if (announced := len(own_events(held, "banten"))) != returned:
        problems.append(f"banten announced {announced} returns, not {returned}")
    return problems


def is_envelope(message: dict[str, Any]) -> bool:
    return message["path"].endswith("/envelopes")


def own_events(held: dict[str, Holdings], service: str) -> set[str]:
    """The status events a service emitted itself: every one at national; at the province its
    returns (the events it applied from national carry national's sequence)."""
    return {
        row["event_id"]
        for history in held[service].history.values()
        for row in history
        if row["event_id"] and (service == "national" or row["sequence"] is None)
    }


def check_chains(engines: dict[str, Engine]) -> tuple[dict[str, int], list[str]]:
    """`shared.audit.check_chain` on every service that keeps an evidence log."""
    entries, problems = {}, []
    for service in AUDITED:
        with Session(engines[service]) as session:
            checked = audit.check_chain(session)
        entries[service] = checked.entries
        if not checked.intact:
            problems.append(f"{service}: audit chain broken at {checked.broken}")
    return entries, problems

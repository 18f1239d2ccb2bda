"""The recommendation service's logic, the same code at both tiers.

Upward, a service receives an envelope (intake → province, province → national), checks the inner
office document against the key the envelope carries, and holds the recommendation. Transitions
follow `shared.lifecycle`; each one is a row of history and an audit entry, and — in the same
transaction — whatever it must announce goes into the outbox: a province's `forward` as an
envelope to national, a province's `return` as a status event to intake, and every change at
national as a status event down to the province. A province applies national's events in
sequence order: a late or repeated event never overwrites a newer state.
"""

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Select, func
from sqlmodel import Session, col, select

from services.recommendation.models import Recommendation, RecommendationCount, StatusChange
from services.recommendation.settings import RecommendationSettings
from shared import audit, documents, lifecycle, outbox, regions
from shared.codes import Category
from shared.db import DriverSQL, utcnow
from shared.identity import Caller
from shared.lifecycle import Action, Status
from shared.problems import (
    Conflict,
    DocumentIdReused,
    InvalidFields,
    InvalidSignature,
    MalformedRequest,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
)
from shared.signing import (
    KeyPair,
    SignatureError,
    Verified,
    parse_public_jwk,
    thumbprint,
    unverified_payload,
    verify,
)

WIB = timezone(timedelta(hours=7))  # deadlines count calendar days in Jakarta
ENVELOPES_PATH = "/exchange/v1/envelopes"
STATUS_EVENTS_PATH = "/exchange/v1/status-events"


@dataclass(frozen=True)
class Context:
    """What the logic needs from the running service."""

    settings: RecommendationSettings
    signing_key: KeyPair

    def holidays(self) -> frozenset[date]:
        return frozenset(self.settings.extra_holidays)


def today() -> date:
    return datetime.now(WIB).date()


# --- receiving envelopes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    created: bool
    acknowledgement: str


# The envelope path reads and writes with plain SQL on the driver's cursor (see `DriverSQL`): the
# ORM's unit of work and a model object per arrival, and SQLAlchemy's work around each
# statement, cost more than running them.
_HELD_BY_ID = DriverSQL(
    "SELECT document, province_code, registration_number FROM recommendations WHERE id = :id"
)
_INSERT_RECOMMENDATION = DriverSQL.insert(
    "recommendations",
    [
        "id",
        "office_id",
        "province_code",
        "regency_code",
        "region_code",
        "category",
        "source",
        "election_kind",
        "election_year",
        "position_class",
        "employment",
        "occurred_on",
        "registration_number",
        "received_at",
        "arrived_at",
        "status",
        "version",
        "national_sequence",
        "review_due_on",
        "reviewed_on",
        "ppk_due_on",
        "document",
        "signer_jwk",
        "envelope",
        "updated_at",
    ],
)
_INSERT_STATUS_CHANGE = DriverSQL.insert(
    "status_history",
    [
        "recommendation_id",
        "event_id",
        "sequence",
        "action",
        "from_status",
        "to_status",
        "at",
        "actor_office",
        "actor_user",
        "note",
        "details",
        "applied",
        "document",
    ],
)


def receive_envelope(
    session: Session, *, compact: str, verified: Verified, sender: str, context: Context
) -> Arrival:
    """Hold the recommendation an envelope carries; idempotent on the office document's id."""
    settings = context.settings
    try:
        envelope = documents.parse(documents.EnvelopePayload, verified.payload)
    except documents.DocumentRejected as exc:
        raise InvalidFields("The envelope has invalid fields.", errors=exc.errors) from None
    if envelope.aud not in settings.service_ids:
        raise InvalidSignature(f"the envelope is addressed to {envelope.aud}, not to this service")
    _check_upstream(sender, settings)
    inner = _verified_office_document(envelope)
    try:
        parsed = documents.check_recommendation(inner.payload)
    except documents.DocumentRejected as exc:
        raise InvalidFields("The enclosed recommendation is invalid.", errors=exc.errors) from None
    except documents.NotInJurisdiction as exc:
        raise InvalidFields(
            str(exc), errors=[{"field": "document", "message": str(exc), "type": "jurisdiction"}]
        ) from None
    office = regions.office(parsed.iss)
    assert office is not None and office.region is not None  # checked by check_recommendation
    province_code = office.region.province_code
    if settings.service_id_for(province_code) != envelope.aud or (
        settings.tier == "national" and sender != documents.province_service(province_code)
    ):
        raise InvalidFields(
            f"a recommendation of province {province_code} does not belong here",
            errors=[{"field": "document", "message": "wrong province", "type": "routing"}],
        )

    connection = session.connection()
    if held := _HELD_BY_ID.first(connection, {"id": str(parsed.jti)}):
        document, held_province, number = held
        if document != envelope.document:
            raise DocumentIdReused(f"recommendation {parsed.jti} arrived before with other bytes")
        return Arrival(
            False, _acknowledge(str(parsed.jti), held_province, number, compact, sender, context)
        )

    arrived = utcnow()
    recommendation = parsed.recommendation
    national = settings.tier == "national"
    status = Status.forwarded if national else Status.submitted
    row = {
        "id": str(parsed.jti),
        "office_id": office.id,
        "province_code": province_code,
        "regency_code": _regency_of(office, recommendation.region_code),
        "region_code": recommendation.region_code,
        "category": recommendation.category,
        "source": recommendation.source,
        "election_kind": recommendation.election.kind,
        "election_year": recommendation.election.year,
        "position_class": recommendation.subject.position_class,
        "employment": recommendation.subject.employment,
        "occurred_on": recommendation.occurred_on,
        "registration_number": envelope.registration.number,
        "received_at": envelope.registration.received_at,
        "arrived_at": arrived,
        "status": status,
        "version": 1,
        "national_sequence": 0,
        "review_due_on": None
        if national
        else lifecycle.add_working_days(
            envelope.registration.received_at.astimezone(WIB).date(),
            settings.province_review_days,
            extra_holidays=context.holidays(),
        ),
        "reviewed_on": None,
        "ppk_due_on": None,
        "document": envelope.document,
        "signer_jwk": json.dumps(envelope.signer_jwk, sort_keys=True),
        "envelope": compact,
        "updated_at": arrived,
    }
    _INSERT_RECOMMENDATION.execute(connection, row)
    _INSERT_STATUS_CHANGE.execute(
        connection,
        {
            "recommendation_id": row["id"],
            "event_id": None,
            "sequence": None,
            "action": envelope.attestation.action if national else "submit",
            "from_status": Status.verified if national else None,
            "to_status": status,
            "at": arrived,
            "actor_office": envelope.attestation.by if national else office.id,
            "actor_user": None,
            "note": envelope.attestation.note,
            "details": "{}",
            "applied": True,
            "document": None,
        },
    )
    number = envelope.registration.number
    audit.append(
        session,
        kind=audit.AuditKind.document_received,
        document_id=row["id"],
        details={
            "sender": sender,
            "envelope_sha256": _sha256(compact),
            "document_sha256": _sha256(envelope.document),
            "registration_number": number,
        },
    )
    acknowledgement = _acknowledge(row["id"], province_code, number, compact, sender, context)
    session.commit()
    return Arrival(True, acknowledgement)


def _check_upstream(sender: str, settings: RecommendationSettings) -> None:
    expected = "a province service" if settings.tier == "national" else documents.INTAKE_SERVICE
    if settings.tier == "province" and sender == documents.INTAKE_SERVICE:
        return
    if settings.tier == "national" and sender.startswith(documents.province_service("")):
        return
    raise InvalidSignature(f"envelopes for this service come from {expected}, not {sender}")


def _verified_office_document(envelope: documents.EnvelopePayload) -> Verified:
    """The office's document, verified with the key the envelope carries; that key's
    thumbprint must be the kid the office signed with."""
    try:
        signer = parse_public_jwk(envelope.signer_jwk)
    except ValueError as exc:
        raise InvalidSignature(f"signer_jwk: {exc}") from None
    kid = thumbprint(signer)
    try:
        return verify(
            envelope.document,
            typ=documents.RECOMMENDATION_TYP,
            key_for=lambda named: signer if named == kid else None,
        )
    except SignatureError as exc:
        problem = MalformedRequest if exc.malformed else InvalidSignature
        raise problem(f"the enclosed office document was refused: {exc.reason}") from None


def _regency_of(office: regions.Office, region_code: str) -> str:
    return region_code[:5] if len(region_code) >= 5 else office.region.code  # type: ignore[union-attr]


def _acknowledge(
    recommendation_id: str,
    province_code: str,
    registration_number: str,
    compact: str,
    sender: str,
    context: Context,
) -> str:
    """A signed acknowledgement: the receipt type, naming the document and its hash."""
    received_at = utcnow()
    return context.signing_key.sign(
        {
            "jti": str(uuid.uuid4()),
            "iss": context.settings.service_id_for(province_code),
            "aud": sender,
            "iat": documents.timestamp(received_at),
            "sub": _document_id_of(compact) or recommendation_id,
            "document_sha256": _sha256(compact),
            "registration_number": registration_number,
            "received_at": received_at.isoformat(),
        },
        documents.RECEIPT_TYP,
    )


def _document_id_of(compact: str) -> str | None:
    try:
        return str(unverified_payload(compact).get("jti"))
    except (ValueError, AttributeError):
        return None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- transitions -----------------------------------------------------------------------------


def etag_of(recommendation: Recommendation) -> str:
    return f'"{recommendation.id}.{recommendation.version}"'


def transition(
    session: Session,
    *,
    recommendation_id: str,
    action: str,
    note: str | None,
    details: dict[str, Any] | None,
    if_match: str | None,
    caller: Caller,
    context: Context,
) -> Recommendation:
    """Take a lifecycle action for the caller's tier, if the caller's copy is current."""
    recommendation = visible(session, recommendation_id=recommendation_id, caller=caller, lock=True)
    if if_match is None:
        raise PreconditionRequired("send If-Match with the ETag you read")
    if etag_of(recommendation) not in {tag.strip() for tag in if_match.split(",")}:
        raise PreconditionFailed(
            "the recommendation changed since you read it; read it again",
            current_etag=etag_of(recommendation),
        )
    actor = actor_of(caller, context.settings)
    current = Status(recommendation.status)
    allowed = allowed_for(recommendation, caller, context.settings)
    try:
        chosen = Action(action)
    except ValueError:
        chosen = None
    if actor is None:
        raise Conflict(
            f"a {caller.office.tier} office takes no action at the {context.settings.tier} service",
            allowed=[],
        )
    if chosen is None or chosen is Action.mark_overdue:
        raise Conflict(f"{action!r} is not an action you can take", allowed=allowed)
    try:
        target = lifecycle.next_status(current, chosen, actor)
    except lifecycle.TransitionRefused as exc:
        raise Conflict(exc.message, allowed=[str(a) for a in exc.allowed]) from None
    try:
        checked = lifecycle.check_details(chosen, details)
    except lifecycle.InvalidDetails as exc:
        raise InvalidFields("The action's details are invalid.", errors=exc.errors) from None
    if note is not None and len(note) > 2000:
        raise InvalidFields(
            "The note is too long.",
            errors=[{"field": "note", "message": "at most 2000 characters", "type": "too_long"}],
        )
    _apply(
        session,
        recommendation,
        action=chosen,
        target=target,
        note=note,
        details=checked,
        actor_office=caller.office.id,
        actor_user=caller.subject,
        context=context,
    )
    session.commit()
    return recommendation


def actor_of(caller: Caller, settings: RecommendationSettings) -> lifecycle.Actor | None:
    """The caller acts as its tier, and only at the service of that tier: a regency office, or
    a province office calling the national service, takes no action here."""
    if caller.office.tier != settings.tier:
        return None
    return lifecycle.Actor(settings.tier)


def allowed_for(recommendation: Recommendation, caller: Caller, settings) -> list[str]:
    actor = actor_of(caller, settings)
    if actor is None:
        return []
    return [str(a) for a in lifecycle.allowed_actions(Status(recommendation.status), actor)]


def _apply(
    session: Session,
    recommendation: Recommendation,
    *,
    action: Action,
    target: Status,
    note: str | None,
    details: dict[str, Any],
    actor_office: str,
    actor_user: str | None,
    context: Context,
) -> None:
    """Change the status, record it, and queue what the change must announce — one transaction."""
    settings = context.settings
    now = utcnow()
    source = recommendation.status
    if action in (Action.verify, Action.return_):
        recommendation.reviewed_on = now.astimezone(WIB).date()
    if action is Action.recommend:
        recommendation.ppk_due_on = lifecycle.add_working_days(
            now.astimezone(WIB).date(),
            settings.ppk_follow_up_days,
            extra_holidays=context.holidays(),
        )
        details = {**details, "ppk_due_on": recommendation.ppk_due_on.isoformat()}
    recommendation.status = target
    recommendation.version += 1
    recommendation.updated_at = now
    sequence = None
    if settings.tier == "national":
        recommendation.national_sequence += 1
        sequence = recommendation.national_sequence
    session.add(recommendation)
    change = StatusChange(
        recommendation_id=recommendation.id,
        sequence=sequence,
        action=action,
        from_status=source,
        to_status=target,
        at=now,
        actor_office=actor_office,
        actor_user=actor_user,
        note=note,
        details=json.dumps(details, sort_keys=True),
    )
    session.add(change)
    audit.append(
        session,
        kind=audit.AuditKind.status_changed,
        document_id=recommendation.id,
        details={"action": str(action), "from": source, "to": str(target), "by": actor_office},
    )
    if action is Action.forward:
        _forward_to_national(
            session, recommendation, actor_office=actor_office, note=note, context=context
        )
    elif settings.tier == "national":
        _announce(
            session,
            recommendation,
            change,
            audience=documents.province_service(recommendation.province_code),
            context=context,
        )
    elif action is Action.return_:
        _announce(
            session, recommendation, change, audience=documents.INTAKE_SERVICE, context=context
        )


def _forward_to_national(
    session: Session,
    recommendation: Recommendation,
    *,
    actor_office: str,
    note: str | None,
    context: Context,
) -> None:
    envelope = context.signing_key.sign(
        {
            "jti": str(uuid.uuid4()),
            "iss": context.settings.service_id_for(recommendation.province_code),
            "aud": documents.NATIONAL_SERVICE,
            "iat": documents.timestamp(),
            "document": recommendation.document,
            "signer_jwk": json.loads(recommendation.signer_jwk),
            "registration": {
                "number": recommendation.registration_number,
                "received_at": recommendation.received_at.isoformat(),
            },
            "attestation": {"by": actor_office, "action": "forward", "note": note},
        },
        documents.ENVELOPE_TYP,
    )
    outbox.enqueue(
        session,
        document_id=recommendation.id,
        destination=documents.NATIONAL_SERVICE,
        path=ENVELOPES_PATH,
        body=envelope,
    )
    audit.append(
        session,
        kind=audit.AuditKind.envelope_sent,
        document_id=recommendation.id,
        details={"destination": documents.NATIONAL_SERVICE, "envelope_sha256": _sha256(envelope)},
    )


def _announce(
    session: Session,
    recommendation: Recommendation,
    change: StatusChange,
    *,
    audience: str,
    context: Context,
) -> None:
    """Send a status change to a service below as a signed status event."""
    event_id = str(uuid.uuid4())
    change.event_id = event_id
    event = context.signing_key.sign(
        {
            "jti": event_id,
            "iss": context.settings.service_id_for(recommendation.province_code),
            "aud": audience,
            "iat": documents.timestamp(change.at),
            "recommendation_id": recommendation.id,
            "sequence": change.sequence or 1,
            "from": change.from_status,
            "to": change.to_status,
            "at": change.at.isoformat(),
            "actor": {"office": change.actor_office, "user": change.actor_user},
            "note": change.note,
            "details": json.loads(change.details),
        },
        documents.STATUS_TYP,
    )
    change.document = event
    outbox.enqueue(
        session,
        document_id=event_id,
        destination=audience,
        path=STATUS_EVENTS_PATH,
        body=event,
    )


# --- status events from national (province tier) ---------------------------------------------


def receive_status_event(
    session: Session, *, compact: str, verified: Verified, sender: str, context: Context
) -> str:
    """Apply national's status event to the province's copy; answers the acknowledgement."""
    settings = context.settings
    if settings.tier != "province" or sender != documents.NATIONAL_SERVICE:
        raise InvalidSignature("status events come from the national service to a province")
    try:
        event = documents.parse(documents.StatusPayload, verified.payload)
    except documents.DocumentRejected as exc:
        raise InvalidFields("The status event has invalid fields.", errors=exc.errors) from None
    if event.aud not in settings.service_ids:
        raise InvalidSignature(f"the status event is addressed to {event.aud}, not this service")
    recommendation = session.exec(
        select(Recommendation)
        .where(Recommendation.id == str(event.recommendation_id))
        .with_for_update()
    ).first()
    if (
        recommendation is None
        or documents.province_service(recommendation.province_code) != event.aud
    ):
        raise NotFound(f"no recommendation {event.recommendation_id} here")
    try:
        target = Status(event.to)
    except ValueError:
        raise InvalidFields(
            "unknown status", errors=[{"field": "to", "message": "unknown status", "type": "enum"}]
        ) from None
    event_id = str(event.jti)
    seen = session.exec(select(StatusChange).where(StatusChange.event_id == event_id)).first()
    if seen is None:
        newer = event.sequence > recommendation.national_sequence
        session.add(
            StatusChange(
                recommendation_id=recommendation.id,
                event_id=event_id,
                sequence=event.sequence,
                action=_action_of(event),
                from_status=event.from_,
                to_status=target,
                at=event.at,
                actor_office=event.actor.office,
                actor_user=event.actor.user,
                note=event.note,
                details=json.dumps(event.details, sort_keys=True),
                applied=newer,
                document=compact,
            )
        )
        if newer:
            recommendation.status = target
            recommendation.national_sequence = event.sequence
            recommendation.version += 1
            recommendation.updated_at = utcnow()
            if "ppk_due_on" in event.details:
                recommendation.ppk_due_on = date.fromisoformat(event.details["ppk_due_on"])
            session.add(recommendation)
        audit.append(
            session,
            kind=audit.AuditKind.status_changed,
            document_id=recommendation.id,
            details={
                "event_id": event_id,
                "sequence": event.sequence,
                "to": str(target),
                "applied": newer,
                "sender": sender,
            },
        )
    acknowledgement = _acknowledge(
        recommendation.id,
        recommendation.province_code,
        recommendation.registration_number,
        compact,
        sender,
        context,
    )
    session.commit()
    return acknowledgement


def _action_of(event: documents.StatusPayload) -> str:
    for row in lifecycle.TRANSITIONS:
        if row.source == event.from_ and row.target == event.to:
            return str(row.action)
    return "status_event"


# --- the system's deadline job (national tier) -----------------------------------------------


OVERDUE_BATCH = 500


def mark_overdue(
    session: Session, *, context: Context, on: date | None = None, limit: int = OVERDUE_BATCH
) -> int:
    """Move up to `limit` recommendations whose PPK follow-up is past due to `overdue`, in one
    transaction; the caller repeats while a whole batch was marked. Bounded, so a backlog (a
    service back after days away) never becomes one transaction holding every row it marks."""
    day = on or today()
    due = session.exec(
        select(Recommendation)
        .where(Recommendation.status == Status.sanction_recommended)
        .where(col(Recommendation.ppk_due_on) < day)
        .order_by(col(Recommendation.ppk_due_on))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for recommendation in due:
        target = lifecycle.next_status(
            Status(recommendation.status), Action.mark_overdue, lifecycle.Actor.system
        )
        _apply(
            session,
            recommendation,
            action=Action.mark_overdue,
            target=target,
            note=f"PPK follow-up was due on {recommendation.ppk_due_on}",
            details={},
            actor_office="system",
            actor_user=None,
            context=context,
        )
    session.commit()
    return len(due)


# --- reads -----------------------------------------------------------------------------------


Rows = type[Recommendation] | type[RecommendationCount]


def in_scope(statement: Select, caller: Caller, rows: Rows = Recommendation) -> Select:
    """Limit a query to the caller's jurisdiction: a regency office sees its own
    recommendations, a province its province's, national everything. `rows` is what the
    query reads: the recommendations, or their counts."""
    office = caller.office
    if office.tier is regions.Tier.regency:
        return statement.where(rows.office_id == office.id)
    if office.tier is regions.Tier.province:
        return statement.where(rows.province_code == office.province_code)
    return statement


def visible(
    session: Session, *, recommendation_id: str, caller: Caller, lock: bool = False
) -> Recommendation:
    """The recommendation if the caller may see it; otherwise 404, so nothing is learned."""
    statement = in_scope(
        select(Recommendation).where(Recommendation.id == recommendation_id), caller
    )
    if lock:
        statement = statement.with_for_update()
    found = session.exec(statement).first()
    if found is None:
        raise NotFound(f"no recommendation {recommendation_id}")
    return found


def history(session: Session, recommendation_id: str) -> list[StatusChange]:
    return list(
        session.exec(
            select(StatusChange)
            .where(StatusChange.recommendation_id == recommendation_id)
            .order_by(col(StatusChange.id))
        ).all()
    )


@dataclass(frozen=True)
class Filters:
    status: str | None = None
    category: str | None = None
    region_code: str | None = None
    office: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def countable(self) -> bool:
        """Whether `recommendation_counts` can be filtered this way: counts know no time, and
        no region finer than the province."""
        return (
            self.since is None
            and self.until is None
            and (self.region_code is None or "." not in self.region_code)
        )


def checked_filters(
    *,
    status: str | None = None,
    category: str | None = None,
    region_code: str | None = None,
    office: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Filters:
    """The filters, refused when they name no known code: a misspelt one would otherwise count
    nothing and pass for an all-clear. A time without a zone is taken as WIB."""
    errors = []
    if status is not None and status not in {code.value for code in Status}:
        errors.append(_unknown("status", ", ".join(Status)))
    if category is not None and category not in {code.value for code in Category}:
        errors.append(_unknown("category", ", ".join(Category)))
    if region_code is not None and regions.region(region_code) is None:
        errors.append(_unknown("region_code", "a Kemendagri region code such as 36.01"))
    if office is not None and regions.office(office) is None:
        errors.append(_unknown("office", "an office id such as bawaslu-36.01"))
    if errors:
        raise InvalidFields("Some filters name no known code.", errors=errors)
    return Filters(
        status=status,
        category=category,
        region_code=region_code,
        office=office,
        since=_zoned(since),
        until=_zoned(until),
    )


def _unknown(field: str, expected: str) -> dict[str, str]:
    return {"field": field, "message": f"unknown {field}; expected {expected}", "type": "enum"}


def _zoned(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=WIB)


def filtered(statement: Select, filters: Filters, rows: Rows = Recommendation) -> Select:
    """The list and totals filters of DESIGN §5; a region includes the regions inside it.
    Counts can be filtered by everything but the time and a region below a province:
    `filters.countable`."""
    if filters.status:
        statement = statement.where(rows.status == filters.status)
    if filters.category:
        statement = statement.where(rows.category == filters.category)
    if filters.office:
        statement = statement.where(rows.office_id == filters.office)
    if rows is RecommendationCount:
        assert filters.countable, filters
        if filters.region_code:
            # Every region of a recommendation lies in its office's province.
            statement = statement.where(rows.province_code == filters.region_code)
        return statement
    if filters.region_code:
        statement = statement.where(
            (Recommendation.region_code == filters.region_code)
            | col(Recommendation.region_code).startswith(filters.region_code + ".")
        )
    if filters.since:
        statement = statement.where(Recommendation.received_at >= filters.since)
    if filters.until:
        statement = statement.where(Recommendation.received_at < filters.until)
    return statement


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "seq":
            raise ValueError(cursor)
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise InvalidFields(
            "the cursor is not one this service gave out",
            errors=[{"field": "cursor", "message": "unknown cursor", "type": "cursor"}],
        ) from None


def page(
    session: Session, *, caller: Caller, filters: Filters, cursor: str | None, limit: int
) -> tuple[list[Recommendation], str | None]:
    """Newest first by arrival order; a cursor continues below the last row it saw, so rows
    added meanwhile neither repeat nor push others out of the page."""
    statement = filtered(in_scope(select(Recommendation), caller), filters)
    if cursor is not None:
        statement = statement.where(col(Recommendation.seq) < decode_cursor(cursor))
    rows = list(
        session.exec(statement.order_by(col(Recommendation.seq).desc()).limit(limit + 1)).all()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].seq) if more and rows else None  # type: ignore[arg-type]


def count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(Recommendation)).one()

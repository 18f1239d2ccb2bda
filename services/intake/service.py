"""Intake's logic: office keys, receiving a signed recommendation, and the status events
province services send back.

`receive` checks, in order: the compact form, the signature with the office's registered key,
the claims (`typ`, `iss`, `aud`, `iat`, key retirement), the recommendation itself, and only then
stores it — the exact bytes, its receipt and its outbox message in one transaction.

`apply_status_event` takes a status event whose signature the caller has verified with the
province service's published keys; intake keeps only `returned`, which lets the office supersede.
"""

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from services.intake.models import Document, DocumentStatus, OfficeKey
from shared import audit, documents, outbox, regions
from shared.db import DriverSQL, read_timestamp, utcnow
from shared.problems import (
    Conflict,
    DocumentIdReused,
    Forbidden,
    InvalidFields,
    InvalidSignature,
    MalformedRequest,
    NotFound,
    OutOfJurisdiction,
)
from shared.signing import (
    KeyPair,
    SignatureError,
    parse_public_jwk,
    read_header,
    thumbprint,
    verify,
)

WIB = timezone(timedelta(hours=7))  # registration years follow the calendar in Jakarta
ENVELOPES_PATH = "/exchange/v1/envelopes"
PROVINCE_CODE = re.compile(r"\d{2}")


# --- office keys -----------------------------------------------------------------------------


def register_key(session: Session, *, office_id: str, jwk: dict, by: str) -> tuple[OfficeKey, bool]:
    """Register an office's public key. Registering the same key again changes nothing."""
    if regions.office(office_id) is None:
        raise NotFound(f"there is no office {office_id!r}")
    try:
        public = parse_public_jwk(jwk)
    except ValueError as exc:
        raise InvalidFields(
            "the JWK is not a usable ES256 public key",
            errors=[{"field": "jwk", "message": str(exc), "type": "jwk"}],
        ) from None
    kid = thumbprint(public)
    existing = session.get(OfficeKey, kid)
    if existing is not None:
        if existing.office_id != office_id:
            raise Conflict("this key is registered to another office; each office needs its own")
        return existing, False
    key = OfficeKey(
        kid=kid,
        office_id=office_id,
        jwk=json.dumps(public, sort_keys=True),
        registered_at=utcnow(),
        registered_by=by,
    )
    session.add(key)
    session.commit()
    return key, True


def office_keys(session: Session, *, office_id: str) -> list[OfficeKey]:
    return list(
        session.exec(
            select(OfficeKey)
            .where(OfficeKey.office_id == office_id)
            .order_by(col(OfficeKey.registered_at))
        ).all()
    )


def retire_key(session: Session, *, office_id: str, kid: str, by: str) -> OfficeKey:
    """Retire a key: it keeps verifying what it signed before now, and nothing newer."""
    key = session.get(OfficeKey, kid)
    if key is None or key.office_id != office_id:
        raise NotFound(f"office {office_id} has no key {kid}")
    if key.retired_at is None:
        key.retired_at = utcnow()
        key.retired_by = by
        session.add(key)
        session.commit()
    return key


# --- receiving documents ---------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """What the office is answered: its document's id, registration and receipt."""

    document_id: str
    registration_number: str
    received_at: datetime
    receipt: str
    created: bool


def receive(
    connection: Connection,
    *,
    compact: str,
    signing_key: KeyPair,
    clock_leeway: timedelta,
    submitted_by: str | None = None,
) -> Received:
    """Verify, validate and store one office document; idempotent on its id.

    It takes a connection, not an ORM session, and runs its own transaction on it: everything
    it reads and writes is plain SQL (`DriverSQL`), and a session's bookkeeping around one
    transaction cost intake more than SQLite's commit did.

    `submitted_by` is the office of the authenticated caller, when there is one: it must be the
    office that signed the document."""
    try:
        with connection.begin():
            return _receive(connection, compact, signing_key, clock_leeway, submitted_by)
    except _Raced as race:
        # A concurrent submission of the same id won the race; answer as for a repeat.
        with connection.begin():
            if (repeated := _repeated(connection, race.document_id, race.digest)) is not None:
                return repeated
        raise race.__cause__ from None


class _Raced(Exception):
    """Storing met a row another transaction stored meanwhile (the cause: its IntegrityError)."""

    def __init__(self, document_id: str, digest: str) -> None:
        self.document_id = document_id
        self.digest = digest


def _receive(
    connection: Connection,
    compact: str,
    signing_key: KeyPair,
    clock_leeway: timedelta,
    submitted_by: str | None,
) -> Received:
    registered: dict[str, RegisteredKey] = {}

    def key_for(kid: str) -> dict | None:
        key = _registered_key(connection, kid)
        if key is None:
            return None
        registered[kid] = key
        return json.loads(key.jwk)

    try:
        read_header(compact)
        verified = verify(compact, typ=documents.RECOMMENDATION_TYP, key_for=key_for)
    except SignatureError as exc:
        problem = MalformedRequest if exc.malformed else InvalidSignature
        raise problem(exc.reason) from None
    key = registered[verified.kid]
    payload = verified.payload
    _check_claims(payload, key, clock_leeway)
    if submitted_by is not None and submitted_by != key.office_id:
        raise Forbidden(f"a caller from {submitted_by} cannot submit a document of {key.office_id}")
    try:
        parsed = documents.check_recommendation(payload)
    except documents.DocumentRejected as exc:
        raise InvalidFields("The recommendation has invalid fields.", errors=exc.errors) from None
    except documents.NotInJurisdiction as exc:
        raise OutOfJurisdiction(str(exc)) from None

    digest = hashlib.sha256(compact.encode()).hexdigest()
    document_id = str(parsed.jti)
    if (repeated := _repeated(connection, document_id, digest)) is not None:
        return repeated
    try:
        return _store(connection, compact, digest, parsed, key, signing_key)
    except IntegrityError as error:
        raise _Raced(document_id, digest) from error


@dataclass(frozen=True)
class RegisteredKey:
    """What receiving needs of an office key."""

    kid: str
    office_id: str
    jwk: str
    retired_at: datetime | None


# The hot path reads and writes with plain SQL on the driver's cursor (see `DriverSQL`): the
# ORM's identity map and unit of work, and SQLAlchemy's work around each statement, cost more per
# submission than the signature check does.
_KEY_BY_KID = DriverSQL("SELECT kid, office_id, jwk, retired_at FROM office_keys WHERE kid = :kid")
_STORED_BY_ID = DriverSQL(
    "SELECT sha256, registration_number, received_at, receipt FROM documents WHERE id = :id"
)
_INSERT_DOCUMENT = DriverSQL.insert(
    "documents",
    [
        "id",
        "office_id",
        "kid",
        "compact",
        "sha256",
        "registration_number",
        "received_at",
        "receipt",
        "supersedes",
        "region_code",
        "province_code",
        "category",
        "source",
        "election_kind",
        "election_year",
        "occurred_on",
        "status",
    ],
)
# Takes the next number inside the caller's transaction: the counter row stays locked until
# commit, and a rollback gives the number back.
_NEXT_NUMBER = DriverSQL(
    "INSERT INTO registration_counters (office_id, year, last) VALUES (:office_id, :year, 1)"
    " ON CONFLICT (office_id, year) DO UPDATE SET last = registration_counters.last + 1"
    " RETURNING last"
)


def _registered_key(connection: Connection, kid: str) -> RegisteredKey | None:
    row = _KEY_BY_KID.first(connection, {"kid": kid})
    if row is None:
        return None
    kid, office_id, jwk, retired_at = row
    return RegisteredKey(kid, office_id, jwk, read_timestamp(retired_at))


def _check_claims(payload: dict, key: RegisteredKey, clock_leeway: timedelta) -> None:
    if payload.get("iss") != key.office_id:
        raise InvalidSignature("the document's iss is not the office its key is registered to")
    if payload.get("aud") != documents.INTAKE_AUDIENCE:
        raise InvalidSignature(f"the document's aud must be {documents.INTAKE_AUDIENCE!r}")
    issued, expires = payload.get("iat"), payload.get("exp")
    if not _plausible_timestamp(issued):
        raise InvalidSignature("the document's iat must be a whole number of seconds")
    now = utcnow()
    issued_at = datetime.fromtimestamp(issued, tz=now.tzinfo)
    if issued_at > now + clock_leeway:
        raise InvalidSignature("the document's iat lies in the future")
    if expires is not None and (
        not _plausible_timestamp(expires)
        or datetime.fromtimestamp(expires, tz=now.tzinfo) + clock_leeway < now
    ):
        raise InvalidSignature("the document has expired")
    if key.retired_at is not None and issued_at >= key.retired_at:
        raise InvalidSignature("the key was retired before this document was signed")


LAST_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z, the last second a datetime holds


def _plausible_timestamp(value: object) -> bool:
    return type(value) is int and 0 <= value <= LAST_TIMESTAMP


def _repeated(connection: Connection, document_id: str, digest: str) -> Received | None:
    stored = _STORED_BY_ID.first(connection, {"id": document_id})
    if stored is None:
        return None
    sha256, number, received_at, receipt = stored
    if sha256 != digest:
        raise DocumentIdReused(
            f"document {document_id} was received before with different content;"
            " a corrected document needs a new id and `supersedes`"
        )
    return Received(document_id, number, read_timestamp(received_at), receipt, created=False)


def _store(
    connection: Connection,
    compact: str,
    digest: str,
    parsed: documents.RecommendationPayload,
    key: RegisteredKey,
    signing_key: KeyPair,
) -> Received:
    recommendation = parsed.recommendation
    document_id = str(parsed.jti)
    if parsed.supersedes is not None:
        _supersede(connection, str(parsed.supersedes), key.office_id)
    received_at = utcnow()
    office = regions.office(key.office_id)
    assert office is not None and office.region is not None  # checked by check_recommendation
    number = _next_registration_number(connection, office, received_at)
    receipt = signing_key.sign(
        {
            "jti": str(uuid.uuid4()),
            "iss": documents.INTAKE_SERVICE,
            "aud": key.office_id,
            "iat": documents.timestamp(received_at),
            "sub": document_id,
            "document_sha256": digest,
            "registration_number": number,
            "received_at": received_at.isoformat(),
        },
        documents.RECEIPT_TYP,
    )
    _INSERT_DOCUMENT.execute(
        connection,
        {
            "id": document_id,
            "office_id": key.office_id,
            "kid": key.kid,
            "compact": compact,
            "sha256": digest,
            "registration_number": number,
            "received_at": received_at,
            "receipt": receipt,
            "supersedes": None if parsed.supersedes is None else str(parsed.supersedes),
            "region_code": recommendation.region_code,
            "province_code": office.region.province_code,
            "category": recommendation.category,
            "source": recommendation.source,
            "election_kind": recommendation.election.kind,
            "election_year": recommendation.election.year,
            "occurred_on": recommendation.occurred_on,
            "status": DocumentStatus.received,
        },
    )
    destination = documents.province_service(office.region.province_code)
    envelope = signing_key.sign(
        {
            "jti": str(uuid.uuid4()),
            "iss": documents.INTAKE_SERVICE,
            "aud": destination,
            "iat": documents.timestamp(received_at),
            "document": compact,
            "signer_jwk": json.loads(key.jwk),
            "registration": {"number": number, "received_at": received_at.isoformat()},
            "attestation": {"by": documents.INTAKE_SERVICE, "action": "received", "note": None},
        },
        documents.ENVELOPE_TYP,
    )
    outbox.enqueue(
        connection,
        document_id=document_id,
        destination=destination,
        path=ENVELOPES_PATH,
        body=envelope,
    )
    audit.append_all(
        connection,
        [
            audit.Event(
                audit.AuditKind.document_received,
                document_id,
                {
                    "sha256": digest,
                    "registration_number": number,
                    "office": key.office_id,
                    "kid": key.kid,
                },
            ),
            audit.Event(
                audit.AuditKind.envelope_sent,
                document_id,
                {
                    "destination": destination,
                    "envelope_sha256": hashlib.sha256(envelope.encode()).hexdigest(),
                },
            ),
        ],
    )
    return Received(document_id, number, received_at, receipt, created=True)


_STATUS_BY_ID = DriverSQL("SELECT office_id, status FROM documents WHERE id = :id")
_SET_STATUS = DriverSQL("UPDATE documents SET status = :status WHERE id = :id")


def _supersede(connection: Connection, superseded_id: str, office_id: str) -> None:
    earlier = _STATUS_BY_ID.first(connection, {"id": superseded_id})
    if earlier is None or earlier[0] != office_id:
        raise InvalidFields(
            "supersedes names no recommendation of this office",
            errors=[
                {"field": "supersedes", "message": "unknown recommendation", "type": "unknown"}
            ],
        )
    if earlier[1] != DocumentStatus.returned:
        raise Conflict(
            f"recommendation {superseded_id} is {earlier[1]}; only a returned one can be superseded"
        )
    _SET_STATUS.execute(connection, {"id": superseded_id, "status": str(DocumentStatus.superseded)})


def _next_registration_number(connection: Connection, office: regions.Office, at: datetime) -> str:
    year = at.astimezone(WIB).year
    (sequence,) = _NEXT_NUMBER.first(connection, {"office_id": office.id, "year": year})
    return f"{office.registration_prefix}-{year}-{sequence:06d}"


# --- status events from province services ---------------------------------------------------


def province_of_sender(sender: str) -> str:
    """The province code of a `recommendation-province-<code>` sender; 401 for anyone else."""
    code = sender.removeprefix(documents.province_service(""))
    # The regex first: region lookups are cached, and a forged iss may be long.
    office = regions.office_for_region(code) if PROVINCE_CODE.fullmatch(code) else None
    if not sender.startswith(documents.province_service("")) or office is None:
        raise InvalidSignature(f"{sender!r} is not a province recommendation service")
    return code


def apply_status_event(
    session: Session,
    *,
    payload: dict[str, Any],
    sender: str,
    compact: str,
    signing_key: KeyPair,
    clock_leeway: timedelta,
) -> str:
    """Apply a verified status event from `sender` and answer with a signed acknowledgement.

    Only `returned` changes anything here; applying it again, or to a superseded document, is a
    no-op, so a redelivered event takes effect once without storing event ids."""
    province_code = province_of_sender(sender)
    if payload.get("aud") != documents.INTAKE_SERVICE:
        raise InvalidSignature(f"the status event's aud must be {documents.INTAKE_SERVICE!r}")
    try:
        event: documents.StatusPayload = documents.parse(documents.StatusPayload, payload)
    except documents.DocumentRejected as exc:
        raise InvalidFields("The status event has invalid fields.", errors=exc.errors) from None
    if event.iss != sender:
        raise InvalidSignature("the status event's iss is not its sender")
    _check_event_times(event, clock_leeway)
    document = session.exec(
        select(Document).where(Document.id == str(event.recommendation_id)).with_for_update()
    ).first()
    # Another province's recommendation answers as an unknown one: the sender learns nothing.
    if document is None or document.province_code != province_code:
        raise NotFound(f"no recommendation {event.recommendation_id}")
    if event.to == DocumentStatus.returned and document.status == DocumentStatus.received:
        audit.append(
            session,
            kind=audit.AuditKind.status_changed,
            document_id=document.id,
            details={
                "from": document.status,
                "to": DocumentStatus.returned,
                "event_id": str(event.jti),
                "sender": sender,
            },
        )
        document.status = DocumentStatus.returned
        session.add(document)
    session.commit()
    received_at = utcnow()
    return signing_key.sign(
        {
            "jti": str(uuid.uuid4()),
            "iss": documents.INTAKE_SERVICE,
            "aud": sender,
            "iat": documents.timestamp(received_at),
            "sub": str(event.jti),
            "document_sha256": hashlib.sha256(compact.encode()).hexdigest(),
            "registration_number": document.registration_number,
            "received_at": received_at.isoformat(),
        },
        documents.RECEIPT_TYP,
    )


def _check_event_times(event: documents.StatusPayload, clock_leeway: timedelta) -> None:
    now = utcnow()
    if not _plausible_timestamp(event.iat) or not (
        event.exp is None or _plausible_timestamp(event.exp)
    ):
        raise InvalidSignature("the status event's iat or exp is out of range")
    if datetime.fromtimestamp(event.iat, tz=now.tzinfo) > now + clock_leeway:
        raise InvalidSignature("the status event's iat lies in the future")
    if (
        event.exp is not None
        and datetime.fromtimestamp(event.exp, tz=now.tzinfo) + clock_leeway < now
    ):
        raise InvalidSignature("the status event has expired")


def record_status(session: Session, *, document_id: str, status: str) -> Document:
    """Note the status the province reported (a `returned` document may then be superseded)."""
    document = session.get(Document, document_id)
    if document is None:
        raise NotFound(f"no document {document_id}")
    document.status = status
    session.add(document)
    session.commit()
    return document


def visible_document(session: Session, *, document_id: str, can_see_office) -> Document:
    """The document, if the caller may see it; otherwise 404, so nothing is learned."""
    document = session.get(Document, document_id) if _is_uuid(document_id) else None
    if document is None or not can_see_office(document.office_id):
        raise NotFound(f"no document {document_id}")
    return document


def delivery_of(session: Session, document_id: str) -> tuple[outbox.OutboxMessage | None, list]:
    message = session.exec(
        select(outbox.OutboxMessage).where(outbox.OutboxMessage.document_id == document_id)
    ).first()
    return message, ([] if message is None else outbox.attempts_of(session, message.id))


def document_count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(Document)).one()


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True

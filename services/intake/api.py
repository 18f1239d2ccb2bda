"""Intake's HTTP routes. Thin: each reads the request, calls `service`, shapes the answer."""

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, Field
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from services.intake import service
from services.intake.models import OfficeKey
from services.intake.settings import IntakeSettings
from shared.identity import AdminCaller, CurrentCaller, OptionalCaller
from shared.outbox import JOSE_MEDIA_TYPE
from shared.problems import MalformedRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from shared.signing import jwks

router = APIRouter()


def database_session(request: Request) -> Iterator[Session]:
    with request.app.state.database.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(database_session)]


def settings_of(request: Request) -> IntakeSettings:
    return request.app.state.settings


async def read_compact_jws(request: Request) -> str:
    """The body as a compact JWS: `application/jose`, at most `max_body_bytes`, ASCII."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != JOSE_MEDIA_TYPE:
        raise UnsupportedMediaType(
            f"send the compact JWS with Content-Type: {JOSE_MEDIA_TYPE}", accept=JOSE_MEDIA_TYPE
        )
    limit = settings_of(request).max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"a document may be at most {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PayloadTooLarge(f"a document may be at most {limit} bytes")
    try:
        return body.decode("ascii").strip()
    except UnicodeDecodeError:
        raise MalformedRequest("a compact JWS is ASCII only") from None


class SubmissionAnswer(BaseModel):
    document_id: str
    registration_number: str
    received_at: datetime
    receipt: str = Field(description="siapnet-receipt+jws signed by intake")


class DeliveryAttempt(BaseModel):
    number: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    outcome: str


class Delivery(BaseModel):
    destination: str
    state: str
    attempts: list[DeliveryAttempt]
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None


class DocumentState(BaseModel):
    document_id: str
    office: str
    registration_number: str
    received_at: datetime
    status: str
    supersedes: str | None
    sha256: str
    delivery: Delivery | None


class KeyRegistration(BaseModel):
    jwk: dict[str, Any] = Field(description="the office's public EC P-256 key as a JWK")


class RegisteredKey(BaseModel):
    kid: str
    office: str
    jwk: dict[str, str]
    registered_at: datetime
    retired_at: datetime | None


def _registered(key: OfficeKey) -> RegisteredKey:
    return RegisteredKey(
        kid=key.kid,
        office=key.office_id,
        jwk=json.loads(key.jwk),
        registered_at=key.registered_at,
        retired_at=key.retired_at,
    )


@router.post(
    "/v1/documents",
    status_code=status.HTTP_201_CREATED,
    response_model=SubmissionAnswer,
    operation_id="submit_document",
    summary="Submit a signed recommendation (compact JWS, application/jose)",
)
async def submit_document(
    request: Request, response: Response, caller: OptionalCaller
) -> SubmissionAnswer:
    compact = await read_compact_jws(request)
    settings = settings_of(request)

    def store() -> service.Received:
        with request.app.state.database.session() as session:
            return service.receive(
                session,
                compact=compact,
                signing_key=request.app.state.signing_key,
                clock_leeway=timedelta(seconds=settings.clock_leeway_seconds),
                submitted_by=None if caller is None else caller.office.id,
            )

    received = await run_in_threadpool(store)
    if received.created:
        request.app.state.relay_wake()
    else:
        response.status_code = status.HTTP_200_OK
    document = received.document
    response.headers["location"] = f"/v1/documents/{document.id}"
    return SubmissionAnswer(
        document_id=document.id,
        registration_number=document.registration_number,
        received_at=document.received_at,
        receipt=document.receipt,
    )


@router.get(
    "/v1/documents/{document_id}", response_model=DocumentState, operation_id="get_document_state"
)
def get_document_state(
    document_id: str, caller: CurrentCaller, session: SessionDep
) -> DocumentState:
    document = service.visible_document(
        session, document_id=document_id, can_see_office=caller.can_see_office
    )
    message, attempts = service.delivery_of(session, document.id)
    delivery = None
    if message is not None:
        delivery = Delivery(
            destination=message.destination,
            state=message.state,
            attempts=[DeliveryAttempt.model_validate(a, from_attributes=True) for a in attempts],
            next_attempt_at=message.next_attempt_at if message.state == "pending" else None,
            delivered_at=message.delivered_at,
            last_error=message.last_error,
        )
    return DocumentState(
        document_id=document.id,
        office=document.office_id,
        registration_number=document.registration_number,
        received_at=document.received_at,
        status=document.status,
        supersedes=document.supersedes,
        sha256=document.sha256,
        delivery=delivery,
    )


@router.get(
    "/v1/receipts/{document_id}", response_model=SubmissionAnswer, operation_id="get_receipt"
)
def get_receipt(document_id: str, caller: CurrentCaller, session: SessionDep) -> SubmissionAnswer:
    document = service.visible_document(
        session, document_id=document_id, can_see_office=caller.can_see_office
    )
    return SubmissionAnswer(
        document_id=document.id,
        registration_number=document.registration_number,
        received_at=document.received_at,
        receipt=document.receipt,
    )


@router.post(
    "/v1/offices/{office_id}/keys",
    status_code=status.HTTP_201_CREATED,
    response_model=RegisteredKey,
    operation_id="register_office_key",
)
def register_office_key(
    office_id: str,
    body: KeyRegistration,
    caller: AdminCaller,
    session: SessionDep,
    response: Response,
) -> RegisteredKey:
    key, created = service.register_key(
        session, office_id=office_id, jwk=body.jwk, by=caller.subject
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return _registered(key)


@router.get(
    "/v1/offices/{office_id}/keys",
    response_model=list[RegisteredKey],
    operation_id="list_office_keys",
)
def list_office_keys(
    office_id: str, caller: CurrentCaller, session: SessionDep
) -> list[RegisteredKey]:
    if "admin" not in caller.roles and not caller.can_see_office(office_id):
        raise NotFound(f"there is no office {office_id!r} in your jurisdiction")
    return [_registered(key) for key in service.office_keys(session, office_id=office_id)]


@router.post(
    "/v1/offices/{office_id}/keys/{kid}/retire",
    response_model=RegisteredKey,
    operation_id="retire_office_key",
)
def retire_office_key(
    office_id: str, kid: str, caller: AdminCaller, session: SessionDep
) -> RegisteredKey:
    return _registered(service.retire_key(session, office_id=office_id, kid=kid, by=caller.subject))


@router.get("/.well-known/jwks.json", operation_id="get_jwks", tags=["ops"])
def get_jwks(request: Request) -> dict:
    return jwks(request.app.state.signing_key.public_jwk)


@router.get("/healthz", operation_id="get_health", tags=["ops"])
def get_health() -> dict:
    return {"status": "ok"}


@router.get("/readyz", operation_id="get_readiness", tags=["ops"])
def get_readiness(request: Request, response: Response) -> dict:
    database = request.app.state.database
    try:
        at_head = database.at_head()
    except Exception:
        at_head = None
    if not at_head:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        response.headers["retry-after"] = "5"
        detail = "database unreachable" if at_head is None else "migrations not at head"
        return {"status": "unavailable", "detail": detail}
    return {"status": "ready"}

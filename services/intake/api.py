"""Intake's HTTP routes. Thin: each reads the request, calls `service`, shapes the answer."""

import json
from datetime import timedelta

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from services.intake import service
from services.intake.models import OfficeKey
from services.intake.settings import IntakeSettings
from shared.api import JsonBodies, SessionDep, read_compact_jws
from shared.documents import STATUS_TYP
from shared.identity import AdminCaller, CurrentCaller, optional_caller
from shared.peers import PeerUnavailable, sender_of
from shared.problems import (
    InvalidSignature,
    MalformedRequest,
    NotFound,
    ServiceUnavailable,
)
from shared.schemas import (
    Delivery,
    DeliveryAttempt,
    DocumentState,
    KeyRegistration,
    RegisteredKey,
    SubmissionAnswer,
)
from shared.signing import SignatureError

router = APIRouter(route_class=JsonBodies)


def settings_of(request: Request) -> IntakeSettings:
    return request.app.state.settings


class StatusAcknowledgement(BaseModel):
    acknowledgement: str = Field(description="siapnet-receipt+jws signed by intake")


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
async def submit_document(request: Request) -> Response:
    # The hottest route: its caller is read here rather than as a dependency, and its answer
    # rendered by pydantic straight to bytes. FastAPI's dependency solving and response
    # validation were a tenth of intake's time per submission under load.
    caller = await optional_caller(request)
    compact = await read_compact_jws(request)
    settings = settings_of(request)

    def store() -> service.Received:
        with request.app.state.database.connection() as connection:
            return service.receive(
                connection,
                compact=compact,
                signing_key=request.app.state.signing_key,
                clock_leeway=timedelta(seconds=settings.clock_leeway_seconds),
                submitted_by=None if caller is None else caller.office.id,
            )

    received = await request.app.state.database.run(store)
    if received.created:
        request.app.state.relay_wake()
    answer = SubmissionAnswer(
        document_id=received.document_id,
        registration_number=received.registration_number,
        received_at=received.received_at,
        receipt=received.receipt,
    )
    return Response(
        answer.model_dump_json(),
        status_code=status.HTTP_201_CREATED if received.created else status.HTTP_200_OK,
        media_type="application/json",
        headers={"location": f"/v1/documents/{received.document_id}"},
    )


@router.post(
    "/exchange/v1/status-events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=StatusAcknowledgement,
    operation_id="receive_status_event",
    summary="Receive a province service's signed status event (compact JWS, application/jose)",
)
async def receive_status_event(request: Request) -> StatusAcknowledgement:
    compact = await read_compact_jws(request)
    settings = settings_of(request)
    try:
        sender = sender_of(compact)
        # Refused before any key fetch: only province services may tell intake a status.
        service.province_of_sender(sender)
        verified = await request.app.state.peer_keys.verify(compact, sender=sender, typ=STATUS_TYP)
    except PeerUnavailable as exc:
        raise ServiceUnavailable(exc.reason, headers={"Retry-After": "5"}) from None
    except SignatureError as exc:
        problem = MalformedRequest if exc.malformed else InvalidSignature
        raise problem(exc.reason) from None

    def apply() -> str:
        with request.app.state.database.session() as session:
            return service.apply_status_event(
                session,
                payload=verified.payload,
                sender=sender,
                compact=compact,
                signing_key=request.app.state.signing_key,
                clock_leeway=timedelta(seconds=settings.clock_leeway_seconds),
            )

    return StatusAcknowledgement(acknowledgement=await request.app.state.database.run(apply))


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

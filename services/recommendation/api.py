"""The recommendation service's routes: the exchange doors for signed documents, the lifecycle,
and reads. Thin: each reads the request, calls `service`, shapes the answer."""

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from pydantic import BaseModel, Field

from services.recommendation import service
from services.recommendation.models import Recommendation, StatusChange
from shared import documents, outbox
from shared.api import JsonBodies, SessionDep, read_compact_jws
from shared.identity import CurrentCaller
from shared.peers import PeerUnavailable, sender_of
from shared.problems import InvalidSignature, MalformedRequest, Problem, ServiceUnavailable
from shared.schemas import (
    PAGE_LIMIT_MAX,
    HistoryEntry,
    RecommendationDetail,
    RecommendationPage,
    RecommendationSummary,
    TransitionRequest,
)
from shared.signing import SignatureError, Verified, unverified_payload

router = APIRouter(route_class=JsonBodies)


class Acknowledgement(BaseModel):
    acknowledgement: str = Field(description="siapnet-receipt+jws naming the received document")


class EnvelopeBatch(BaseModel):
    envelopes: list[str] = Field(
        min_length=1,
        max_length=outbox.BATCH_MESSAGES,
        description="siapnet-envelope+jws documents, each in compact form",
    )


class BatchOutcome(BaseModel):
    status: int = Field(description="what POST /exchange/v1/envelopes answers for this envelope")
    acknowledgement: str | None = Field(None, description="as that answer's, when it is 200 or 201")
    problem: dict[str, Any] | None = Field(None, description="as that answer's, when it is not")


class BatchAcknowledgement(BaseModel):
    results: list[BatchOutcome] = Field(description="one for each envelope, in the batch's order")


def summary(recommendation: Recommendation) -> RecommendationSummary:
    return RecommendationSummary(
        id=recommendation.id,
        office=recommendation.office_id,
        region_code=recommendation.region_code,
        category=recommendation.category,
        status=recommendation.status,
        registration_number=recommendation.registration_number,
        received_at=recommendation.received_at,
        updated_at=recommendation.updated_at,
        review_due_on=recommendation.review_due_on,
        ppk_due_on=recommendation.ppk_due_on,
    )


def detail(
    recommendation: Recommendation, changes: list[StatusChange], allowed: list[str]
) -> RecommendationDetail:
    payload = unverified_payload(recommendation.document)  # verified when it arrived
    return RecommendationDetail(
        **summary(recommendation).model_dump(),
        recommendation=payload["recommendation"],
        supersedes=payload.get("supersedes"),
        history=[
            HistoryEntry(
                action=change.action,
                from_status=change.from_status,
                to_status=change.to_status,
                at=change.at,
                actor_office=change.actor_office,
                actor_user=change.actor_user,
                note=change.note,
                details=json.loads(change.details),
                sequence=change.sequence,
                applied=change.applied,
            )
            for change in changes
        ],
        allowed_actions=allowed,
    )


async def verified_from_peer(request: Request, compact: str, typ: str) -> tuple[Verified, str]:
    """Verify a peer's document with the peer's published keys; a peer whose keys cannot be
    fetched makes this a 503, so the sender's outbox retries."""
    try:
        sender = sender_of(compact)
        return await request.app.state.peer_keys.verify(compact, sender=sender, typ=typ), sender
    except PeerUnavailable as exc:
        raise ServiceUnavailable(exc.reason, headers={"retry-after": "5"}) from None
    except SignatureError as exc:
        problem = MalformedRequest if exc.malformed else InvalidSignature
        raise problem(exc.reason) from None


@router.post(
    "/exchange/v1/envelopes",
    status_code=status.HTTP_201_CREATED,
    response_model=Acknowledgement,
    operation_id="receive_envelope",
    tags=["exchange"],
)
async def receive_envelope(request: Request, response: Response) -> Acknowledgement:
    arrival = await _hold_envelope(request, await read_compact_jws(request))
    if not arrival.created:
        response.status_code = status.HTTP_200_OK
    return Acknowledgement(acknowledgement=arrival.acknowledgement)


@router.post(
    "/exchange/v1/envelope-batches",
    response_model=BatchAcknowledgement,
    operation_id="receive_envelope_batch",
    tags=["exchange"],
)
async def receive_envelope_batch(request: Request, batch: EnvelopeBatch) -> BatchAcknowledgement:
    """Several envelopes in one request, each taken as `POST /exchange/v1/envelopes` takes it,
    in its own transaction, with its own answer: a refused one changes nothing and holds up no
    other. An error that is no answer about an envelope (the database gone) fails the whole
    request, and the sender sends the batch again; what was stored answers 200 then."""
    results = []
    for compact in batch.envelopes:
        try:
            if not compact.isascii():
                raise MalformedRequest("a compact JWS is ASCII only")
            arrival = await _hold_envelope(request, compact.strip())
        except Problem as refusal:
            results.append(BatchOutcome(status=refusal.status, problem=refusal.body()))
        else:
            results.append(
                BatchOutcome(
                    status=status.HTTP_201_CREATED if arrival.created else status.HTTP_200_OK,
                    acknowledgement=arrival.acknowledgement,
                )
            )
        await asyncio.sleep(0)  # each envelope's work runs on the loop (SQLite): let requests in
    return BatchAcknowledgement(results=results)


async def _hold_envelope(request: Request, compact: str) -> service.Arrival:
    verified, sender = await verified_from_peer(request, compact, documents.ENVELOPE_TYP)

    def hold() -> service.Arrival:
        with request.app.state.database.session() as session:
            return service.receive_envelope(
                session,
                compact=compact,
                verified=verified,
                sender=sender,
                context=request.app.state.context,
            )

    return await request.app.state.database.run(hold)


@router.post(
    "/exchange/v1/status-events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Acknowledgement,
    operation_id="receive_status_event",
    tags=["exchange"],
)
async def receive_status_event(request: Request) -> Acknowledgement:
    compact = await read_compact_jws(request)
    verified, sender = await verified_from_peer(request, compact, documents.STATUS_TYP)

    def apply() -> str:
        with request.app.state.database.session() as session:
            return service.receive_status_event(
                session,
                compact=compact,
                verified=verified,
                sender=sender,
                context=request.app.state.context,
            )

    return Acknowledgement(acknowledgement=await request.app.state.database.run(apply))


@router.get(
    "/v1/recommendations", response_model=RecommendationPage, operation_id="list_recommendations"
)
def list_recommendations(
    caller: CurrentCaller,
    session: SessionDep,
    status_: Annotated[str | None, Query(alias="status")] = None,
    category: str | None = None,
    region_code: str | None = None,
    office: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT_MAX)] = 50,
) -> RecommendationPage:
    filters = service.checked_filters(
        status=status_,
        category=category,
        region_code=region_code,
        office=office,
        since=since,
        until=until,
    )
    rows, next_cursor = service.page(
        session, caller=caller, filters=filters, cursor=cursor, limit=limit
    )
    return RecommendationPage(items=[summary(row) for row in rows], next_cursor=next_cursor)


@router.get(
    "/v1/recommendations/{recommendation_id}",
    response_model=RecommendationDetail,
    operation_id="get_recommendation",
)
def get_recommendation(
    recommendation_id: str,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
    response: Response,
) -> RecommendationDetail:
    recommendation = service.visible(session, recommendation_id=recommendation_id, caller=caller)
    response.headers["etag"] = service.etag_of(recommendation)
    return detail(
        recommendation,
        service.history(session, recommendation.id),
        service.allowed_for(recommendation, caller, request.app.state.settings),
    )


@router.post(
    "/v1/recommendations/{recommendation_id}/transitions",
    response_model=RecommendationDetail,
    operation_id="transition_recommendation",
)
def transition_recommendation(
    recommendation_id: str,
    body: TransitionRequest,
    caller: CurrentCaller,
    request: Request,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> RecommendationDetail:
    context = request.app.state.context
    with request.app.state.database.session() as session:
        recommendation = service.transition(
            session,
            recommendation_id=recommendation_id,
            action=body.action,
            note=body.note,
            details=body.details,
            if_match=if_match,
            caller=caller,
            context=context,
        )
        changes = service.history(session, recommendation.id)
    request.app.state.relay_wake()
    response.headers["etag"] = service.etag_of(recommendation)
    return detail(
        recommendation,
        changes,
        service.allowed_for(recommendation, caller, request.app.state.settings),
    )

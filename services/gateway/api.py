"""The public HTTP contract of DESIGN §5. Thin: each route checks who is calling and what they may
do, then hands the call to the service that owns the data (`routing`) or to `accounts`."""

from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Query, Request, Response, Security, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from services.gateway import accounts
from services.gateway.models import Account
from services.gateway.openapi import (
    AFTER_ACTION,
    AFTER_KEY_REGISTRATION,
    AFTER_READING,
    AFTER_SUBMISSION,
    ETAG_HEADER,
    FORM,
    IF_MATCH,
    LIST_PARAMETERS,
    REVOCATION_FORM,
    SIGNED_RECOMMENDATION,
    STATS_PARAMETERS,
    TOKEN_FORM,
    VULNERABILITY_PARAMETERS,
    bearer,
)
from services.gateway.routing import Upstreams, merge_totals, relayed
from shared import regions
from shared.api import JsonBodies, SessionDep, read_compact_jws
from shared.identity import Caller, current_caller
from shared.problems import (
    Conflict,
    DocumentIdReused,
    Forbidden,
    InvalidFields,
    InvalidSignature,
    MalformedRequest,
    NotFound,
    OutOfJurisdiction,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    RateLimited,
    ServiceUnavailable,
    Unauthenticated,
    UnsupportedMediaType,
    problem_responses,
)
from shared.schemas import (
    DOCUMENT_ID,
    REGISTRATION_NUMBER,
    TOTALS,
    HistoryEntry,
    JsonWebKeySet,
    KeyRegistration,
    RecommendationDetail,
    RecommendationPage,
    RegisteredKey,
    SubmissionAnswer,
    Totals,
    TransitionRequest,
    Vulnerability,
)
from shared.signing import jwks

router = APIRouter(route_class=JsonBodies)


def segment(value: str) -> str:
    """A path parameter as one URL segment of the upstream call: `/`, `?`, `#` and control
    characters escaped, so a caller cannot steer the call to another path."""
    return quote(value, safe="")


WRITERS = frozenset({"officer", "supervisor", "liaison"})
# What every route that needs a token can answer besides its own refusals.
SIGNED_IN = (Unauthenticated, RateLimited)
# ... and every route that asks a service behind the gateway.
RELAYED = (*SIGNED_IN, ServiceUnavailable)


async def upstreams(request: Request) -> Upstreams:
    return request.app.state.upstreams


async def limited_caller(
    request: Request,
    caller: Annotated[Caller, Depends(current_caller)],
    _scheme: Annotated[str | None, Security(bearer)],
) -> Caller:
    """The caller, if its token is valid and it has requests left this minute."""
    wait = request.app.state.rate_limiter.take(f"sub:{caller.subject}")
    if wait is not None:
        raise RateLimited(
            "too many requests; slow down",
            headers={"retry-after": request.app.state.rate_limiter.retry_after(wait)},
        )
    return caller


Caller_ = Annotated[Caller, Depends(limited_caller)]
UpstreamsDep = Annotated[Upstreams, Depends(upstreams)]


def writer(caller: Caller) -> Caller:
    if not WRITERS & caller.roles:
        raise Forbidden("your roles let you read, not change, recommendations")
    return caller


def admin(caller: Caller) -> Caller:
    if "admin" not in caller.roles:
        raise Forbidden("this needs the admin role")
    return caller


# --- accounts and tokens ----------------------------------------------------------------------


class TokenAnswer(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJFUzI1NiIsImtpZCI6Ii4uLiIsInR5cCI6ImF0K2p3dCJ9…",
                    "token_type": "Bearer",
                    "expires_in": 900,
                    "refresh_token": "b2c7e3f0-5a61-4d2e-8c9b-0e1f2a3b4c5d."
                    "q8V2tYx0b3Jc5m1NfGz7wKpA4sLr9eHu-3kTnWbZ1yQc",
                }
            ]
        }
    )

    access_token: str = Field(description="a short-lived ES256 JWT")
    token_type: str = "Bearer"
    expires_in: int = Field(description="seconds the access token lives")
    refresh_token: str | None = Field(
        default=None, description="absent for client_credentials; rotates on every use"
    )


async def read_form(request: Request) -> dict[str, str]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM:
        raise UnsupportedMediaType(f"send the form as {FORM}", accept=FORM)
    body = await request.body()
    if len(body) > 8192:
        raise MalformedRequest("the form is too large")
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=False, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise MalformedRequest("the form could not be read") from None
    return {name: values[0] for name, values in fields.items()}


def _anonymous_limit(request: Request) -> None:
    client = request.client.host if request.client else "unknown"
    wait = request.app.state.rate_limiter.take(f"ip:{client}")
    if wait is not None:
        raise RateLimited(
            "too many requests; slow down",
            headers={"retry-after": request.app.state.rate_limiter.retry_after(wait)},
        )


@router.post(
    "/v1/auth/token",
    response_model=TokenAnswer,
    operation_id="issue_token",
    tags=["auth"],
    summary="Get an access token",
    responses=problem_responses(
        MalformedRequest,
        accounts.UnsupportedGrant,
        accounts.LoginRefused,
        UnsupportedMediaType,
        RateLimited,
    ),
    openapi_extra=TOKEN_FORM,
)
async def issue_token(request: Request) -> TokenAnswer:
    """OAuth2 token endpoint: password, client_credentials or refresh_token grant."""
    _anonymous_limit(request)
    form = await read_form(request)
    grant = form.get("grant_type")
    settings, key = request.app.state.settings, request.app.state.signing_key

    def grant_tokens() -> accounts.Tokens:
        with request.app.state.database.session() as session:
            if grant == "password":
                return accounts.password_grant(
                    session,
                    username=form.get("username", ""),
                    password=form.get("password", ""),
                    kind="user",
                    settings=settings,
                    key=key,
                )
            if grant == "client_credentials":
                return accounts.password_grant(
                    session,
                    username=form.get("client_id", ""),
                    password=form.get("client_secret", ""),
                    kind="client",
                    settings=settings,
                    key=key,
                )
            if grant == "refresh_token":
                return accounts.refresh_grant(
                    session,
                    refresh_token=form.get("refresh_token", ""),
                    settings=settings,
                    key=key,
                )
            raise accounts.UnsupportedGrant(
                "grant_type is password, client_credentials or refresh_token",
                error="unsupported_grant_type",
            )

    tokens = await run_in_threadpool(grant_tokens)
    return TokenAnswer(
        access_token=tokens.access_token,
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
    )


class Revocation(BaseModel):
    revoked: bool = Field(examples=[True])


@router.post(
    "/v1/auth/revoke",
    status_code=status.HTTP_200_OK,
    response_model=Revocation,
    operation_id="revoke_token",
    tags=["auth"],
    summary="Log out: revoke a refresh token",
    responses=problem_responses(MalformedRequest, UnsupportedMediaType, RateLimited),
    openapi_extra=REVOCATION_FORM,
)
async def revoke_token(request: Request, session: SessionDep) -> Revocation:
    """Log out: the refresh token and every token rotated from it stop working (RFC 7009)."""
    _anonymous_limit(request)
    form = await read_form(request)
    accounts.revoke(session, refresh_token=form.get("token", ""))
    return Revocation(revoked=True)


class Me(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "username": "petugas-pandeglang",
                    "office": "bawaslu-36.01",
                    "office_name": "Bawaslu Kabupaten Pandeglang",
                    "tier": "regency",
                    "jurisdiction": "36.01",
                    "roles": ["officer"],
                }
            ]
        }
    )

    username: str
    office: str
    office_name: str
    tier: regions.Tier
    jurisdiction: str | None = Field(description="region code the office covers; null = all")
    roles: list[str]


@router.get(
    "/v1/me",
    response_model=Me,
    operation_id="get_me",
    tags=["auth"],
    summary="Who the caller is",
    responses=problem_responses(*SIGNED_IN),
)
def get_me(caller: Caller_) -> Me:
    """The caller's office, tier, jurisdiction and roles, from its access token."""
    office = caller.office
    return Me(
        username=caller.subject,
        office=office.id,
        office_name=office.name,
        tier=office.tier,
        jurisdiction=None if office.region is None else office.region.code,
        roles=sorted(caller.roles),
    )


class AccountCreation(BaseModel):
    username: str = Field(examples=["petugas-pandeglang"])
    office: str = Field(examples=["bawaslu-36.01"])
    roles: list[str] = Field(examples=[["officer"]])
    password: str = Field(description="at least 12 characters; a client's secret for clients")
    kind: str = Field(default="user", description="user, or client for client_credentials")


class AccountView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "username": "petugas-pandeglang",
                    "kind": "user",
                    "office": "bawaslu-36.01",
                    "roles": ["officer"],
                    "disabled": False,
                    "locked": False,
                }
            ]
        }
    )

    username: str
    kind: str
    office: str
    roles: list[str]
    disabled: bool
    locked: bool


def _view(account: Account) -> AccountView:
    from shared.db import utcnow

    return AccountView(
        username=account.username,
        kind=account.kind,
        office=account.office_id,
        roles=account.role_list,
        disabled=account.disabled,
        locked=account.locked_until is not None and account.locked_until > utcnow(),
    )


@router.post(
    "/v1/accounts",
    status_code=201,
    response_model=AccountView,
    operation_id="create_account",
    tags=["accounts"],
    summary="Create an account",
    responses=problem_responses(*SIGNED_IN, Forbidden, Conflict, InvalidFields),
)
def create_account(body: AccountCreation, caller: Caller_, session: SessionDep) -> AccountView:
    """A user of an office, or a client for the client_credentials grant (admin only)."""
    admin(caller)
    return _view(
        accounts.create_account(
            session,
            username=body.username,
            office_id=body.office,
            roles=body.roles,
            secret=body.password,
            kind=body.kind,
        )
    )


@router.get(
    "/v1/accounts",
    response_model=list[AccountView],
    operation_id="list_accounts",
    tags=["accounts"],
    summary="List accounts",
    responses=problem_responses(*SIGNED_IN, Forbidden),
)
def list_accounts(
    caller: Caller_,
    session: SessionDep,
    office: Annotated[
        str | None, Query(description="only this office's", examples=["bawaslu-36.01"])
    ] = None,
) -> list[AccountView]:
    """Every account, or one office's (admin only)."""
    admin(caller)
    return [_view(a) for a in accounts.accounts_of(session, office_id=office)]


@router.post(
    "/v1/accounts/{username}/disable",
    response_model=AccountView,
    operation_id="disable_account",
    tags=["accounts"],
    summary="Disable an account",
    responses=problem_responses(*SIGNED_IN, Forbidden, NotFound),
)
def disable_account(username: str, caller: Caller_, session: SessionDep) -> AccountView:
    """The account can no longer log in or refresh its tokens (admin only)."""
    admin(caller)
    return _view(accounts.set_disabled(session, username=username, disabled=True))


@router.post(
    "/v1/accounts/{username}/enable",
    response_model=AccountView,
    operation_id="enable_account",
    tags=["accounts"],
    summary="Enable an account again",
    responses=problem_responses(*SIGNED_IN, Forbidden, NotFound),
)
def enable_account(username: str, caller: Caller_, session: SessionDep) -> AccountView:
    """A disabled account may log in again (admin only)."""
    admin(caller)
    return _view(accounts.set_disabled(session, username=username, disabled=False))


# --- recommendations --------------------------------------------------------------------------


class RecommendationReceived(BaseModel):
    """A recommendation intake received that its province service does not hold yet."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": DOCUMENT_ID,
                    "office": "bawaslu-36.01",
                    "status": "received",
                    "registration_number": REGISTRATION_NUMBER,
                    "received_at": "2026-03-03T08:00:00Z",
                    "supersedes": None,
                    "history": [],
                    "allowed_actions": [],
                }
            ]
        }
    )

    id: str
    office: str
    status: str = Field(description="`received`, or the status the province last reported")
    registration_number: str
    received_at: datetime
    supersedes: str | None
    history: list[HistoryEntry] = Field(description="empty until the province holds it")
    allowed_actions: list[str] = Field(description="empty until the province holds it")


@router.post(
    "/v1/recommendations",
    status_code=201,
    operation_id="submit_recommendation",
    tags=["recommendations"],
    summary="Submit a signed recommendation",
    responses={
        201: {
            "model": SubmissionAnswer,
            "description": "Received and registered",
            "links": AFTER_SUBMISSION,
        },
        200: {
            "model": SubmissionAnswer,
            "description": "The same bytes were received before: the same registration and receipt",
        },
        **problem_responses(
            *RELAYED,
            MalformedRequest,
            InvalidSignature,
            Forbidden,
            OutOfJurisdiction,
            DocumentIdReused,
            PayloadTooLarge,
            UnsupportedMediaType,
            InvalidFields,
        ),
    },
    openapi_extra=SIGNED_RECOMMENDATION,
)
async def submit_recommendation(
    request: Request, caller: Caller_, upstream: UpstreamsDep
) -> Response:
    """Submit a signed recommendation (compact JWS, `application/jose`). Intake checks that it is
    signed by the caller's own office (403 otherwise)."""
    writer(caller)
    if caller.office.tier is regions.Tier.national:
        raise Forbidden("recommendations start at a regency or province office")
    body = await read_compact_jws(request)
    answer = await upstream.call(
        "POST", upstream.settings.intake_url, "/v1/documents", request, content=body.encode()
    )
    return relayed(answer)


@router.get(
    "/v1/recommendations",
    operation_id="list_recommendations",
    tags=["recommendations"],
    summary="List recommendations",
    responses={
        200: {"model": RecommendationPage, "description": "A page, newest first"},
        **problem_responses(*RELAYED, InvalidFields),
    },
    openapi_extra=LIST_PARAMETERS,
)
async def list_recommendations(
    request: Request, caller: Caller_, upstream: UpstreamsDep
) -> Response:
    """Recommendations in the caller's jurisdiction, newest first, in cursor pages."""
    return await upstream.relay_read(caller, "/v1/recommendations", request)


@router.get(
    "/v1/recommendations/{recommendation_id}",
    operation_id="get_recommendation",
    tags=["recommendations"],
    summary="Get a recommendation",
    responses={
        200: {
            "model": RecommendationDetail | RecommendationReceived,
            "description": "The recommendation, or what intake knows of one just submitted",
            "headers": ETAG_HEADER,
            "links": AFTER_READING,
        },
        **problem_responses(*RELAYED, NotFound),
    },
)
async def get_recommendation(
    recommendation_id: str, request: Request, caller: Caller_, upstream: UpstreamsDep
) -> Response:
    """The freshest copy for the caller: its tier's service; for national, a recommendation not
    yet forwarded comes from the province holding it; right after submission, from intake
    (status `received`)."""
    path = f"/v1/recommendations/{segment(recommendation_id)}"
    answer = await upstream.call("GET", upstream.recommendations_for(caller), path, request)
    if answer.status_code != 404:
        return relayed(answer)
    at_intake = await upstream.call(
        "GET", upstream.settings.intake_url, f"/v1/documents/{segment(recommendation_id)}", request
    )
    if at_intake.status_code != 200:
        return relayed(answer)
    state = at_intake.json()
    office = regions.office(state["office"])
    if caller.office.tier is regions.Tier.national and office is not None:
        province_url = upstream.settings.province_url(office.province_code or "")
        at_province = await upstream.call("GET", province_url, path, request)
        if at_province.status_code == 200:
            return relayed(at_province)
    return JSONResponse(_received(state))


def _received(state: dict[str, Any]) -> dict[str, Any]:
    """What intake knows of a document the province does not hold yet."""
    return {
        "id": state["document_id"],
        "office": state["office"],
        "status": state["status"],
        "registration_number": state["registration_number"],
        "received_at": state["received_at"],
        "supersedes": state["supersedes"],
        "history": [],
        "allowed_actions": [],
    }


@router.post(
    "/v1/recommendations/{recommendation_id}/transitions",
    operation_id="transition_recommendation",
    tags=["recommendations"],
    summary="Take a lifecycle action",
    responses={
        200: {
            "model": RecommendationDetail,
            "description": "The new state",
            "headers": ETAG_HEADER,
            "links": AFTER_ACTION,
        },
        **problem_responses(
            *RELAYED,
            Forbidden,
            NotFound,
            Conflict,
            PreconditionFailed,
            InvalidFields,
            PreconditionRequired,
        ),
    },
    openapi_extra=IF_MATCH,
)
async def transition_recommendation(
    recommendation_id: str,
    body: TransitionRequest,
    request: Request,
    caller: Caller_,
    upstream: UpstreamsDep,
) -> Response:
    """Take a lifecycle action with `If-Match: <etag>`; the lifecycle table decides which tier
    may take it (409 lists the allowed actions)."""
    writer(caller)
    return relayed(
        await upstream.call(
            "POST",
            upstream.recommendations_for(caller),
            f"/v1/recommendations/{segment(recommendation_id)}/transitions",
            request,
            content=body.model_dump_json().encode(),
            headers={"content-type": "application/json"},
        )
    )


class CountryTotals(Totals):
    """The whole country (`include=provinces`): every province service's totals added up."""

    model_config = ConfigDict(json_schema_extra={"examples": [{**TOTALS, "sources": 38}]})

    as_of: date | None = Field(description="the latest `as_of` of the province services")
    sources: int = Field(description="how many province services answered")


@router.get(
    "/v1/stats",
    operation_id="get_stats",
    tags=["totals"],
    summary="Count recommendations",
    responses={
        200: {
            "model": Totals | CountryTotals,
            "description": "The counts; `Accept: text/csv` gets the groups as CSV",
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "region,category,count\n36.01,social_media_campaign,3\n",
                }
            },
        },
        **problem_responses(*RELAYED, Forbidden, InvalidFields),
    },
    openapi_extra=STATS_PARAMETERS,
)
async def get_stats(
    request: Request,
    caller: Caller_,
    upstream: UpstreamsDep,
    include: Annotated[str | None, Query(description="`provinces`: the whole country")] = None,
) -> Response:
    """Totals from the caller's tier; for national, `include=provinces` adds up every province
    service's totals into a whole-country view (JSON)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "include"]
    if include is not None:
        if include != "provinces":
            raise InvalidFields(
                "include takes `provinces`",
                errors=[{"field": "include", "message": "only `provinces`", "type": "enum"}],
            )
        if caller.office.tier is not regions.Tier.national:
            raise Forbidden("the whole-country view is for the national office")
        return JSONResponse(
            merge_totals(await upstream.province_totals(request, "/v1/stats", params))
        )
    return relayed(
        await upstream.call(
            "GET", upstream.recommendations_for(caller), "/v1/stats", request, params=params
        )
    )


@router.get(
    "/v1/stats/vulnerability",
    operation_id="get_vulnerability",
    tags=["totals"],
    summary="The vulnerability index per region",
    responses={
        200: {"model": Vulnerability, "description": "Every region, the most vulnerable first"},
        **problem_responses(*RELAYED, Forbidden, InvalidFields),
    },
    openapi_extra=VULNERABILITY_PARAMETERS,
)
async def get_vulnerability(request: Request, caller: Caller_, upstream: UpstreamsDep) -> Response:
    """Per region: cases, a 0-100 score (the most vulnerable = 100) and a zone."""
    return await upstream.relay_read(caller, "/v1/stats/vulnerability", request)


@router.get(
    "/v1/receipts/{document_id}",
    operation_id="get_receipt",
    tags=["recommendations"],
    summary="Get a submission's signed receipt",
    responses={
        200: {"model": SubmissionAnswer, "description": "The registration and the receipt"},
        **problem_responses(*RELAYED, NotFound),
    },
)
async def get_receipt(
    document_id: str, request: Request, caller: Caller_, upstream: UpstreamsDep
) -> Response:
    """The signed receipt, for the submitting office and the offices above it."""
    return relayed(
        await upstream.call(
            "GET", upstream.settings.intake_url, f"/v1/receipts/{segment(document_id)}", request
        )
    )


@router.post(
    "/v1/offices/{office_id}/keys",
    status_code=201,
    operation_id="register_office_key",
    tags=["office keys"],
    summary="Register an office's public key",
    responses={
        201: {
            "model": RegisteredKey,
            "description": "Registered",
            "links": AFTER_KEY_REGISTRATION,
        },
        200: {
            "model": RegisteredKey,
            "description": "This key was registered to the office before",
        },
        **problem_responses(*RELAYED, Forbidden, NotFound, Conflict, InvalidFields),
    },
)
async def register_office_key(
    office_id: str,
    body: KeyRegistration,
    request: Request,
    caller: Caller_,
    upstream: UpstreamsDep,
) -> Response:
    """Register the EC P-256 key an office signs its documents with (admin only)."""
    admin(caller)
    return relayed(
        await upstream.call(
            "POST",
            upstream.settings.intake_url,
            f"/v1/offices/{segment(office_id)}/keys",
            request,
            content=body.model_dump_json().encode(),
            headers={"content-type": "application/json"},
        )
    )


@router.get(
    "/v1/offices/{office_id}/keys",
    operation_id="list_office_keys",
    tags=["office keys"],
    summary="List an office's keys",
    responses={
        200: {"model": list[RegisteredKey], "description": "Oldest first, retired ones too"},
        **problem_responses(*RELAYED, NotFound),
    },
)
async def list_office_keys(
    office_id: str, request: Request, caller: Caller_, upstream: UpstreamsDep
) -> Response:
    """An office's keys, for admins and the offices whose jurisdiction covers it."""
    return relayed(
        await upstream.call(
            "GET", upstream.settings.intake_url, f"/v1/offices/{segment(office_id)}/keys", request
        )
    )


@router.post(
    "/v1/offices/{office_id}/keys/{kid}/retire",
    operation_id="retire_office_key",
    tags=["office keys"],
    summary="Retire an office's key",
    responses={
        200: {"model": RegisteredKey, "description": "The key, retired"},
        **problem_responses(*RELAYED, Forbidden, NotFound),
    },
)
async def retire_office_key(
    office_id: str, kid: str, request: Request, caller: Caller_, upstream: UpstreamsDep
) -> Response:
    """The key keeps verifying what it signed before now, and nothing newer (admin only)."""
    admin(caller)
    return relayed(
        await upstream.call(
            "POST",
            upstream.settings.intake_url,
            f"/v1/offices/{segment(office_id)}/keys/{segment(kid)}/retire",
            request,
        )
    )


@router.get(
    "/.well-known/jwks.json",
    response_model=JsonWebKeySet,
    operation_id="get_jwks",
    tags=["ops"],
    summary="Every service's public signing keys",
    responses=problem_responses(),
)
async def get_jwks(request: Request, upstream: UpstreamsDep) -> dict:
    """Every service's public keys: the gateway's token key, intake's receipts and envelopes,
    each recommendation service's envelopes and status events."""
    keys = {key["kid"]: key for key in jwks(request.app.state.signing_key.public_jwk)["keys"]}
    urls = [
        upstream.settings.intake_url,
        upstream.settings.national_url,
        *upstream.settings.province_urls(),
    ]
    for url in urls:
        try:
            answer = await upstream.call("GET", url, "/.well-known/jwks.json", request)
            for key in answer.json().get("keys", []):
                keys.setdefault(key["kid"], key)
        except Exception:  # a service that is down publishes nothing this time
            continue
    return {"keys": list(keys.values())}

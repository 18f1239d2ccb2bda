"""RFC 9457 problem details: typed domain errors, declared once and turned into HTTP centrally.

Handlers raise a `Problem` subclass; `install_problem_handlers` makes every error a service can
produce, including FastAPI's own validation errors and unknown routes, `application/problem+json`.
`ProblemDetails` describes those bodies for OpenAPI, and `problem_responses` declares the ones a
route can answer, each with an example.
"""

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://siapnet.bawaslu.go.id/problems/"
PROBLEM_SCHEMA = "ProblemDetails"

log = logging.getLogger("siapnet.problems")


class Problem(Exception):
    """A refusal a client can act on. Subclasses fix the status, slug and title."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"
    # For the OpenAPI description: a typical detail, and the extension members this type adds.
    example: ClassVar[str] = "the request could not be handled"
    example_members: ClassVar[dict[str, Any]] = {}
    # Response headers this type sets, with what they mean.
    header_docs: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extensions = extensions

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extensions)
        return body

    @classmethod
    def example_body(cls) -> dict[str, Any]:
        members = dict(cls.example_members)
        errors = members.pop("errors", None)
        return cls(cls.example, errors=errors, **members).body()


class MalformedRequest(Problem):
    status, slug, title = 400, "malformed-request", "The request could not be read"
    example = "a compact JWS is ASCII only"


class InvalidSignature(Problem):
    status, slug, title = 401, "invalid-signature", "The signed document was refused"
    example = "the document's iat lies in the future"


class Unauthenticated(Problem):
    status, slug, title = 401, "unauthenticated", "Authentication is required"
    example = "send an access token: Authorization: Bearer <token>"
    header_docs: ClassVar[dict[str, str]] = {
        "WWW-Authenticate": '`Bearer realm="siapnet"` when no token was sent'
    }


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Not allowed for this caller"
    example = "your roles let you read, not change, recommendations"


class OutOfJurisdiction(Problem):
    status, slug, title = 403, "out-of-jurisdiction", "Outside the office's jurisdiction"
    example = "region 32.01 lies outside the jurisdiction of bawaslu-36.01"


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"
    example = "no recommendation 8f3c2a71-4d5e-4b6f-9a0c-1e2d3f4a5b6c"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflicts with the current state"
    example = (
        "`send` on a verified recommendation is taken by the national tier, not the province tier."
    )
    example_members: ClassVar[dict[str, Any]] = {"allowed": ["forward"]}


class DocumentIdReused(Problem):
    status, slug, title = 409, "document-id-reused", "This document id was used for other bytes"
    example = (
        "document 8f3c2a71-4d5e-4b6f-9a0c-1e2d3f4a5b6c was received before with different"
        " content; a corrected document needs a new id and `supersedes`"
    )


class PreconditionFailed(Problem):
    status, slug, title = 412, "stale-version", "The resource changed since it was read"
    example = "the recommendation changed since you read it; read it again"
    example_members: ClassVar[dict[str, Any]] = {
        "current_etag": '"8f3c2a71-4d5e-4b6f-9a0c-1e2d3f4a5b6c.3"'
    }


class RequestTimeout(Problem):
    status, slug, title = 408, "request-timeout", "The request body came too slowly"
    example = "the request body must arrive within 30 seconds"


class PayloadTooLarge(Problem):
    status, slug, title = 413, "payload-too-large", "The request body is too large"
    example = "a document may be at most 1048576 bytes"


class UnsupportedMediaType(Problem):
    status, slug, title = 415, "unsupported-media-type", "Unsupported content type"
    example = "send the compact JWS with Content-Type: application/jose"
    example_members: ClassVar[dict[str, Any]] = {"accept": "application/jose"}


class InvalidFields(Problem):
    status, slug, title = 422, "invalid-fields", "Some fields are invalid"
    example = "The recommendation has invalid fields."
    example_members: ClassVar[dict[str, Any]] = {
        "errors": [
            {
                "field": "recommendation.subject.nip",
                "message": "Value error, a NIP is exactly 18 digits",
                "type": "value_error",
            }
        ]
    }


class PreconditionRequired(Problem):
    status, slug, title = 428, "version-required", "Send If-Match with the resource's ETag"
    example = "send If-Match with the ETag you read"


class RateLimited(Problem):
    status, slug, title = 429, "rate-limited", "Too many requests"
    example = "too many requests; slow down"
    header_docs: ClassVar[dict[str, str]] = {"Retry-After": "seconds to wait before trying again"}


class ServiceUnavailable(Problem):
    status, slug, title = 503, "service-unavailable", "Temporarily unavailable"
    example = "a service behind the gateway is not answering; try again shortly"
    header_docs: ClassVar[dict[str, str]] = {"Retry-After": "seconds to wait before trying again"}


class InternalError(Problem):
    status, slug, title = 500, "internal-error", "Internal error"
    example = "The server failed to handle this request; nothing was changed."


class FieldError(BaseModel):
    field: str = Field(description="dotted path of the field, `(root)` for the whole body")
    message: str
    type: str = Field(description="what is wrong, for programs: `missing`, `enum`, `value_error`…")


class ProblemDetails(BaseModel):
    """An RFC 9457 problem: every error answers with one, as `application/problem+json`."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [InvalidFields.example_body()]},
    )

    type: str = Field(
        description="a URI naming the kind of problem", examples=[PROBLEM_BASE + Forbidden.slug]
    )
    title: str = Field(description="the kind of problem, in words; the same for every instance")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what went wrong this time, in words")
    instance: str | None = Field(default=None, description="the request path")
    errors: list[FieldError] | None = Field(
        default=None, description="the invalid fields (422), without the values sent"
    )
    allowed: list[str] | None = Field(
        default=None, description="the actions the caller may take instead (409 on a transition)"
    )
    current_etag: str | None = Field(default=None, description="the resource's current ETag (412)")
    accept: str | None = Field(default=None, description="the media type to send instead (415)")
    error: str | None = Field(
        default=None,
        description="the OAuth 2.0 error code (RFC 6749 §5.2) on the token endpoint",
        examples=["invalid_grant"],
    )


PROBLEM_REF = "#/components/schemas/" + PROBLEM_SCHEMA


def problem_schemas() -> dict[str, dict[str, Any]]:
    """`ProblemDetails` and the schemas it uses, for an OpenAPI document's components."""
    schema = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    nested = schema.pop("$defs", {})
    return {PROBLEM_SCHEMA: schema, **nested}


def problem_responses(*problems: type[Problem]) -> dict[int | str, dict[str, Any]]:
    """FastAPI `responses=` declaring the problems a route can answer, grouped by status, each
    type with an example; `default` covers the rest (an unexpected failure is a problem too).
    The schema is referred to by name: add `problem_schemas()` to the document's components."""
    by_status: dict[int, list[type[Problem]]] = {}
    for problem in (*problems, InternalError):
        by_status.setdefault(problem.status, []).append(problem)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, kinds in sorted(by_status.items()):
        headers = {
            name: {"description": meaning, "schema": {"type": "string"}}
            for kind in kinds
            for name, meaning in kind.header_docs.items()
        }
        description = "; ".join(dict.fromkeys(kind.title for kind in kinds))
        if status == InternalError.status:
            description = "Any other error; an unexpected failure is a 500"
        response: dict[str, Any] = {
            "description": description,
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": {"$ref": PROBLEM_REF},
                    "examples": {
                        kind.slug: {"summary": kind.title, "value": kind.example_body()}
                        for kind in kinds
                    },
                }
            },
        }
        if headers:
            response["headers"] = headers
        responses["default" if status == InternalError.status else status] = response
    return responses


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    return JSONResponse(
        problem.body(instance),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers,
    )


def field_errors(pydantic_errors: list[Any], prefix: tuple[str | int, ...] = ()) -> list[dict]:
    """Pydantic's error list as `[{field, message, type}]`, with no input values echoed back:
    an invalid field may hold personal data. A body that is not JSON says why (the decoder's
    reason names a position, never the text)."""
    errors = []
    for error in pydantic_errors:
        location = [*prefix, *(part for part in error["loc"] if part != "body")]
        message = error["msg"]
        if error["type"] == "json_invalid" and (reason := error.get("ctx", {}).get("error")):
            message = f"{message}: {reason}"
        errors.append(
            {
                "field": ".".join(str(part) for part in location) or "(root)",
                "message": message,
                "type": error["type"],
            }
        )
    return errors


_STATUS_PROBLEMS: dict[int, type[Problem]] = {
    cls.status: cls
    for cls in (
        MalformedRequest,
        Unauthenticated,
        Forbidden,
        NotFound,
        PayloadTooLarge,
        UnsupportedMediaType,
        RateLimited,
        ServiceUnavailable,
    )
}


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(request: Request, problem: Problem) -> JSONResponse:
        return problem_response(problem, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problem = InvalidFields(
            "The request has invalid fields.", errors=field_errors(exc.errors())
        )
        return problem_response(problem, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cls = _STATUS_PROBLEMS.get(exc.status_code)
        if cls is None:
            body = {
                "type": "about:blank",
                "title": str(exc.detail),
                "status": exc.status_code,
                "detail": str(exc.detail),
            }
            return JSONResponse(
                body,
                status_code=exc.status_code,
                media_type=PROBLEM_MEDIA_TYPE,
                headers=getattr(exc, "headers", None),
            )
        return problem_response(cls(str(exc.detail), headers=exc.headers), request.url.path)

    @app.exception_handler(ClientDisconnect)
    async def on_client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # Nobody is left to answer; not a server error, so no traceback in the logs.
        log.info("client disconnected", extra={"path": request.url.path})
        return Response(status_code=499)

    @app.exception_handler(DBAPIError)
    async def on_database_unavailable(request: Request, exc: DBAPIError) -> JSONResponse:
        # A lost connection is an outage to wait out, not a bug: 503, and the client retries.
        if not exc.connection_invalidated and not isinstance(exc, OperationalError):
            return await on_unexpected(request, exc)
        log.warning("database unavailable", extra={"path": request.url.path})
        problem = ServiceUnavailable(
            "the service's database is not answering; try again shortly",
            headers={"retry-after": "5"},
        )
        return problem_response(problem, request.url.path)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        body = InternalError(InternalError.example).body()
        return JSONResponse(body, status_code=500, media_type=PROBLEM_MEDIA_TYPE)

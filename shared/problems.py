"""RFC 9457 problem details: typed domain errors, declared once and turned into HTTP centrally.

Handlers raise a `Problem` subclass; `install_problem_handlers` makes every error a service can
produce, including FastAPI's own validation errors and unknown routes, `application/problem+json`.
"""

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://siapnet.bawaslu.go.id/problems/"

log = logging.getLogger("siapnet.problems")


class Problem(Exception):
    """A refusal a client can act on. Subclasses fix the status, slug and title."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

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


class MalformedRequest(Problem):
    status, slug, title = 400, "malformed-request", "The request could not be read"


class InvalidSignature(Problem):
    status, slug, title = 401, "invalid-signature", "The signed document was refused"


class Unauthenticated(Problem):
    status, slug, title = 401, "unauthenticated", "Authentication is required"


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Not allowed for this caller"


class OutOfJurisdiction(Problem):
    status, slug, title = 403, "out-of-jurisdiction", "Outside the office's jurisdiction"


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflicts with the current state"


class DocumentIdReused(Problem):
    status, slug, title = 409, "document-id-reused", "This document id was used for other bytes"


class PreconditionFailed(Problem):
    status, slug, title = 412, "stale-version", "The resource changed since it was read"


class PayloadTooLarge(Problem):
    status, slug, title = 413, "payload-too-large", "The request body is too large"


class UnsupportedMediaType(Problem):
    status, slug, title = 415, "unsupported-media-type", "Unsupported content type"


class InvalidFields(Problem):
    status, slug, title = 422, "invalid-fields", "Some fields are invalid"


class PreconditionRequired(Problem):
    status, slug, title = 428, "version-required", "Send If-Match with the resource's ETag"


class RateLimited(Problem):
    status, slug, title = 429, "rate-limited", "Too many requests"


class ServiceUnavailable(Problem):
    status, slug, title = 503, "service-unavailable", "Temporarily unavailable"


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    return JSONResponse(
        problem.body(instance),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers,
    )


def field_errors(pydantic_errors: list[Any], prefix: tuple[str | int, ...] = ()) -> list[dict]:
    """Pydantic's error list as `[{field, message, type}]`, with no input values echoed back:
    an invalid field may hold personal data."""
    errors = []
    for error in pydantic_errors:
        location = [*prefix, *(part for part in error["loc"] if part != "body")]
        errors.append(
            {
                "field": ".".join(str(part) for part in location) or "(root)",
                "message": error["msg"],
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

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        body = {
            "type": PROBLEM_BASE + "internal-error",
            "title": "Internal error",
            "status": 500,
            "detail": "The server failed to handle this request; nothing was changed.",
        }
        return JSONResponse(body, status_code=500, media_type=PROBLEM_MEDIA_TYPE)

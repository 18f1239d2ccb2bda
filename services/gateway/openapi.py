"""What FastAPI cannot see of the gateway's contract, for `/v1/openapi.json` and `/docs`: the
bodies and query parameters the gateway relays without reading them, the signed recommendation's
payload, the problem schema, and how a caller authenticates."""

import base64
import json
from collections.abc import Callable
from typing import Any, get_args, get_type_hints

from fastapi import APIRouter, FastAPI
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlowPassword, OAuthFlows
from fastapi.routing import APIRoute
from fastapi.security import OAuth2
from pydantic import BaseModel

from shared.codes import Category
from shared.documents import INTAKE_AUDIENCE, RECOMMENDATION_TYP, RecommendationPayload
from shared.lifecycle import Status
from shared.outbox import JOSE_MEDIA_TYPE
from shared.problems import problem_schemas
from shared.schemas import (
    DOCUMENT_ID,
    OFFICE_KID,
    PAGE_LIMIT_MAX,
    RECEIPT,
    RECOMMENDATION,
    Grouping,
)

FORM = "application/x-www-form-urlencoded"
TOKEN_URL = "/v1/auth/token"
SCHEMAS = "#/components/schemas/"

TAGS = [
    {"name": "auth", "description": "Tokens (OAuth 2.0) and who the caller is."},
    {"name": "accounts", "description": "User and client accounts; admin only."},
    {
        "name": "recommendations",
        "description": "Submit signed recommendations, follow them and take lifecycle actions.",
    },
    {"name": "totals", "description": "Counts and the vulnerability index (IKP)."},
    {"name": "office keys", "description": "The public keys offices sign documents with."},
    {"name": "ops", "description": "Liveness, readiness and published keys."},
]

# Only documents the scheme: `shared.identity.current_caller` reads and checks the token.
bearer = OAuth2(
    flows=OAuthFlows(
        password=OAuthFlowPassword(tokenUrl=TOKEN_URL),
        clientCredentials=OAuthFlowClientCredentials(tokenUrl=TOKEN_URL),
    ),
    scheme_name="siapnet_oauth2",
    description="`Authorization: Bearer <access_token>` from `POST /v1/auth/token`.",
    auto_error=False,
)


# --- request bodies the gateway reads itself or relays unread ---------------------------------


def _form(schema: dict[str, Any], example: dict[str, str]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {FORM: {"schema": schema, "example": example}},
        }
    }


TOKEN_FORM = _form(
    {
        "type": "object",
        "required": ["grant_type"],
        "properties": {
            "grant_type": {
                "type": "string",
                "enum": ["password", "client_credentials", "refresh_token"],
            },
            "username": {"type": "string", "description": "password grant"},
            "password": {"type": "string", "format": "password", "description": "password grant"},
            "client_id": {"type": "string", "description": "client_credentials grant"},
            "client_secret": {
                "type": "string",
                "format": "password",
                "description": "client_credentials grant",
            },
            "refresh_token": {"type": "string", "description": "refresh_token grant"},
        },
    },
    {"grant_type": "password", "username": "petugas-pandeglang", "password": "…"},
)

REVOCATION_FORM = _form(
    {
        "type": "object",
        "required": ["token"],
        "properties": {"token": {"type": "string", "description": "the refresh token"}},
    },
    {"token": "b2c7e3f0-5a61-4d2e-8c9b-0e1f2a3b4c5d.q8V2tYx0b3Jc5m1NfGz7wKpA4sLr9eHu-3kTnWbZ1yQc"},
)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


PAYLOAD_EXAMPLE = {
    "jti": DOCUMENT_ID,
    "iss": "bawaslu-36.01",
    "aud": INTAKE_AUDIENCE,
    "iat": 1772524790,
    "recommendation": RECOMMENDATION,
    "supersedes": None,
}
SIGNED_HEADER = {"alg": "ES256", "kid": OFFICE_KID, "typ": RECOMMENDATION_TYP}
# The shape of a signed recommendation; the signature part is a placeholder.
SIGNED_EXAMPLE = ".".join(
    [
        _b64url(json.dumps(SIGNED_HEADER, separators=(",", ":")).encode()),
        _b64url(json.dumps(PAYLOAD_EXAMPLE, separators=(",", ":")).encode()),
        RECEIPT.rsplit(".", 1)[1],
    ]
)
COMPACT_JWS = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"

SIGNED_RECOMMENDATION = {
    "requestBody": {
        "required": True,
        "description": (
            f"A compact JWS (RFC 7515) signed ES256 with a key registered to the caller's office;"
            f" header `typ` `{RECOMMENDATION_TYP}` and `kid`; the payload is a"
            " `RecommendationPayload`."
        ),
        "content": {
            JOSE_MEDIA_TYPE: {
                "schema": {"type": "string", "pattern": COMPACT_JWS},
                "example": SIGNED_EXAMPLE,
                "x-jws-payload": {"$ref": SCHEMAS + "RecommendationPayload"},
            }
        },
    }
}


# --- parameters relayed to the service that answers -------------------------------------------


def _query(name: str, schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema} | {
        "description": description,
        **extra,
    }


def _enum(values: Any) -> dict[str, Any]:
    return {"type": "string", "enum": [str(value) for value in values]}


CATEGORY = _query("category", _enum(Category), "only this category")
SINCE = _query(
    "since",
    {"type": "string", "format": "date-time"},
    "received at or after; a time without a zone is WIB",
    example="2026-03-01T00:00:00+07:00",
)
UNTIL = _query(
    "until",
    {"type": "string", "format": "date-time"},
    "received before; a time without a zone is WIB",
    example="2026-04-01T00:00:00+07:00",
)
FILTERS = [
    _query("status", _enum(Status), "only this status"),
    CATEGORY,
    _query(
        "region_code",
        {"type": "string"},
        "only this Kemendagri region and the regions inside it",
        example="36.01",
    ),
    _query("office", {"type": "string"}, "only this submitting office", example="bawaslu-36.01"),
    SINCE,
    UNTIL,
]
LIST_PARAMETERS = {
    "parameters": [
        *FILTERS,
        _query("cursor", {"type": "string"}, "`next_cursor` of the previous page"),
        _query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": PAGE_LIMIT_MAX, "default": 50},
            "page size",
        ),
    ]
}
STATS_PARAMETERS = {
    "parameters": [
        _query(
            "group_by",
            {"type": "array", "items": _enum(Grouping)},
            "group the counts by these, in this order; repeated or comma-separated",
            style="form",
            explode=True,
            example=["region", "category"],
        ),
        *FILTERS,
    ]
}
VULNERABILITY_PARAMETERS = {
    "parameters": [
        _query(
            "level",
            _enum(["province", "regency"]),
            "national: per province (default) or per regency; a province office always gets"
            " its regencies",
        ),
        CATEGORY,
        SINCE,
        UNTIL,
    ]
}
IF_MATCH = {
    "parameters": [
        {
            "name": "If-Match",
            "in": "header",
            "required": True,
            "description": "the ETag of the copy you read (428 without it, 412 if it changed)",
            "schema": {"type": "string"},
            "example": f'"{DOCUMENT_ID}.2"',
        }
    ]
}
ETAG_HEADER = {
    "ETag": {
        "description": "the version to send back as If-Match with a transition",
        "schema": {"type": "string"},
    }
}

# Links (OpenAPI 3.1 §4.8.20): what a client may do next with what an answer gave it. Generated
# clients and schemathesis's workflows follow them.
_NEXT_ACTION = {
    "operationId": "transition_recommendation",
    "description": "Act on it, sending back the ETag as If-Match",
    "parameters": {
        "recommendation_id": "$request.path.recommendation_id",
        "header.If-Match": "$response.header.ETag",
    },
}
AFTER_SUBMISSION = {
    "GetSubmittedRecommendation": {
        "operationId": "get_recommendation",
        "description": "Follow the recommendation up the hierarchy",
        "parameters": {"recommendation_id": "$response.body#/document_id"},
    },
    "GetReceipt": {
        "operationId": "get_receipt",
        "description": "Fetch the signed receipt again",
        "parameters": {"document_id": "$response.body#/document_id"},
    },
}
AFTER_READING = {"TakeAction": _NEXT_ACTION}
AFTER_ACTION = {"TakeNextAction": _NEXT_ACTION}
AFTER_KEY_REGISTRATION = {
    "ListKeys": {
        "operationId": "list_office_keys",
        "description": "The office's keys, this one among them",
        "parameters": {"office_id": "$request.path.office_id"},
    },
    "RetireKey": {
        "operationId": "retire_office_key",
        "description": "Retire this key when it is replaced or lost",
        "parameters": {"office_id": "$request.path.office_id", "kid": "$response.body#/kid"},
    },
}


# --- the document -----------------------------------------------------------------------------


def payload_schemas() -> dict[str, dict[str, Any]]:
    """`RecommendationPayload`, what an office signs, and the schemas it uses."""
    schema = RecommendationPayload.model_json_schema(ref_template=SCHEMAS + "{model}")
    nested = schema.pop("$defs", {})
    schema["examples"] = [PAYLOAD_EXAMPLE]
    return {"RecommendationPayload": schema, **nested}


def models_shown_by(*routers: APIRouter) -> dict[str, type[BaseModel]]:
    """Every pydantic model the routers' operations take or answer, and those inside them."""
    found: dict[str, type[BaseModel]] = {}

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation.__name__ in found:
                return
            found[annotation.__name__] = annotation
            for field in annotation.model_fields.values():
                visit(field.annotation)
        for argument in get_args(annotation):
            visit(argument)

    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute):
                visit(route.response_model)
                for response in route.responses.values():
                    visit(response.get("model"))
                for hint in get_type_hints(route.endpoint, include_extras=True).values():
                    visit(hint)
    return found


def with_shared_schemas(app: FastAPI, *routers: APIRouter) -> Callable[[], dict[str, Any]]:
    """`app.openapi` with the schemas the routes refer to by name added to the components, and
    the examples of the routers' models as the models give them."""
    generate = app.openapi
    models = models_shown_by(*routers)

    def openapi() -> dict[str, Any]:
        document = generate()
        components = document.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in {**problem_schemas(), **payload_schemas()}.items():
            if components.setdefault(name, schema) != schema:
                raise RuntimeError(f"two different schemas are both called {name}")
        # FastAPI drops the null members of examples as it encodes the document: put them back.
        for name, model in models.items():
            examples = model.model_json_schema().get("examples")
            if examples and name in components:
                components[name]["examples"] = examples
        return document

    return openapi

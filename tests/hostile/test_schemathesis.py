"""Specification: whatever a signed-in client sends to any operation of the gateway's OpenAPI
description — valid, invalid or hostile — the answer is never a 5xx and always one the description
documents: its status, its media type, its headers and a body its schema admits.

Schemathesis generates the requests from `/v1/openapi.json` as served, for a regency officer and
for a national admin; then it runs them as workflows that follow the description's links (those
it can infer, and those `LINKS` adds until the description declares them). Runs are derandomized:
a failure found here fails the same way on every run until it is fixed.
"""

import copy
import re
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.gateway.app import create_app
from services.gateway.openapi import COMPACT_JWS
from services.gateway.settings import GatewaySettings
from tests.hostile.conftest import GATEWAY, Exchange
from tests.support.offices import OfficeSigner

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
]
FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
WORKFLOWS = settings(FUZZ, max_examples=30, stateful_step_count=10)
CALLERS = {
    "regency-officer": ("bawaslu-36.01", "officer"),
    "national-admin": ("bawaslu-ri", "admin"),
}
METHODS = ("get", "post", "put", "patch", "delete")
# One test per operation and caller, listed from the factory's description (the one served):
# schemathesis's own `schema.parametrize()` reads a pytest internal that pytest 9.2 removed.
OPERATIONS = sorted(
    (method.upper(), path)
    for path, item in create_app(GatewaySettings()).openapi()["paths"].items()
    for method in item
    if method in METHODS
)
# Links between operations that schemathesis cannot infer from names alone; added to the served
# description only where it declares no link of that name.
LINKS: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {
    ("/v1/recommendations", "post", "201"): {
        "GetSubmittedRecommendation": {
            "operationId": "get_recommendation",
            "parameters": {"recommendation_id": "$response.body#/document_id"},
        },
        "GetReceipt": {
            "operationId": "get_receipt",
            "parameters": {"document_id": "$response.body#/document_id"},
        },
    },
    ("/v1/recommendations/{recommendation_id}", "get", "200"): {
        "TakeAction": {
            "operationId": "transition_recommendation",
            "parameters": {
                "recommendation_id": "$request.path.recommendation_id",
                "header.If-Match": "$response.header.ETag",
            },
        },
    },
    ("/v1/recommendations/{recommendation_id}/transitions", "post", "200"): {
        "TakeNextAction": {
            "operationId": "transition_recommendation",
            "parameters": {
                "recommendation_id": "$request.path.recommendation_id",
                "header.If-Match": "$response.header.ETag",
            },
        },
    },
    ("/v1/offices/{office_id}/keys", "post", "201"): {
        "ListKeys": {
            "operationId": "list_office_keys",
            "parameters": {"office_id": "$request.path.office_id"},
        },
        "RetireKey": {
            "operationId": "retire_office_key",
            "parameters": {"office_id": "$request.path.office_id", "kid": "$response.body#/kid"},
        },
    },
}

# A compact JWS is text on the wire.
schemathesis.serializer.alias("application/jose", "text/plain")


def with_links(spec: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    for (path, method, status), links in LINKS.items():
        declared = spec["paths"][path][method]["responses"][status].setdefault("links", {})
        for name, link in links.items():
            declared.setdefault(name, link)
    return spec


@pytest.fixture(scope="module")
def description(exchange: Exchange) -> dict[str, Any]:
    answer = exchange.request("GET", "/v1/openapi.json")
    assert answer.status_code == 200
    return answer.json()


@pytest.fixture(scope="module")
def tokens(exchange: Exchange) -> dict[str, dict[str, str]]:
    """Each caller's Authorization header, taken before any workflow can disable its account."""
    return {caller: exchange.headers_for(*account) for caller, account in CALLERS.items()}


@pytest.fixture(scope="module")
def pandeglang(exchange: Exchange, tokens) -> OfficeSigner:
    """Bawaslu Kabupaten Pandeglang with its signing key registered, for workflows that submit."""
    office = OfficeSigner("bawaslu-36.01")
    answer = exchange.request(
        "POST",
        "/v1/offices/bawaslu-36.01/keys",
        json={"jwk": office.key.public_jwk},
        headers=tokens["national-admin"],
    )
    assert answer.status_code in (200, 201), answer.text
    return office


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_only_documented_non_5xx_answers(
    exchange: Exchange, description, tokens, method: str, path: str, caller: str
):
    operation = schemathesis.openapi.from_dict(description)[path][method]
    headers = tokens[caller]
    cases = st.one_of(
        *operation.get_strategies_from_examples(),
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @FUZZ
    @given(case=cases)
    def answers_as_documented(case) -> None:
        case.call_and_validate(
            base_url=GATEWAY, session=exchange.session, headers=headers, checks=CHECKS
        )

    answers_as_documented()


@pytest.mark.parametrize("caller", list(CALLERS))
def test_workflows_along_the_links_answer_only_documented_non_5xx_answers(
    exchange: Exchange, description, tokens, pandeglang: OfficeSigner, caller: str
):
    schema = schemathesis.openapi.from_dict(with_links(description))
    headers = tokens[caller]

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case) -> dict[str, Any]:
            return {"base_url": GATEWAY, "session": exchange.session, "headers": headers}

        def before_call(self, case) -> None:
            # A generated JWS is never signed: where one is well formed, send a signed one, so
            # that submissions succeed and the links after them are followed.
            body = case.body
            if case.operation.label == "POST /v1/recommendations" and (
                isinstance(body, str) and re.match(COMPACT_JWS, body)
            ):
                case.body = pandeglang.sign()

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            case.validate_response(
                response, checks=CHECKS, transport_kwargs=kwargs, recorder=self.recorder
            )

    Workflow.run(settings=WORKFLOWS)

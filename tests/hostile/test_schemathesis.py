"""Specification: whatever a signed-in client sends to any operation of the gateway's OpenAPI
description — valid, invalid or hostile — the answer is never a 5xx and always one the description
documents: its status, its media type, its headers and a body its schema admits.

Schemathesis generates the requests from `/v1/openapi.json` as served, for a regency officer and
for a national admin; then it runs them as workflows that follow the description's links (those
it can infer, and those the description declares). Runs are derandomized:
a failure found here fails the same way on every run until it is fixed (a deep run,
`SIAPNET_FUZZ_EXAMPLES`, draws fresh ones: see `tests/hostile/conftest.py`).
"""

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
from tests.hostile.conftest import GATEWAY, Exchange, fuzz_settings
from tests.support.offices import OfficeSigner

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
]
FUZZ = fuzz_settings(30, suppress_health_check=list(HealthCheck))
WORKFLOWS = settings(FUZZ, stateful_step_count=10)
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
# The links the served description must declare, so workflows chain these operations.
LINKED = {
    ("/v1/recommendations", "post", "201"): {"GetSubmittedRecommendation", "GetReceipt"},
    ("/v1/recommendations/{recommendation_id}", "get", "200"): {"TakeAction"},
    ("/v1/recommendations/{recommendation_id}/transitions", "post", "200"): {"TakeNextAction"},
    ("/v1/offices/{office_id}/keys", "post", "201"): {"ListKeys", "RetireKey"},
}

# A compact JWS is text on the wire.
schemathesis.serializer.alias("application/jose", "text/plain")


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


def test_the_description_links_each_answer_to_what_a_client_can_do_next(description):
    operations = {
        operation["operationId"]: operation
        for item in description["paths"].values()
        for method, operation in item.items()
        if method in METHODS
    }
    for (path, method, status), names in LINKED.items():
        links = description["paths"][path][method]["responses"][status].get("links", {})
        assert names <= links.keys(), (path, method, status)
        for link in links.values():
            target = operations[link["operationId"]]
            accepted = {
                ("header." if p["in"] == "header" else "") + p["name"]
                for p in target.get("parameters", [])
            }
            assert link["parameters"].keys() <= accepted, link


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
    schema = schemathesis.openapi.from_dict(description)
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

"""Specification: `/v1/openapi.json` describes the whole public contract (DESIGN §5) — every route
with its answers, its refusals and examples — is valid OpenAPI, and is plain enough to generate a
client from without renaming anything."""

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from services.gateway.api import router
from shared.api import operations as operations_router
from shared.documents import RecommendationPayload
from shared.problems import PROBLEM_MEDIA_TYPE
from tests.gateway.conftest import eventually
from tests.support.offices import OfficeSigner

pytestmark = pytest.mark.anyio

METHODS = ("get", "post", "put", "patch", "delete")
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
TYPE_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")
PROBLEM_REF = "#/components/schemas/ProblemDetails"
DESIGN_OPERATIONS = {
    ("post", "/v1/auth/token"),
    ("post", "/v1/auth/revoke"),
    ("get", "/v1/me"),
    ("post", "/v1/recommendations"),
    ("get", "/v1/recommendations"),
    ("get", "/v1/recommendations/{recommendation_id}"),
    ("post", "/v1/recommendations/{recommendation_id}/transitions"),
    ("get", "/v1/stats"),
    ("get", "/v1/stats/vulnerability"),
    ("get", "/v1/receipts/{document_id}"),
    ("post", "/v1/offices/{office_id}/keys"),
    ("get", "/v1/offices/{office_id}/keys"),
    ("post", "/v1/offices/{office_id}/keys/{kid}/retire"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/healthz"),
    ("get", "/readyz"),
}
# The refusals a route can really answer, beyond 401 and 429 for every signed-in route.
ROUTE_REFUSALS = {
    "issue_token": {400, 401, 415, 429},
    "submit_recommendation": {400, 401, 403, 409, 413, 415, 422, 503},
    "list_recommendations": {422, 503},
    "get_recommendation": {404, 503},
    "transition_recommendation": {403, 404, 409, 412, 422, 428, 503},
    "get_stats": {403, 422, 503},
    "get_vulnerability": {403, 422, 503},
    "get_receipt": {404, 503},
    "register_office_key": {403, 404, 409, 422, 503},
    "list_office_keys": {404, 503},
    "retire_office_key": {403, 404, 503},
    "create_account": {403, 409, 422},
    "disable_account": {403, 404},
}
OPERATIONS_ROUTES = {"get_health", "get_readiness", "get_jwks"}


@pytest.fixture
async def spec(front) -> dict[str, Any]:
    answer = await front.gateway.get("/v1/openapi.json")
    assert answer.status_code == 200
    return answer.json()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def resolve(spec: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = spec
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def validator(spec: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A JSON Schema validator for a schema of the document, its `#/components/...` resolvable."""
    return Draft202012Validator({"components": spec["components"], "allOf": [schema]})


def fits(spec: dict[str, Any], schema: dict[str, Any], instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator(spec, schema).iter_errors(instance)
    ]


def documented(spec: dict[str, Any], operation_id: str, answer) -> list[str]:
    """Whether a real answer is one the operation documents, with a body its schema admits."""
    operation = next(op for _, _, op in operations(spec) if op["operationId"] == operation_id)
    response = operation["responses"].get(str(answer.status_code))
    if response is None:
        return [f"{operation_id} does not document {answer.status_code}"]
    media_type = answer.headers["content-type"].split(";")[0]
    if media_type not in response.get("content", {}):
        return [f"{operation_id} {answer.status_code} does not document {media_type}"]
    return fits(spec, response["content"][media_type]["schema"], answer.json())


# --- the document ----------------------------------------------------------------------------


async def test_the_document_is_valid_openapi_3_1(spec):
    validate(spec)
    assert spec["openapi"].startswith("3.1")
    assert spec["info"]["title"] == "SIAPNET exchange"


async def test_every_route_of_design_section_5_is_described(spec):
    described = {(method, path) for method, path, _ in operations(spec)}
    assert described >= DESIGN_OPERATIONS
    assert "/metrics" not in spec["paths"]


async def test_every_operation_id_is_chosen_unique_and_snake_case(spec):
    ids = [operation.get("operationId") for _, _, operation in operations(spec)]
    assert all(ids), "an operation has no operationId"
    assert len(ids) == len(set(ids)), "an operationId is used twice"
    assert all(SNAKE_CASE.match(operation_id) for operation_id in ids), ids
    documented_routes = [
        route
        for route in [*router.routes, *operations_router.routes]
        if isinstance(route, APIRoute) and route.include_in_schema
    ]
    assert documented_routes and all(route.operation_id for route in documented_routes), (
        "FastAPI would make up an operationId for a route without one"
    )


async def test_every_operation_has_a_summary_and_a_success_with_a_schema(spec):
    for method, path, operation in operations(spec):
        assert operation.get("summary"), (method, path)
        successes = {code: r for code, r in operation["responses"].items() if code[0] == "2"}
        assert successes, (method, path)
        for code, response in successes.items():
            assert response.get("content"), (method, path, code)
            for media_type, content in response["content"].items():
                assert content.get("schema"), (method, path, code, media_type)
                if media_type == "application/json":
                    assert content["schema"] != {}, (method, path, code)


async def test_every_signed_in_operation_names_the_scheme_and_answers_401_and_429(spec):
    schemes = spec["components"]["securitySchemes"]
    signed_in = [(m, p, op) for m, p, op in operations(spec) if op.get("security")]
    assert len(signed_in) >= 14
    for method, path, operation in signed_in:
        for requirement in operation["security"]:
            assert set(requirement) <= set(schemes), (method, path)
        assert {"401", "429"} <= set(operation["responses"]), (method, path)
    token_flows = schemes["siapnet_oauth2"]["flows"]
    assert {flow["tokenUrl"] for flow in token_flows.values()} == {"/v1/auth/token"}


@pytest.mark.parametrize(("operation_id", "refusals"), sorted(ROUTE_REFUSALS.items()))
async def test_each_route_declares_the_refusals_it_can_answer(spec, operation_id, refusals):
    operation = next(op for _, _, op in operations(spec) if op["operationId"] == operation_id)
    assert {str(status) for status in refusals} <= set(operation["responses"])


async def test_every_error_is_a_problem_with_an_example(spec):
    for method, path, operation in operations(spec):
        errors = {
            code: response
            for code, response in operation["responses"].items()
            if code[0] in "45" or code == "default"
        }
        if operation["operationId"] not in OPERATIONS_ROUTES:
            assert any(code[0] == "4" for code in errors), (method, path)
        for code, response in errors.items():
            if (operation["operationId"], code) == ("get_readiness", "503"):
                continue  # not an error but the answer: not ready yet
            assert set(response["content"]) == {PROBLEM_MEDIA_TYPE}, (method, path, code)
            content = response["content"][PROBLEM_MEDIA_TYPE]
            assert content["schema"] == {"$ref": PROBLEM_REF}, (method, path, code)
            assert content["examples"], (method, path, code)
            for example in content["examples"].values():
                if code != "default":
                    assert example["value"]["status"] == int(code), (method, path, code)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


async def test_the_submission_body_is_a_compact_jws_of_a_recommendation_payload(spec):
    body = spec["paths"]["/v1/recommendations"]["post"]["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == {"application/jose"}
    jose = body["content"]["application/jose"]
    assert jose["schema"]["type"] == "string"
    assert re.match(jose["schema"]["pattern"], jose["example"])
    assert resolve(spec, jose["x-jws-payload"]["$ref"])["title"] == "RecommendationPayload"
    header, payload, _ = jose["example"].split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    RecommendationPayload.model_validate(decoded)
    assert json.loads(base64.urlsafe_b64decode(header + "==="))["typ"] == (
        "siapnet-recommendation+jws"
    )


async def test_the_transition_needs_if_match_and_answers_an_etag(spec):
    operation = spec["paths"]["/v1/recommendations/{recommendation_id}/transitions"]["post"]
    headers = [p for p in operation["parameters"] if p["in"] == "header"]
    assert [p["name"] for p in headers] == ["If-Match"]
    assert "ETag" in operation["responses"]["200"]["headers"]


async def test_relayed_query_parameters_are_described(spec):
    def names(path: str) -> set[str]:
        return {p["name"] for p in spec["paths"][path]["get"].get("parameters", [])}

    filters = {"status", "category", "region_code", "office", "since", "until"}
    assert names("/v1/recommendations") >= filters | {"cursor", "limit"}
    assert names("/v1/stats") >= filters | {"group_by", "include"}
    assert names("/v1/stats/vulnerability") >= {"level", "category", "since", "until"}


# --- generating a client from it -------------------------------------------------------------


async def test_every_reference_resolves(spec):
    for ref in set(refs(spec)):
        assert resolve(spec, ref) is not None, ref


async def test_every_component_is_a_titled_typed_schema_with_a_type_name(spec):
    for name, schema in spec["components"]["schemas"].items():
        assert TYPE_NAME.match(name), f"{name} would need renaming in a generated client"
        assert schema.get("title") == name, name
        assert schema.get("type") in ("object", "string", "integer"), name


async def test_every_example_fits_its_schema(spec):
    checked = 0
    for name, schema in spec["components"]["schemas"].items():
        for example in schema.get("examples", []):
            assert not fits(spec, schema, example), (name, fits(spec, schema, example))
            checked += 1
    for method, path, operation in operations(spec):
        media = [
            content
            for response in operation["responses"].values()
            for content in response.get("content", {}).values()
        ]
        media += list(operation.get("requestBody", {}).get("content", {}).values())
        for content in media:
            examples = [e["value"] for e in content.get("examples", {}).values()]
            examples += [content["example"]] if "example" in content else []
            for example in examples:
                assert not fits(spec, content["schema"], example), (method, path, example)
                checked += 1
        for parameter in operation.get("parameters", []):
            if "example" in parameter:
                assert not fits(spec, parameter["schema"], parameter["example"]), parameter
                checked += 1
    assert checked > 40


async def test_swagger_ui_is_served_whole_by_the_gateway_itself(front):
    """The docs page works on an air-gapped site: everything it loads comes from the gateway,
    and its content security policy names no other host."""
    answer = await front.gateway.get("/docs")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "/v1/openapi.json" in answer.text
    assert "http://" not in answer.text and "https://" not in answer.text
    assert "http" not in answer.headers["content-security-policy"]
    loaded = re.findall(r'(?:src|href)="([^"]+)"', answer.text)
    assert sorted(loaded) == [
        "/docs/assets/favicon-32x32.png",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
    ]
    kinds = {}
    for path in loaded:
        asset = await front.gateway.get(path)
        assert asset.status_code == 200, path
        assert asset.headers["cache-control"].startswith("public"), path
        kinds[path.rsplit(".", 1)[1]] = asset
    assert kinds["js"].headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in kinds["js"].text
    assert kinds["css"].headers["content-type"].startswith("text/css")
    assert kinds["png"].content.startswith(b"\x89PNG")
    missing = await front.gateway.get("/docs/assets/swagger-editor.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


# --- the description matches what the gateway answers ----------------------------------------


async def test_real_answers_are_the_documented_ones(front, spec):
    admin = await front.headers_for("bawaslu-ri", "admin")
    pandeglang = await front.headers_for("bawaslu-36.01", "officer")
    banten = await front.headers_for("bawaslu-36", "officer")
    national = await front.headers_for("bawaslu-ri", "officer")
    office = OfficeSigner("bawaslu-36.01")
    answers = [
        ("get_me", await front.gateway.get("/v1/me", headers=pandeglang)),
        ("get_me", await front.gateway.get("/v1/me")),
        (
            "register_office_key",
            await front.gateway.post(
                "/v1/offices/bawaslu-36.01/keys",
                json={"jwk": office.key.public_jwk},
                headers=admin,
            ),
        ),
        (
            "list_office_keys",
            await front.gateway.get("/v1/offices/bawaslu-36.01/keys", headers=admin),
        ),
    ]
    submitted = await front.gateway.post(
        "/v1/recommendations",
        content=office.sign(),
        headers={**pandeglang, "content-type": "application/jose"},
    )
    rec = submitted.json()["document_id"]
    answers += [
        ("submit_recommendation", submitted),
        (
            "get_recommendation",
            await front.gateway.get(f"/v1/recommendations/{rec}", headers=pandeglang),
        ),
        ("get_receipt", await front.gateway.get(f"/v1/receipts/{rec}", headers=pandeglang)),
        (
            "submit_recommendation",
            await front.gateway.post(
                "/v1/recommendations", content="not a jws", headers=pandeglang
            ),
        ),
    ]

    async def at_province() -> bool:
        answer = await front.gateway.get(f"/v1/recommendations/{rec}", headers=banten)
        return answer.json().get("status") == "submitted"

    await eventually(at_province)
    read = await front.gateway.get(f"/v1/recommendations/{rec}", headers=banten)
    transition = f"/v1/recommendations/{rec}/transitions"
    answers += [
        ("get_recommendation", read),
        ("list_recommendations", await front.gateway.get("/v1/recommendations", headers=banten)),
        (
            "transition_recommendation",
            await front.gateway.post(transition, json={"action": "verify"}, headers=banten),
        ),
        (
            "transition_recommendation",
            await front.gateway.post(
                transition,
                json={"action": "send"},
                headers={**banten, "if-match": read.headers["etag"]},
            ),
        ),
        (
            "transition_recommendation",
            await front.gateway.post(
                transition,
                json={"action": "verify"},
                headers={**banten, "if-match": read.headers["etag"]},
            ),
        ),
        ("get_stats", await front.gateway.get("/v1/stats?group_by=region", headers=banten)),
        ("get_stats", await front.gateway.get("/v1/stats?group_by=nothing", headers=banten)),
        ("get_vulnerability", await front.gateway.get("/v1/stats/vulnerability", headers=banten)),
        ("get_stats", await front.gateway.get("/v1/stats", headers=pandeglang)),
        ("get_stats", await front.gateway.get("/v1/stats?include=provinces", headers=national)),
    ]
    statuses = {answer.status_code for _, answer in answers}
    assert {200, 201, 401, 403, 409, 415, 422, 428} <= statuses
    for operation_id, answer in answers:
        assert not documented(spec, operation_id, answer), (
            operation_id,
            answer.status_code,
            documented(spec, operation_id, answer),
        )

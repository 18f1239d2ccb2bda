"""Specification: input built to exhaust a service is cut off cleanly. JSON nested 100,000 deep
— as a request body or inside a properly signed document — is a 4xx problem, never a 5xx or a
RecursionError; a body over `max_body_bytes` is 413 whether declared or streamed, and one just
under it is read; a body that dribbles in slower than `body_timeout_seconds` is answered 408 and
its connection closed, while the server keeps answering everyone else."""

import json
import logging
import select
import socket
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from services.intake.app import create_app as create_intake
from shared.documents import RECOMMENDATION_TYP, STATUS_TYP
from shared.problems import PROBLEM_MEDIA_TYPE
from shared.signing import MAX_JSON_DEPTH, KeyPair, b64url_encode
from tests.conftest import submit
from tests.support.collector import collecting_at_every_allocation
from tests.support.offices import OfficeSigner
from tests.support.servers import ThreadedServer

pytestmark = pytest.mark.anyio

DEEP = 100_000
MAX_BODY_BYTES = 1024 * 1024  # ServiceSettings.max_body_bytes
JSON = {"content-type": "application/json"}
JOSE = {"content-type": "application/jose"}


def nested_arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def nested_objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def signed_bytes(office: OfficeSigner, payload: bytes, typ: str = RECOMMENDATION_TYP) -> str:
    return office.key.sign(payload, typ)


def with_header(header: bytes, office: OfficeSigner) -> str:
    """A compact JWS whose protected header is `header` (its signature cannot match)."""
    _, payload, signature = office.sign().split(".")
    return ".".join([b64url_encode(header), payload, signature])


def assert_problem(answer: httpx.Response, *statuses: int) -> dict:
    assert answer.status_code in statuses, (answer.status_code, answer.text[:300])
    assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE
    problem = answer.json()
    assert problem["status"] == answer.status_code and problem["type"] and problem["detail"]
    return problem


@pytest.fixture
def logs(caplog) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_no_crash_logged(logs: pytest.LogCaptureFixture) -> None:
    assert "RecursionError" not in logs.text
    assert not [r for r in logs.records if r.levelno >= logging.ERROR], logs.text[-2000:]


@pytest.fixture
async def intake_door(intake) -> AsyncIterator[httpx.AsyncClient]:
    """Intake as a client across the network sees it: a crash is a 500, not an exception."""
    transport = httpx.ASGITransport(app=intake.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        yield client


@pytest.fixture
async def gateway(front) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway as a client across the network sees it: a crash is a 500, not an exception."""
    transport = httpx.ASGITransport(app=front.gateway.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://gateway") as client:
        yield client


# --- deep nesting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [nested_arrays(DEEP), nested_objects(DEEP)], ids=["arrays", "objects"]
)
@pytest.mark.parametrize(
    ("path", "roles"),
    [
        ("/v1/recommendations/8f3c2a71-4d5e-4b6f-9a0c-1e2d3f4a5b6c/transitions", ("officer",)),
        ("/v1/offices/bawaslu-36.01/keys", ("admin",)),
        ("/v1/accounts", ("admin",)),
    ],
)
async def test_deeply_nested_json_to_a_gateway_json_endpoint_is_a_4xx_problem(
    front, gateway, logs, path, roles, body
):
    headers = await front.headers_for("bawaslu-ri" if "admin" in roles else "bawaslu-36", *roles)

    answer = await gateway.post(
        path, content=body, headers={**headers, **JSON, "if-match": '"x.1"'}
    )

    assert_problem(answer, 400, 422)
    assert_no_crash_logged(logs)


async def test_deep_json_to_a_json_endpoint_never_takes_the_parser_to_the_recursion_limit(
    front, gateway
):
    """JSON bodies are read by `shared.api.DepthCheckedRequest`: json.loads never recursed into
    this, so no garbage collection found itself without room to run its callbacks."""
    headers = await front.headers_for("bawaslu-ri", "admin")

    with collecting_at_every_allocation() as failed_callbacks:
        answer = await gateway.post(
            "/v1/accounts", content=nested_arrays(DEEP), headers={**headers, **JSON}
        )

    problem = assert_problem(answer, 422)
    assert "nests deeper than" in json.dumps(problem)
    assert failed_callbacks == []


async def test_deeply_nested_json_in_the_token_form_is_a_4xx_problem(front, gateway, logs):
    form = b"grant_type=password&username=" + nested_arrays(2000) + b"&password=" + b"[" * 2000
    as_form = {"content-type": "application/x-www-form-urlencoded"}

    answers = [
        await gateway.post("/v1/auth/token", content=form, headers=as_form),
        await gateway.post("/v1/auth/token", content=nested_arrays(DEEP), headers=JSON),
        await gateway.post("/v1/auth/token", content=nested_arrays(DEEP), headers=as_form),
    ]

    for answer in answers:
        assert_problem(answer, 400, 401, 415)
    assert_no_crash_logged(logs)


@pytest.mark.parametrize(
    "payload",
    [nested_arrays(DEEP), nested_objects(DEEP), nested_objects(MAX_JSON_DEPTH + 1)],
    ids=["arrays", "objects", "just-too-deep"],
)
async def test_a_properly_signed_document_of_deeply_nested_json_is_a_400_at_intake(
    intake_door, pandeglang, logs, payload
):
    answer = await submit(intake_door, signed_bytes(pandeglang, payload))

    problem = assert_problem(answer, 400)
    assert problem["type"].endswith("/malformed-request")
    assert "nests deeper" in problem["detail"]
    assert_no_crash_logged(logs)


async def test_a_deeply_nested_jws_header_is_a_400_at_intake(intake_door, pandeglang, logs):
    answers = [
        await submit(intake_door, with_header(nested_arrays(DEEP), pandeglang)),
        await submit(intake_door, with_header(nested_objects(DEEP), pandeglang)),
    ]

    for answer in answers:
        assert_problem(answer, 400)
    assert_no_crash_logged(logs)


async def test_a_deeply_nested_status_event_is_a_400_before_any_key_is_fetched(intake_door, logs):
    """Status events come unauthenticated from province services; intake reads the unverified
    issuer first, so a nested payload must not crash that read either."""
    peer = OfficeSigner("recommendation-province-36", key=KeyPair.generate())
    answers = [
        await intake_door.post(
            "/exchange/v1/status-events",
            content=signed_bytes(peer, nested_arrays(DEEP), STATUS_TYP),
            headers=JOSE,
        ),
        await intake_door.post(
            "/exchange/v1/status-events",
            content=signed_bytes(peer, nested_objects(DEEP), STATUS_TYP),
            headers=JOSE,
        ),
    ]

    for answer in answers:
        assert_problem(answer, 400)
    assert_no_crash_logged(logs)


async def test_a_deeply_nested_document_through_the_gateway_is_a_400(front, gateway, logs):
    admin = await front.headers_for("bawaslu-ri", "admin")
    office = OfficeSigner("bawaslu-36.01")
    registered = await gateway.post(
        "/v1/offices/bawaslu-36.01/keys", json={"jwk": office.key.public_jwk}, headers=admin
    )
    assert registered.status_code == 201, registered.text
    pandeglang = await front.headers_for("bawaslu-36.01", "officer")

    answer = await gateway.post(
        "/v1/recommendations",
        content=signed_bytes(office, nested_objects(DEEP)),
        headers={**pandeglang, **JOSE},
    )

    assert_problem(answer, 400)
    assert_no_crash_logged(logs)


# --- huge bodies ------------------------------------------------------------------------------


def padded_json(size: int) -> bytes:
    """A JSON object of exactly `size` bytes: a transition with a long note."""
    empty = json.dumps({"action": "verify", "note": ""}).encode()
    return json.dumps({"action": "verify", "note": "x" * (size - len(empty))}).encode()


async def streamed(body: bytes, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    """The body in chunks, without a Content-Length: only counting can stop it."""
    for start in range(0, len(body), chunk):
        yield body[start : start + chunk]


async def test_json_just_under_the_limit_is_read_and_just_over_is_413(front, gateway, logs):
    banten = await front.headers_for("bawaslu-36", "officer")
    path = "/v1/recommendations/8f3c2a71-4d5e-4b6f-9a0c-1e2d3f4a5b6c/transitions"
    headers = {**banten, **JSON, "if-match": '"x.1"'}

    under = await gateway.post(path, content=padded_json(MAX_BODY_BYTES), headers=headers)
    over = await gateway.post(path, content=padded_json(MAX_BODY_BYTES + 1), headers=headers)
    over_streamed = await gateway.post(
        path, content=streamed(padded_json(4 * MAX_BODY_BYTES)), headers=headers
    )

    # Read and refused on its merits: the note is too long for a transition.
    assert_problem(under, 422)
    assert_problem(over, 413)
    assert_problem(over_streamed, 413)
    assert_no_crash_logged(logs)


async def test_a_document_just_under_the_limit_is_read_and_just_over_is_413(
    intake_door, pandeglang, logs
):
    base = pandeglang.sign()
    under = base + "A" * (MAX_BODY_BYTES - len(base))  # a fourth part: not a compact JWS
    over = under + "A"

    answers = {
        "under": await submit(intake_door, under),
        "over": await submit(intake_door, over),
        "over, streamed": await submit(intake_door, streamed(over.encode())),
        "far over, streamed": await submit(intake_door, streamed(b"A" * (8 * MAX_BODY_BYTES))),
    }

    assert_problem(answers.pop("under"), 400, 401)  # read, and refused on its merits
    for answer in answers.values():
        assert_problem(answer, 413)
    assert_no_crash_logged(logs)


# --- slow bodies ------------------------------------------------------------------------------

BODY_TIMEOUT = 1.0


@pytest.fixture
def slow_server(intake_settings) -> Iterator[ThreadedServer]:
    """Intake on a real uvicorn, with a one-second deadline for request bodies."""
    settings = intake_settings.model_copy(update={"body_timeout_seconds": BODY_TIMEOUT})
    server = ThreadedServer(create_intake(settings)).start()
    yield server
    server.stop()


def request_head(length: int) -> bytes:
    return (
        "POST /v1/documents HTTP/1.1\r\nHost: intake\r\nContent-Type: application/jose\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def dribble(server: ThreadedServer, *, every: float, total_bytes: int, give_up_after: float):
    """Send a request's head, then its body a byte at a time every `every` seconds, asking
    /healthz on another connection meanwhile. What came back, when the connection closed (or
    None), and how long each health check took."""
    answer, closed_after, health = b"", None, []
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as slow:
        slow.sendall(request_head(total_bytes))
        started = time.monotonic()
        sent = 0
        while time.monotonic() - started < give_up_after:
            if sent < total_bytes:
                try:
                    slow.sendall(b"A")
                    sent += 1
                except OSError:
                    pass  # the server closed its side; read what it said
            asked = time.monotonic()
            assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
            health.append(time.monotonic() - asked)
            readable, _, _ = select.select([slow], [], [], every)
            if readable:
                try:
                    chunk = slow.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    closed_after = time.monotonic() - started
                    break
                answer += chunk
    return answer, closed_after, health


def test_a_body_slower_than_the_deadline_is_answered_408_and_its_connection_closed(slow_server):
    answer, closed_after, health = dribble(
        slow_server, every=0.2, total_bytes=4096, give_up_after=BODY_TIMEOUT + 5
    )

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:500]
    assert b"content-type: application/problem+json" in head.lower()
    assert b"x-content-type-options: nosniff" in head.lower()
    assert json.loads(body)["type"].endswith("/request-timeout")
    assert closed_after is not None and closed_after < BODY_TIMEOUT + 2
    assert max(health) < 1.0, health


def test_a_body_that_arrives_within_the_deadline_is_read(slow_server):
    answer, _, _ = dribble(slow_server, every=0.05, total_bytes=5, give_up_after=BODY_TIMEOUT)

    # Five bytes that are not a JWS: refused on their merits, not for being slow.
    assert answer.startswith(b"HTTP/1.1 400"), answer[:500]

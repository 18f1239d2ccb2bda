"""Specification: the parsers of signed documents refuse hostile input only in the ways they
document — `SignatureError` for what cannot be trusted or read, `DocumentRejected` and
`NotInJurisdiction` for a payload that breaks the rules — and intake, behind them, answers anything
an office could send with a problem, never a 5xx.

Hypothesis feeds them arbitrary text and bytes, arbitrary JSON (deep lists and objects, unicode,
huge integers, non-finite floats, nulls), and valid documents with one part replaced. Runs are
derandomized: a failure found here fails the same way on every run until it is fixed (a deep run,
`SIAPNET_FUZZ_EXAMPLES`, draws fresh ones: see `tests/hostile/conftest.py`).
"""

import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, given
from hypothesis import strategies as st

from shared import documents
from shared.documents import (
    ENVELOPE_TYP,
    RECOMMENDATION_TYP,
    DocumentRejected,
    EnvelopePayload,
    NotInJurisdiction,
    ReceiptPayload,
    RecommendationPayload,
    StatusPayload,
)
from shared.problems import PROBLEM_MEDIA_TYPE
from shared.signing import (
    KeyPair,
    SignatureError,
    Verified,
    b64url_encode,
    read_header,
    unverified_payload,
    verify,
)
from tests.conftest import submit
from tests.hostile.conftest import fuzz_settings
from tests.support.offices import OfficeSigner, example

FUZZ = fuzz_settings(
    200, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
KEY = KeyPair.generate()
PANDEGLANG = OfficeSigner("bawaslu-36.01", key=KEY)
PAYLOAD_MODELS = [RecommendationPayload, EnvelopePayload, StatusPayload, ReceiptPayload]
# One valid payload of each document type, to mutate.
VALID = {
    RecommendationPayload: PANDEGLANG.payload(recommendation=example("report")),
    EnvelopePayload: {
        "jti": "5f0c2f9e-3a51-4c55-9d0e-2b7f7e0f4a11",
        "iss": "intake",
        "aud": "recommendation-province-36",
        "iat": 1730793600,
        "document": "eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
        "signer_jwk": KEY.public_jwk,
        "registration": {"number": "3601-2024-000001", "received_at": "2024-11-05T08:00:00Z"},
        "attestation": {"by": "intake", "action": "receive", "note": None},
    },
    StatusPayload: {
        "jti": "6f0c2f9e-3a51-4c55-9d0e-2b7f7e0f4a11",
        "iss": "recommendation-province-36",
        "aud": "intake",
        "iat": 1730793600,
        "recommendation_id": "7d0c2f9e-3a51-4c55-9d0e-2b7f7e0f4a11",
        "sequence": 2,
        "from": "submitted",
        "to": "verified",
        "at": "2024-11-05T08:00:00Z",
        "actor": {"office": "bawaslu-36", "user": "petugas"},
        "note": "Bukti lengkap",
        "details": {"sanction": {"kind": "discipline", "type": "allowance_cut_6m"}},
    },
    ReceiptPayload: {
        "jti": "8f0c2f9e-3a51-4c55-9d0e-2b7f7e0f4a11",
        "iss": "intake",
        "aud": "bawaslu-36.01",
        "iat": 1730793600,
        "sub": "7d0c2f9e-3a51-4c55-9d0e-2b7f7e0f4a11",
        "document_sha256": "e1cbf7816b5efcae642a50ae858b5468999d41d31bca7bb9b1092cb4133e9f9e",
        "registration_number": "3601-2024-000001",
        "received_at": "2024-11-05T08:00:00Z",
    },
}

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.sampled_from(["", "36.01", "bawaslu-36.01", "2024-11-05", "siapnet:intake", "report"])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)
json_objects = st.dictionaries(st.text(), json_values, max_size=8)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place inside a JSON value, the value itself first."""
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += paths(inner, (*prefix, index))
    return found


@st.composite
def mutated(draw, valid: dict[str, Any]) -> dict[str, Any]:
    """`valid` with one place replaced by any JSON value, removed, or given a sibling."""
    document = copy.deepcopy(valid)
    where = draw(st.sampled_from(paths(document)[1:]))
    *parents, last = where
    target = document
    for part in parents:
        target = target[part]
    how = draw(st.sampled_from(["replace", "remove", "add"]))
    if how == "replace":
        target[last] = draw(json_values)
    elif how == "remove":
        del target[last]
    elif isinstance(target, dict):
        target[draw(st.text(max_size=20))] = draw(json_values)
    else:
        target.append(draw(json_values))
    return document


def compact(header: bytes, payload: bytes, signature: bytes = b"sig") -> str:
    return ".".join(b64url_encode(part) for part in (header, payload, signature))


def signed(payload: Any, typ: str = RECOMMENDATION_TYP, **header: Any) -> str:
    """`payload` (JSON, or exact bytes) signed with KEY, the header carrying `header` too."""
    from jose import jws

    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"typ": typ, "kid": KEY.kid, **header}
    return jws.sign(data, KEY.private_jwk(), headers=headers, algorithm="ES256")


def key_for(kid: str) -> dict[str, str] | None:
    return KEY.public_jwk if kid == KEY.kid else None


def verifies_or_refuses(text: str, typ: str = RECOMMENDATION_TYP) -> Verified | None:
    """`verify` answers a Verified or raises SignatureError, whatever `text` is."""
    try:
        read_header(text)
    except SignatureError as exc:
        assert exc.reason
    try:
        verified = verify(text, typ=typ, key_for=key_for)
    except SignatureError as exc:
        assert exc.reason
        return None
    assert isinstance(verified.payload, dict)
    return verified


def validates_or_rejects(payload: Any) -> None:
    """Every document model answers a model or DocumentRejected; check_recommendation may also
    answer NotInJurisdiction, and each refusal names the fields without echoing their values."""
    assume(isinstance(payload, dict))
    for model in PAYLOAD_MODELS:
        try:
            documents.parse(model, payload)
        except DocumentRejected as exc:
            assert exc.errors and all(error["field"] for error in exc.errors)
    try:
        documents.check_recommendation(payload)
    except DocumentRejected as exc:
        assert exc.errors
    except NotInJurisdiction as exc:
        assert str(exc)


# --- the JWS parser ---------------------------------------------------------------------------


@FUZZ
@given(
    text=st.text()
    | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
)
def test_any_text_is_a_signature_error_or_nothing(text):
    assert verifies_or_refuses(text) is None


@FUZZ
@given(header=st.binary() | json_values.map(lambda v: json.dumps(v).encode()), payload=st.binary())
def test_any_three_base64url_parts_are_a_signature_error(header, payload):
    assert verifies_or_refuses(compact(header, payload)) is None


@FUZZ
@given(payload=st.binary() | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_payload_signed_with_the_registered_key_verifies_only_if_a_json_object(payload):
    verified = verifies_or_refuses(signed(payload))
    if verified is not None:
        assert verified.payload == json.loads(payload)


@FUZZ
@given(extra=json_objects)
def test_any_header_members_verify_or_are_a_signature_error(extra):
    assume(not {"alg", "typ", "kid"} & extra.keys())
    verifies_or_refuses(signed(PANDEGLANG.payload(), **extra))


@FUZZ
@given(header=json_objects)
def test_any_header_over_a_good_signature_is_a_signature_error(header):
    """The header replaced after signing: whatever it says, the signature no longer matches."""
    _, payload, signature = PANDEGLANG.sign().split(".")
    text = ".".join([b64url_encode(json.dumps(header).encode()), payload, signature])
    assert verifies_or_refuses(text) is None


# --- the payload parsers ----------------------------------------------------------------------


@FUZZ
@given(payload=json_values)
def test_any_json_is_a_document_or_a_rejection(payload):
    validates_or_rejects(payload)


@FUZZ
@given(payload=st.sampled_from(list(VALID.values())).flatmap(mutated))
def test_any_valid_document_with_one_part_changed_is_a_document_or_a_rejection(payload):
    validates_or_rejects(payload)


@FUZZ
@given(payload=mutated(VALID[RecommendationPayload]))
def test_a_changed_recommendation_signed_and_verified_is_a_document_or_a_rejection(payload):
    verified = verifies_or_refuses(signed(payload))
    assert verified is not None
    validates_or_rejects(verified.payload)


def arabic_indic(digits: str, *, keep: int) -> str:
    """`digits` in Arabic-Indic digits (which `\\d` matches), but for the one at `keep`."""
    return "".join(c if i == keep else chr(0x660 + int(c)) for i, c in enumerate(digits))


NIP = VALID[RecommendationPayload]["recommendation"]["subject"]["nip"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject.nip", arabic_indic(NIP, keep=14)),  # the 15th, the sex digit, is read as text
        ("region_code", "36.01\n"),
        ("subject.agency_region_code", "36.01\n"),
    ],
    ids=["nip-in-arabic-indic-digits", "region-code-with-newline", "agency-region-with-newline"],
)
def test_a_code_that_only_looks_valid_is_rejected(field, value):
    """A NIP or region code must be the ASCII code itself: one that merely matches a loose
    pattern would be stored as is and never match the same code written plainly."""
    payload = copy.deepcopy(VALID[RecommendationPayload])
    payload["iss"] = "bawaslu-36"  # whose jurisdiction takes any region of Banten
    *parents, last = ["recommendation", *field.split(".")]
    target = payload
    for part in parents:
        target = target[part]
    target[last] = value

    with pytest.raises(DocumentRejected) as rejected:
        documents.check_recommendation(payload)

    assert [error["field"] for error in rejected.value.errors] == [f"recommendation.{field}"]


# --- intake, end to end -----------------------------------------------------------------------


def mangled(text: str):
    """A valid compact JWS with bytes flipped, cut out or put in."""
    raw = text.encode()
    return st.one_of(
        st.integers(0, len(raw) - 1).flatmap(
            lambda at: st.integers(0, 255).map(lambda b: raw[:at] + bytes([b]) + raw[at + 1 :])
        ),
        st.integers(0, len(raw)).flatmap(
            lambda at: st.binary(min_size=1, max_size=8).map(lambda b: raw[:at] + b + raw[at:])
        ),
        st.tuples(st.integers(0, len(raw)), st.integers(1, 64)).map(
            lambda cut: raw[: cut[0]] + raw[cut[0] + cut[1] :]
        ),
    )


timestamps = st.integers() | st.sampled_from([-1, 0, 2**31, 2**63, 10**12, 253402300800, -(10**20)])
claims_changed = st.sampled_from(["jti", "iss", "aud", "iat", "exp", "supersedes"]).flatmap(
    lambda claim: (timestamps | json_values).map(lambda value: {claim: value})
)
bodies = st.one_of(
    st.binary(max_size=2048),
    claims_changed.map(lambda claims: PANDEGLANG.sign(**claims).encode()),
    st.text(max_size=512).map(str.encode),
    mangled(PANDEGLANG.sign()),
    mutated(VALID[RecommendationPayload]).map(lambda p: signed(p).encode()),
    json_values.map(lambda v: signed(v).encode()),
    st.binary(max_size=512).map(lambda b: signed(b).encode()),
    json_objects.map(lambda extra: signed(PANDEGLANG.payload(), ENVELOPE_TYP, **extra).encode()),
)


def described(body: bytes) -> str:
    """A body for a failure message: its claims, where it has readable ones."""
    try:
        payload = unverified_payload(body.decode())
        claims = {k: v for k, v in payload.items() if k != "recommendation"}
        return f"a JWS whose claims besides the recommendation are {claims!r:.400}"
    except (ValueError, IndexError, AttributeError):
        return f"{body!r:.400}"


@pytest.fixture
async def intake_door(intake, admin_headers) -> AsyncIterator[httpx.AsyncClient]:
    """Intake as a client across the network sees it, Pandeglang's KEY registered: a crash is a
    500 answer, not an exception."""
    registered = await intake.post(
        "/v1/offices/bawaslu-36.01/keys", json={"jwk": KEY.public_jwk}, headers=admin_headers
    )
    assert registered.status_code in (200, 201), registered.text
    transport = httpx.ASGITransport(app=intake.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        yield client


@pytest.mark.anyio
@FUZZ
@given(body=bodies)
async def test_intake_answers_any_submission_with_a_problem_never_a_5xx(intake_door, body):
    answer = await submit(intake_door, body)

    sent = described(body)
    assert answer.status_code < 500, f"{answer.status_code} for {sent}: {answer.text}"
    if answer.status_code >= 400:
        assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE, f"{sent}: {answer.text}"
        problem = answer.json()
        assert problem["status"] == answer.status_code
        assert problem["type"] and problem["title"] and problem["detail"]

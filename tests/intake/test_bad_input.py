"""Specification: every bad submission is refused with the right problem and changes nothing."""

import copy
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import serialization
from jose import jws

from shared.documents import RECOMMENDATION_TYP
from shared.signing import KeyPair, b64url_decode, b64url_encode
from tests.conftest import registered_office, submit
from tests.support.offices import OfficeSigner, example
from tests.support.snapshot import snapshot

pytestmark = pytest.mark.anyio


def compact_of(header: dict, payload: bytes, signature: bytes = b"") -> str:
    return ".".join(
        [
            b64url_encode(json.dumps(header).encode()),
            b64url_encode(payload),
            b64url_encode(signature),
        ]
    )


def signed_with_header(signer: OfficeSigner, **extra) -> str:
    """Correctly signed by the registered key, with extra members in the protected header."""
    return jws.sign(
        json.dumps(signer.payload()).encode(),
        signer.key.private_jwk(),
        headers={"typ": RECOMMENDATION_TYP, "kid": signer.key.kid, **extra},
        algorithm="ES256",
    )


def tamper_payload(compact: str) -> str:
    header, payload, signature = compact.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["recommendation"]["subject"]["name"] = "Someone Else"
    return ".".join([header, b64url_encode(json.dumps(claims).encode()), signature])


def tamper_header(compact: str) -> str:
    header, payload, signature = compact.split(".")
    fields = json.loads(b64url_decode(header))
    fields["note"] = "added after signing"
    return ".".join([b64url_encode(json.dumps(fields).encode()), payload, signature])


def alg_none(signer: OfficeSigner) -> str:
    header = {"alg": "none", "typ": RECOMMENDATION_TYP, "kid": signer.key.kid}
    return compact_of(header, json.dumps(signer.payload()).encode())


def hs256_with_public_key(signer: OfficeSigner) -> str:
    """The classic algorithm confusion: HMAC keyed with the office's public key."""
    header = {"alg": "HS256", "typ": RECOMMENDATION_TYP, "kid": signer.key.kid}
    secret = signer.key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = b64url_encode(json.dumps(header).encode())
    body = b64url_encode(json.dumps(signer.payload()).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url_encode(mac)}"


def with_recommendation(signer: OfficeSigner, change) -> str:
    recommendation = copy.deepcopy(example())
    change(recommendation)
    return signer.sign(signer.payload(recommendation))


def signed_bytes(signer: OfficeSigner, payload: bytes) -> str:
    return signer.key.sign(payload, RECOMMENDATION_TYP)


def without(path: str):
    def change(recommendation: dict) -> None:
        *parents, last = path.split(".")
        target = recommendation
        for part in parents:
            target = target[part]
        del target[last]

    return change


def setting(path: str, value):
    def change(recommendation: dict) -> None:
        *parents, last = path.split(".")
        target = recommendation
        for part in parents:
            target = target[part]
        target[last] = value

    return change


# (name, how to build the body from the registered Pandeglang signer, status, problem slug)
CASES = [
    ("tampered payload", lambda s: tamper_payload(s.sign()), 401, "invalid-signature"),
    ("tampered header", lambda s: tamper_header(s.sign()), 401, "invalid-signature"),
    ("never registered key", lambda s: OfficeSigner(s.office_id).sign(), 401, "invalid-signature"),
    ("alg none", alg_none, 401, "invalid-signature"),
    ("HS256 keyed with the public key", hs256_with_public_key, 401, "invalid-signature"),
    (
        "jku in the header",
        lambda s: signed_with_header(s, jku="https://evil.example/jwks"),
        401,
        "invalid-signature",
    ),
    (
        "jwk in the header",
        lambda s: signed_with_header(s, jwk=KeyPair.generate().public_jwk),
        401,
        "invalid-signature",
    ),
    ("wrong typ", lambda s: s.key.sign(s.payload(), "JWT"), 401, "invalid-signature"),
    ("wrong aud", lambda s: s.sign(aud="recommendation-national"), 401, "invalid-signature"),
    (
        "iat in the future",
        lambda s: s.sign(iat=s.payload()["iat"] + 3600),
        401,
        "invalid-signature",
    ),
    ("expired", lambda s: s.sign(exp=s.payload()["iat"] - 3600), 401, "invalid-signature"),
    ("iss of another office", lambda s: s.sign(iss="bawaslu-36.02"), 401, "invalid-signature"),
    ("not a compact JWS", lambda s: "this is not a JWS", 400, "malformed-request"),
    ("four parts", lambda s: s.sign() + ".AAAA", 400, "malformed-request"),
    (
        "header not base64url",
        lambda s: "%%%." + s.sign().split(".", 1)[1],
        400,
        "malformed-request",
    ),
    ("payload not JSON", lambda s: signed_bytes(s, b"not json at all"), 400, "malformed-request"),
    (
        "payload JSON but not an object",
        lambda s: signed_bytes(s, b"[1, 2, 3]"),
        400,
        "malformed-request",
    ),
    (
        "missing subject",
        lambda s: with_recommendation(s, without("subject")),
        422,
        "invalid-fields",
    ),
    (
        "missing jti",
        lambda s: s.sign({k: v for k, v in s.payload().items() if k != "jti"}),
        422,
        "invalid-fields",
    ),
    (
        "NIP with 17 digits",
        lambda s: with_recommendation(s, setting("subject.nip", "19850312201001100")),
        422,
        "invalid-fields",
    ),
    (
        "NIP with an impossible birth date",
        lambda s: with_recommendation(s, setting("subject.nip", "198502302010011002")),
        422,
        "invalid-fields",
    ),
    (
        "NIP with sex digit 3",
        lambda s: with_recommendation(s, setting("subject.nip", "198503122010013002")),
        422,
        "invalid-fields",
    ),
    (
        "NIP appointed in month 13",
        lambda s: with_recommendation(s, setting("subject.nip", "198503122010131002")),
        422,
        "invalid-fields",
    ),
    (
        "region that does not exist",
        lambda s: with_recommendation(s, setting("region_code", "36.99")),
        422,
        "invalid-fields",
    ),
    (
        "region outside the office's jurisdiction",
        lambda s: with_recommendation(s, setting("region_code", "32.01")),
        403,
        "out-of-jurisdiction",
    ),
    (
        "unknown category",
        lambda s: with_recommendation(s, setting("category", "bad_vibes")),
        422,
        "invalid-fields",
    ),
    (
        "discovered before it occurred",
        lambda s: with_recommendation(s, setting("discovered_on", "2024-10-01")),
        422,
        "invalid-fields",
    ),
    (
        "occurred in the future",
        lambda s: with_recommendation(s, setting("occurred_on", "2099-01-01")),
        422,
        "invalid-fields",
    ),
    (
        "evidence hash not 64 hex digits",
        lambda s: with_recommendation(
            s,
            setting("evidence", [{"description": "x", "sha256": "abc", "media_type": "image/png"}]),
        ),
        422,
        "invalid-fields",
    ),
    (
        "summary too long",
        lambda s: with_recommendation(s, setting("summary", "x" * 5001)),
        422,
        "invalid-fields",
    ),
    (
        "unknown field",
        lambda s: with_recommendation(s, setting("colour", "red")),
        422,
        "invalid-fields",
    ),
    (
        "report without a reporter",
        lambda s: with_recommendation(s, setting("source", "report")),
        422,
        "invalid-fields",
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "slug"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_a_bad_submission_is_refused_and_nothing_is_stored(
    intake, pandeglang, body, status, slug
):
    compact = body(pandeglang)
    before = snapshot(intake.app.state.database)

    response = await submit(intake, compact)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/" + slug)
    assert problem["status"] == status
    assert problem["title"] and problem["detail"]
    assert snapshot(intake.app.state.database) == before


async def test_invalid_fields_are_listed_without_echoing_their_values(intake, pandeglang):
    bad_nip = "19850312201001100"
    compact = with_recommendation(pandeglang, setting("subject.nip", bad_nip))

    problem = (await submit(intake, compact)).json()

    assert [error["field"] for error in problem["errors"]] == ["recommendation.subject.nip"]
    assert bad_nip not in json.dumps(problem)


async def test_a_retired_key_verifies_only_what_it_signed_before_retirement(
    intake, pandeglang, admin_headers
):
    signed_before = pandeglang.sign(iat=pandeglang.payload()["iat"] - 60)
    retired = await intake.post(
        f"/v1/offices/bawaslu-36.01/keys/{pandeglang.key.kid}/retire", headers=admin_headers
    )
    assert retired.status_code == 200
    assert retired.json()["retired_at"] is not None
    before = snapshot(intake.app.state.database)

    after = await submit(intake, pandeglang.sign(iat=pandeglang.payload()["iat"] + 1))

    assert after.status_code == 401
    assert snapshot(intake.app.state.database) == before
    assert (await submit(intake, signed_before)).status_code == 201


async def test_a_two_mebibyte_body_is_413_and_nothing_is_stored(intake, pandeglang):
    before = snapshot(intake.app.state.database)

    response = await submit(intake, b"A" * (2 * 1024 * 1024))

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert snapshot(intake.app.state.database) == before


async def test_a_wrong_content_type_is_415(intake, pandeglang):
    response = await intake.post(
        "/v1/documents", content=pandeglang.sign(), headers={"content-type": "application/json"}
    )

    assert response.status_code == 415
    assert response.json()["type"].endswith("/unsupported-media-type")


async def test_a_document_of_an_office_with_the_wrong_key_is_refused(intake, admin_headers):
    lebak = await registered_office(intake, admin_headers, "bawaslu-36.02")
    pretender = OfficeSigner("bawaslu-36.01", key=lebak.key)  # Lebak's key, Pandeglang's name

    response = await submit(intake, pretender.sign())

    assert response.status_code == 401

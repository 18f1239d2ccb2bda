"""Specification: logging in, tokens that rotate, and tokens that are refused."""

import hashlib
import hmac
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization

from shared.identity import mint_access_token
from shared.signing import KeyPair, b64url_decode, b64url_encode
from tests.gateway.conftest import PASSWORD

pytestmark = pytest.mark.anyio


async def test_an_officer_logs_in_and_sees_who_they_are(front):
    front.create_account("petugas-pandeglang", "bawaslu-36.01", "officer")

    answer = await front.login("petugas-pandeglang")

    assert answer.status_code == 200
    tokens = answer.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900
    me = await front.gateway.get(
        "/v1/me", headers={"authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.json() == {
        "username": "petugas-pandeglang",
        "office": "bawaslu-36.01",
        "office_name": "Bawaslu Kabupaten Pandeglang",
        "tier": "regency",
        "jurisdiction": "36.01",
        "roles": ["officer"],
    }


async def test_a_wrong_password_is_401_and_the_same_as_an_unknown_user(front):
    front.create_account("petugas-lebak", "bawaslu-36.02")

    wrong = await front.login("petugas-lebak", "not-the-password")
    unknown = await front.login("nobody-here", "not-the-password")

    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert wrong.json()["error"] == "invalid_grant"


async def test_repeated_failures_lock_the_account_for_a_while(front):
    front.create_account("petugas-serang", "bawaslu-36.04")
    for _ in range(5):
        assert (await front.login("petugas-serang", "wrong-password!")).status_code == 401

    locked = await front.login("petugas-serang")

    assert locked.status_code == 401
    assert "locked" in locked.json()["detail"]
    assert int(locked.headers["retry-after"]) > 0


async def test_a_refresh_token_rotates_and_a_reused_one_revokes_its_family(front):
    front.create_account("petugas-cilegon", "bawaslu-36.72")
    first = (await front.login("petugas-cilegon")).json()

    def refresh(token: str):
        return front.gateway.post(
            "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": token}
        )

    second = await refresh(first["refresh_token"])
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]

    reused = await refresh(first["refresh_token"])
    after_theft = await refresh(second.json()["refresh_token"])

    assert reused.status_code == 401
    assert after_theft.status_code == 401  # the whole family is revoked


async def test_logout_revokes_the_refresh_token(front):
    front.create_account("petugas-tangsel", "bawaslu-36.74")
    tokens = (await front.login("petugas-tangsel")).json()

    revoked = await front.gateway.post("/v1/auth/revoke", data={"token": tokens["refresh_token"]})
    refreshed = await front.gateway.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )

    assert revoked.status_code == 200
    assert refreshed.status_code == 401


async def test_a_client_system_uses_client_credentials_and_gets_no_refresh_token(front):
    front.create_account("sipp-banten", "bawaslu-36", "viewer", kind="client")

    answer = await front.gateway.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "sipp-banten",
            "client_secret": PASSWORD,
        },
    )

    assert answer.status_code == 200
    assert answer.json()["refresh_token"] is None
    as_user = await front.login("sipp-banten")
    assert as_user.status_code == 401


async def test_an_unsupported_grant_and_a_json_body_are_refused(front):
    grant = await front.gateway.post("/v1/auth/token", data={"grant_type": "implicit"})
    json_body = await front.gateway.post("/v1/auth/token", json={"grant_type": "password"})

    assert grant.status_code == 400
    assert grant.json()["error"] == "unsupported_grant_type"
    assert json_body.status_code == 415


def forged(header: dict, claims: dict, sign) -> str:
    head = b64url_encode(json.dumps(header).encode())
    body = b64url_encode(json.dumps(claims).encode())
    return f"{head}.{body}.{b64url_encode(sign(f'{head}.{body}'.encode()))}"


async def test_tampered_expired_and_algorithm_confused_tokens_are_refused(front, identity_key):
    headers = await front.headers_for("bawaslu-36")
    token = headers["authorization"].removeprefix("Bearer ")
    head, body, signature = token.split(".")
    claims = json.loads(b64url_decode(body))
    promoted = b64url_encode(json.dumps({**claims, "office": "bawaslu-ri"}).encode())
    tampered = f"{head}.{promoted}.{signature}"
    expired = mint_access_token(
        identity_key,
        subject="x",
        office="bawaslu-36",
        roles=["officer"],
        token_id="t",
        lifetime_seconds=-3600,
    )
    public_pem = identity_key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs256 = forged(
        {"alg": "HS256", "typ": "at+jwt", "kid": identity_key.kid},
        {**claims, "exp": int(time.time()) + 600},
        lambda data: hmac.new(public_pem, data, hashlib.sha256).digest(),
    )
    none = forged({"alg": "none", "typ": "at+jwt", "kid": identity_key.kid}, claims, lambda _: b"")
    stranger = mint_access_token(
        KeyPair.generate(), subject="x", office="bawaslu-ri", roles=["admin"], token_id="t"
    )

    for bad in (tampered, expired, hs256, none, stranger, "not-a-token"):
        answer = await front.gateway.get("/v1/me", headers={"authorization": f"Bearer {bad}"})
        assert answer.status_code == 401, bad
        assert answer.headers["content-type"] == "application/problem+json"

"""Specification: access tokens are checked by every service, and a token checked once is
remembered without weakening any check."""

import json
import time

import pytest

from shared import identity
from shared.identity import TrustedIssuer, mint_access_token
from shared.problems import Unauthenticated
from shared.signing import KeyPair, jwks


@pytest.fixture
def issuer_key(tmp_path) -> tuple[KeyPair, TrustedIssuer]:
    key = KeyPair.generate()
    path = tmp_path / "identity-jwks.json"
    path.write_text(json.dumps(jwks(key.public_jwk)))
    return key, TrustedIssuer(path, issuer="siapnet-gateway", audience="siapnet")


def token(key: KeyPair, lifetime_seconds: int = 900) -> str:
    return mint_access_token(
        key,
        subject="bawaslu-36.01",
        office="bawaslu-36.01",
        roles=["officer"],
        lifetime_seconds=lifetime_seconds,
        token_id="t-1",
    )


def test_a_remembered_token_still_expires(issuer_key, monkeypatch):
    key, issuer = issuer_key
    bearer = token(key, lifetime_seconds=60)
    assert issuer.caller(bearer).subject == "bawaslu-36.01"

    later = time.time() + 60 + identity.CLOCK_LEEWAY_SECONDS + 1
    monkeypatch.setattr(identity.time, "time", lambda: later)

    with pytest.raises(Unauthenticated, match="expired"):
        issuer.caller(bearer)


def test_a_remembered_token_stops_counting_once_its_key_is_withdrawn(issuer_key, tmp_path):
    key, issuer = issuer_key
    bearer = token(key)
    issuer.caller(bearer)

    replacement = KeyPair.generate()
    issuer.jwks_file.write_text(json.dumps(jwks(replacement.public_jwk)))
    issuer.caller(token(replacement))  # an unknown kid makes the issuer read its keys again

    with pytest.raises(Unauthenticated, match="no registered key"):
        issuer.caller(bearer)


def test_a_tampered_token_is_refused_even_after_the_original_was_accepted(issuer_key):
    key, issuer = issuer_key
    bearer = token(key)
    issuer.caller(bearer)
    header, payload, signature = bearer.split(".")
    other = mint_access_token(
        key, subject="bawaslu-36", office="bawaslu-36", roles=["supervisor"], token_id="t-2"
    )

    with pytest.raises(Unauthenticated):
        issuer.caller(f"{header}.{other.split('.')[1]}.{signature}")
    with pytest.raises(Unauthenticated):
        issuer.caller(f"{header}.{payload}.{signature[:-4]}AAAA")


def test_the_memory_of_checked_tokens_is_bounded(issuer_key, monkeypatch):
    key, issuer = issuer_key
    monkeypatch.setattr(identity, "VERIFIED_TOKENS_KEPT", 3)
    for number in range(10):
        issuer.caller(
            mint_access_token(
                key, subject="s", office="bawaslu-36", roles=["officer"], token_id=str(number)
            )
        )
    assert len(issuer._verified) == 3

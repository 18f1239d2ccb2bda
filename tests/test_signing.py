"""Specification: ES256 keys, thumbprints and strict verification."""

import json
import os
import stat

import pytest

from shared.signing import (
    MAX_JSON_DEPTH,
    JsonTooDeep,
    KeyPair,
    SignatureError,
    b64url_encode,
    jwks,
    load_json,
    parse_public_jwk,
    thumbprint,
    verify,
)
from tests.support.collector import collecting_at_every_allocation


def test_the_kid_is_the_rfc7638_thumbprint_of_the_public_key():
    key = KeyPair.generate()
    jwk = key.public_jwk
    canonical = json.dumps(
        {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]}, separators=(",", ":")
    )
    import hashlib

    assert key.kid == b64url_encode(hashlib.sha256(canonical.encode()).digest())
    assert thumbprint({**jwk, "kid": "ignored", "use": "sig"}) == key.kid


def test_a_saved_key_is_readable_by_its_owner_only_and_loads_back(tmp_path):
    key = KeyPair.generate()
    path = tmp_path / "keys" / "office.pem"

    key.save(path)

    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert KeyPair.load(path).kid == key.kid
    assert KeyPair.load_or_create(path).kid == key.kid


def test_the_jwks_publishes_each_key_with_kid_use_and_algorithm():
    key = KeyPair.generate()

    (published,) = jwks(key.public_jwk)["keys"]

    assert published == {**key.public_jwk, "kid": key.kid, "use": "sig", "alg": "ES256"}


def test_a_document_verifies_with_the_key_it_names_and_its_type():
    key = KeyPair.generate()
    compact = key.sign({"jti": "1"}, "siapnet-receipt+jws")

    verified = verify(compact, typ="siapnet-receipt+jws", key_for={key.kid: key.public_jwk}.get)

    assert verified.payload == {"jti": "1"}
    assert verified.kid == key.kid


def test_the_payload_bytes_are_signed_as_given():
    key = KeyPair.generate()
    exact = b'{"b": 1,  "a": 2}'

    compact = key.sign(exact, "t")

    from shared.signing import b64url_decode

    assert b64url_decode(compact.split(".")[1]) == exact


@pytest.mark.parametrize("header", ["jku", "x5u", "jwk", "x5c", "crit"])
def test_headers_that_name_keys_are_refused(header):
    from jose import jws

    key = KeyPair.generate()
    compact = jws.sign(
        b"{}",
        key.private_jwk(),
        headers={"typ": "t", "kid": key.kid, header: "x"},
        algorithm="ES256",
    )

    with pytest.raises(SignatureError, match="refused"):
        verify(compact, typ="t", key_for={key.kid: key.public_jwk}.get)


def test_another_keys_signature_is_refused():
    key, other = KeyPair.generate(), KeyPair.generate()
    compact = other.sign({}, "t").replace(other.kid, key.kid)

    with pytest.raises(SignatureError):
        verify(compact, typ="t", key_for={key.kid: key.public_jwk}.get)


def test_a_public_jwk_is_returned_in_canonical_form():
    jwk = KeyPair.generate().public_jwk

    assert parse_public_jwk({**jwk, "kid": "x", "alg": "ES256"}) == jwk
    with pytest.raises(ValueError, match="alg"):
        parse_public_jwk({**jwk, "alg": "HS256"})


def test_a_key_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "keys" / "signing.pem"
    first = KeyPair.generate()
    first.save(path)

    def crash(*_):
        raise OSError("killed half-way")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        KeyPair.generate().save(path)

    assert KeyPair.load(path).kid == first.kid  # the old key is intact
    assert [p.name for p in path.parent.iterdir()] == ["signing.pem"]  # no partial file left


def test_a_key_object_built_once_signs_and_verifies_like_a_fresh_one():
    """Keys are turned into python-jose's form once; the cache is keyed by the key itself, so
    one key's entry can never verify another key's signature."""
    first, second = KeyPair.generate(), KeyPair.generate()
    for _ in range(3):
        by_first = first.sign({"n": 1}, "t")
        assert verify(by_first, typ="t", key_for={first.kid: first.public_jwk}.get).payload == {
            "n": 1
        }
        with pytest.raises(SignatureError):
            verify(by_first, typ="t", key_for={first.kid: second.public_jwk}.get)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_json_as_deep_as_the_limit_is_read_and_one_level_deeper_is_refused():
    assert load_json(nested(MAX_JSON_DEPTH)) == json.loads(nested(MAX_JSON_DEPTH))
    assert load_json('{"a":' * MAX_JSON_DEPTH + "1" + "}" * MAX_JSON_DEPTH)
    for deeper in (nested(MAX_JSON_DEPTH + 1), '{"a":' * 33 + "1" + "}" * 33, "[" * 100_000):
        with pytest.raises(JsonTooDeep):
            load_json(deeper)


def test_brackets_inside_strings_open_nothing():
    text = json.dumps({"note": 'quoted \\" and [' * 50 + "{" * 50, "list": [[1]]})

    assert load_json(text)["list"] == [[1]]
    assert load_json(text.encode())["list"] == [[1]]


def test_deep_json_is_refused_before_the_parser_recurses():
    """json.loads recursed as deep as the text went: a garbage collection near the recursion
    limit then had no room to run its callbacks (CI caught the GC-pause metric failing so)."""
    with collecting_at_every_allocation() as failed_callbacks:
        for _ in range(20):
            with pytest.raises(JsonTooDeep):
                load_json("[" * 100_000)

    assert failed_callbacks == []

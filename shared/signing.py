"""ES256 JWS: key pairs, public JWKs, RFC 7638 thumbprints and strict verification.

Verification trusts nothing in the header: it allows exactly ES256 (the algorithm bound to every
key we hold), refuses headers that name keys (`jku`, `x5u`, `jwk`, `x5c`, `x5t`), refuses `crit`
extensions it does not understand, checks `typ`, and resolves the key by `kid` only through the
caller's own key store.
"""

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwk as jose_jwk
from jose import jws
from jose.backends.base import Key
from jose.exceptions import JOSEError

ALGORITHM = "ES256"
CURVE = "P-256"
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256", "crit", "b64"})
MAX_COMPACT_LENGTH = 1024 * 1024
# Our documents nest a few levels; far deeper JSON is an attack on the decoder's recursion.
MAX_JSON_DEPTH = 32
_B64URL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class SignatureError(Exception):
    """A document or token that must not be trusted. `reason` is safe to show the sender."""

    def __init__(self, reason: str, *, malformed: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.malformed = malformed


class JsonTooDeep(ValueError):
    """JSON nested deeper than MAX_JSON_DEPTH arrays and objects."""


# A JSON string, escapes and all: what may hold brackets that open nothing.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_DEPTH_STEP = [0] * 256
for _opener in b"[{":
    _DEPTH_STEP[_opener] = 1
for _closer in b"]}":
    _DEPTH_STEP[_closer] = -1


def nests_deeper_than(raw: str | bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests arrays and objects deeper than `limit`, told without parsing it.

    `json.loads` recurses as deep as the text goes, up to Python's recursion limit; a garbage
    collection down there runs its callbacks and finalizers with no room left to call anything
    (CI caught our GC-pause metric failing that way). Text with few brackets is answered at
    once; only text with many is walked, outside its strings."""
    text = raw.encode() if isinstance(raw, str) else raw
    if text.count(b"[") + text.count(b"{") <= limit:
        return False
    brackets = _JSON_STRING.sub(b"", text).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) > limit


def load_json(raw: str | bytes) -> Any:
    """`json.loads`, refusing with JsonTooDeep (a ValueError) what nests deeper than
    MAX_JSON_DEPTH before the parser sees it."""
    if nests_deeper_than(raw):
        raise JsonTooDeep(f"nests deeper than {MAX_JSON_DEPTH} levels")
    return json.loads(raw)


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str | bytes) -> bytes:
    raw = text.encode("ascii") if isinstance(text, str) else text
    if not set(raw) <= _B64URL:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))


def _coordinate(value: int) -> str:
    return b64url_encode(value.to_bytes(32, "big"))


def public_jwk_of(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    return {"kty": "EC", "crv": CURVE, "x": _coordinate(numbers.x), "y": _coordinate(numbers.y)}


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint: SHA-256 of the required members in lexicographic order, no spaces."""
    required = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True).encode()
    return b64url_encode(hashlib.sha256(canonical).digest())


def parse_public_jwk(jwk: Any) -> dict[str, str]:
    """Check that `jwk` is a P-256 public key on the curve and return its canonical public form.

    Raises ValueError with a reason the sender can read."""
    if not isinstance(jwk, Mapping):
        raise ValueError("a JWK must be a JSON object")
    if "d" in jwk:
        raise ValueError("this is a private key; register only the public JWK")
    if jwk.get("kty") != "EC" or jwk.get("crv") != CURVE:
        raise ValueError("only EC keys on P-256 (ES256) are accepted")
    if "alg" in jwk and jwk["alg"] != ALGORITHM:
        raise ValueError("the key's alg must be ES256")
    try:
        x = int.from_bytes(b64url_decode(jwk["x"]), "big")
        y = int.from_bytes(b64url_decode(jwk["y"]), "big")
        public_key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise ValueError("x and y must be base64url coordinates of a point on P-256") from exc
    return public_jwk_of(public_key)


@dataclass(frozen=True)
class KeyPair:
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> "KeyPair":
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_jwk(self) -> dict[str, str]:
        return dict(self._public_jwk)

    @cached_property
    def _public_jwk(self) -> dict[str, str]:
        return public_jwk_of(self.private_key.public_key())

    @cached_property
    def kid(self) -> str:
        return thumbprint(self._public_jwk)

    @cached_property
    def _signer(self) -> Key:
        """The key in python-jose's form, built once: building it from numbers on every
        signature cost more than the signature."""
        return jose_jwk.construct(self.private_jwk(), ALGORITHM)

    def private_jwk(self) -> dict[str, str]:
        secret = self.private_key.private_numbers().private_value
        return {**self.public_jwk, "d": _coordinate(secret)}

    def sign(self, payload: Mapping[str, Any] | bytes, typ: str) -> str:
        """Sign `payload` (a JSON object, or its exact bytes) as a compact JWS of type `typ`."""
        if not isinstance(payload, bytes):
            payload = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"typ": typ, "kid": self.kid}
        return jws.sign(payload, self._signer, headers=headers, algorithm=ALGORITHM)

    def save(self, path: Path) -> None:
        """Write the private key as PEM, readable by its owner only (mode 0600)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_secret(path, pem)

    @classmethod
    def load(cls, path: Path) -> "KeyPair":
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError(f"{path} is not a P-256 private key")
        return cls(key)

    @classmethod
    def load_or_create(cls, path: Path) -> "KeyPair":
        if path.exists():
            return cls.load(path)
        pair = cls.generate()
        pair.save(path)
        return pair


def write_secret(path: Path, content: bytes) -> None:
    """Write a secret readable by its owner only (0600), all or nothing: a process killed
    half-way leaves the old file or none, never an empty key that stops every later start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def jwks(*public_jwks: Mapping[str, str]) -> dict[str, list[dict[str, str]]]:
    """A JWK Set publishing each key with its kid, use and algorithm."""
    return {
        "keys": [
            {**jwk, "kid": thumbprint(jwk), "use": "sig", "alg": ALGORITHM} for jwk in public_jwks
        ]
    }


@dataclass(frozen=True)
class Verified:
    header: dict[str, Any]
    payload: dict[str, Any]
    kid: str


def read_header(compact: str) -> dict[str, Any]:
    """The protected header of a compact JWS, checked for shape only (not trusted)."""
    if len(compact) > MAX_COMPACT_LENGTH:
        raise SignatureError("the document is too large", malformed=True)
    parts = compact.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise SignatureError("not a compact JWS: expected three base64url parts", malformed=True)
    try:
        header = load_json(b64url_decode(parts[0]))
    except JsonTooDeep as exc:
        raise SignatureError(f"the JWS header {exc}", malformed=True) from None
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise SignatureError("the JWS header is not base64url JSON", malformed=True) from exc
    if not isinstance(header, dict):
        raise SignatureError("the JWS header is not a JSON object", malformed=True)
    return header


def verify(
    compact: str,
    *,
    typ: str,
    key_for: Callable[[str], Mapping[str, str] | None],
) -> Verified:
    """Verify `compact` as a JWS of type `typ` signed with ES256 by the key `key_for(kid)`.

    `key_for` returns the public JWK registered under a kid, or None when it knows none.
    Raises SignatureError; returns the header and the JSON-object payload."""
    header = read_header(compact)
    algorithm = header.get("alg")
    if algorithm != ALGORITHM:
        raise SignatureError(f"algorithm {algorithm!r} is not allowed; only ES256 is accepted")
    named = sorted(FORBIDDEN_HEADERS & header.keys())
    if named:
        raise SignatureError(
            f"header parameters {named} are refused; keys are never taken from a document"
        )
    if header.get("typ") != typ:
        raise SignatureError(f"typ must be {typ!r}, not {header.get('typ')!r}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise SignatureError("the header names no kid")
    jwk = key_for(kid)
    if jwk is None:
        raise SignatureError("no registered key has this kid")
    try:
        payload_bytes = jws.verify(compact, _verifier(jwk), algorithms=[ALGORITHM])
    except JOSEError as exc:
        raise SignatureError("the signature does not match the document") from exc
    try:
        payload = load_json(payload_bytes)
    except JsonTooDeep as exc:
        raise SignatureError(f"the payload {exc}", malformed=True) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise SignatureError("the payload is not JSON", malformed=True) from exc
    if not isinstance(payload, dict):
        raise SignatureError("the payload is not a JSON object", malformed=True)
    return Verified(header=header, payload=payload, kid=kid)


def _verifier(jwk: Mapping[str, str]) -> Key:
    try:
        return _verifier_for(jwk["kty"], jwk["crv"], jwk["x"], jwk["y"])
    except (KeyError, TypeError):
        raise SignatureError("the registered key is not an EC public key") from None


@lru_cache(maxsize=4096)
def _verifier_for(kty: str, crv: str, x: str, y: str) -> Key:
    """A public key in python-jose's form, built once per key: checking that the point lies on
    the curve costs more than the verification itself. Keyed by the key's own coordinates, so
    a cached entry can never stand for another key."""
    try:
        return jose_jwk.construct({"kty": kty, "crv": crv, "x": x, "y": y}, ALGORITHM)
    except JOSEError as exc:
        raise SignatureError("the registered key is not a usable ES256 key") from exc


def unverified_payload(compact: str) -> Any:
    """The payload of a compact JWS without checking anything: only for display and routing.
    Raises ValueError (JsonTooDeep among them) or UnicodeDecodeError when it is not JSON."""
    return load_json(b64url_decode(compact.split(".")[1]))

"""The public keys of peer services, fetched from their `GET /.well-known/jwks.json` and cached.

A receiver learns whose keys to use from the document's unverified `iss` (`sender_of`), then
`PeerKeys.verify` checks the signature with that sender's keys only. An unknown `kid` makes it
refetch the sender's JWK Set once (DESIGN §3), but never more often than once per
`min_refetch_seconds` per peer, so a flood of documents with forged kids cannot make us hammer a
peer; concurrent verifications for one peer share one fetch.

Every key taken from a JWK Set must be a P-256 public key whose `kid` is its RFC 7638 thumbprint;
other entries are ignored. A refetch replaces the cached set, so a key the peer stops publishing
stops being trusted. Every failure is a `SignatureError`; a peer whose keys cannot be fetched is a
`PeerUnavailable`, which a receiver answers with 503 (try again later) rather than 401.
"""

import asyncio
import binascii
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.signing import (
    SignatureError,
    Verified,
    load_json,
    parse_public_jwk,
    read_header,
    thumbprint,
    unverified_payload,
    verify,
)

log = logging.getLogger("siapnet.peers")

JWKS_PATH = "/.well-known/jwks.json"
MAX_JWKS_BYTES = 64 * 1024  # a handful of keys; anything bigger is not a JWK Set we want
MAX_KEYS = 20


class PeerUnavailable(SignatureError):
    """The sender's keys could not be fetched: the document may be fine, so ask it to retry."""


@dataclass
class _Peer:
    """What we know of one peer's keys, and when we last asked for them."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    keys: dict[str, dict[str, str]] = field(default_factory=dict)
    asked_at: float | None = None  # clock reading of the last fetch, successful or not
    failure: str | None = None  # why the last fetch failed, while it is the latest one


def sender_of(compact: str) -> str:
    """The unverified `iss` of a compact JWS: whose keys to fetch before verifying it."""
    read_header(compact)  # the same shape and size checks verification makes
    try:
        payload = unverified_payload(compact)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise SignatureError("the JWS payload is not base64url JSON", malformed=True) from None
    issuer = payload.get("iss") if isinstance(payload, dict) else None
    if not isinstance(issuer, str) or not issuer:
        raise SignatureError("the payload names no issuer (iss)", malformed=True)
    return issuer


def usable_keys(entries: list[Any]) -> dict[str, dict[str, str]]:
    """The keys of a JWK Set we may trust, by kid: P-256 public keys named by their thumbprint."""
    keys: dict[str, dict[str, str]] = {}
    for entry in entries[:MAX_KEYS]:
        if not isinstance(entry, Mapping) or entry.get("use", "sig") != "sig":
            continue
        try:
            public = parse_public_jwk(entry)
        except ValueError:
            continue
        if entry.get("kid") == thumbprint(public):
            keys[entry["kid"]] = public
    return keys


class PeerKeys:
    """A cache of peer services' public keys that verifies documents they signed.

    `resolve` maps a service id to its base URL and raises LookupError for a service that is not
    a peer, so arbitrary `iss` values never reach the network or the cache."""

    def __init__(
        self,
        resolve: Callable[[str], str],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_seconds: float = 5.0,
        min_refetch_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.resolve = resolve
        self.transport = transport
        self.timeout_seconds = timeout_seconds
        self.min_refetch_seconds = min_refetch_seconds
        self.clock = clock
        self._peers: dict[str, _Peer] = {}

    async def verify(self, compact: str, *, sender: str, typ: str) -> Verified:
        """Verify `compact` as a `typ` document signed by one of `sender`'s published keys."""
        known = self._peers.get(sender)
        unknown_kid: str | None = None

        def cached_key(kid: str) -> dict[str, str] | None:
            nonlocal unknown_kid
            key = None if known is None else known.keys.get(kid)
            unknown_kid = kid if key is None else None
            return key

        try:
            # The cheap checks (alg, typ, refused headers) run before any fetch is considered.
            return verify(compact, typ=typ, key_for=cached_key)
        except SignatureError:
            if unknown_kid is None:
                raise
        peer = await self._refresh(sender, unknown_kid)
        return verify(compact, typ=typ, key_for=peer.keys.get)

    async def _refresh(self, sender: str, kid: str) -> _Peer:
        """Fetch `sender`'s keys again because `kid` is unknown, unless that was just done."""
        try:
            base_url = self.resolve(sender)
        except LookupError:
            raise SignatureError(f"{sender} is not a known peer service") from None
        # Only resolvable peers get an entry, so forged issuers cannot grow the cache.
        peer = self._peers.setdefault(sender, _Peer())
        async with peer.lock:
            if kid in peer.keys:
                return peer  # a concurrent verification fetched it while we waited
            now = self.clock()
            if peer.asked_at is not None and now - peer.asked_at < self.min_refetch_seconds:
                if peer.failure is not None:
                    raise PeerUnavailable(peer.failure)
                return peer
            peer.asked_at = now
            try:
                peer.keys = await self._fetch(sender, base_url)
            except PeerUnavailable as exc:
                peer.failure = exc.reason
                raise
            peer.failure = None
        return peer

    async def _fetch(self, sender: str, base_url: str) -> dict[str, dict[str, str]]:
        url = base_url.rstrip("/") + JWKS_PATH
        try:
            body = await self._download(url)
            document = load_json(body)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("cannot fetch peer keys", extra={"peer": sender, "error": str(exc)})
            raise PeerUnavailable(f"cannot fetch the keys of {sender}") from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            log.warning("peer keys are not a JWK Set", extra={"peer": sender})
            raise PeerUnavailable(f"cannot fetch the keys of {sender}: not a JWK Set")
        keys = usable_keys(document["keys"])
        if ignored := len(document["keys"]) - len(keys):
            log.warning("ignored unusable peer keys", extra={"peer": sender, "ignored": ignored})
        log.info("fetched peer keys", extra={"peer": sender, "keys": len(keys)})
        return keys

    async def _download(self, url: str) -> bytes:
        """The body of a 200 answer, at most MAX_JWKS_BYTES; ValueError for anything else."""
        async with (
            httpx.AsyncClient(timeout=self.timeout_seconds, transport=self.transport) as client,
            client.stream("GET", url, headers={"accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError("the JWK Set is too large")
            return bytes(body)

"""Specification: a service verifies what a peer signed with the keys the peer publishes, fetched
over HTTP once, refetched once on an unknown kid, and never hammering the peer."""

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jose import jws

from shared.documents import STATUS_TYP
from shared.peers import PeerKeys, PeerUnavailable, sender_of
from shared.signing import ALGORITHM, KeyPair, SignatureError, b64url_encode, jwks
from tests.support.servers import ThreadedServer, free_port

pytestmark = pytest.mark.anyio

PEER = "recommendation-province-36"


class Peer:
    """A peer service that publishes the JWK Set a test decides on and counts its fetches."""

    def __init__(self) -> None:
        self.keys = [KeyPair.generate()]
        self.extra_entries: list[Any] = []
        self.fetches = 0
        self.url = ""  # set once it is served
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.get("/.well-known/jwks.json")(self._jwks)

    @property
    def key(self) -> KeyPair:
        return self.keys[0]

    def _jwks(self) -> dict:
        with self._lock:
            self.fetches += 1
        published = jwks(*(key.public_jwk for key in self.keys))
        return {"keys": [*published["keys"], *self.extra_entries]}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def peer() -> Iterator[Peer]:
    peer = Peer()
    server = ThreadedServer(peer.app).start()
    peer.url = server.url
    yield peer
    server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def peer_keys(peer: Peer, clock: FakeClock) -> PeerKeys:
    return PeerKeys(lambda service: {PEER: peer.url}[service], clock=clock)


def event(**claims: Any) -> dict[str, Any]:
    payload = {
        "jti": str(uuid.uuid4()),
        "iss": PEER,
        "aud": "intake",
        "iat": int(time.time()),
        "recommendation_id": str(uuid.uuid4()),
        "sequence": 2,
        "from": "submitted",
        "to": "returned",
        "at": "2024-11-05T09:00:00+07:00",
        "actor": {"office": "bawaslu-36", "user": "bawaslu-36-user"},
        "note": None,
        "details": {"reason": "the evidence is missing"},
    }
    payload.update(claims)
    return payload


def signed(key: KeyPair, **claims: Any) -> str:
    return key.sign(event(**claims), STATUS_TYP)


def signed_with_kid(key: KeyPair, kid: str, **headers: Any) -> str:
    """A document signed by `key` whose header claims the key `kid`."""
    return jws.sign(
        event(),
        key.private_jwk(),
        headers={"typ": STATUS_TYP, "kid": kid, **headers},
        algorithm=ALGORITHM,
    )


def unsigned(payload: dict) -> str:
    """An `alg: none` document: no signature at all."""
    header = {"alg": "none", "typ": STATUS_TYP, "kid": "x"}
    parts = (b64url_encode(json.dumps(part).encode()) for part in (header, payload))
    return ".".join(parts) + "."


async def test_many_documents_from_a_peer_verify_with_one_fetch(peer, peer_keys):
    documents = [signed(peer.key) for _ in range(20)]

    verified = [await peer_keys.verify(d, sender=PEER, typ=STATUS_TYP) for d in documents]

    assert [v.kid for v in verified] == [peer.key.kid] * 20
    assert verified[0].payload["iss"] == PEER
    assert peer.fetches == 1


async def test_concurrent_verifications_share_one_fetch(peer, peer_keys):
    documents = [signed(peer.key) for _ in range(30)]

    await asyncio.gather(*(peer_keys.verify(d, sender=PEER, typ=STATUS_TYP) for d in documents))

    assert peer.fetches == 1


async def test_after_the_peer_rotates_its_key_the_new_kid_triggers_exactly_one_refetch(
    peer, peer_keys, clock
):
    old = peer.key
    await peer_keys.verify(signed(old), sender=PEER, typ=STATUS_TYP)
    new = KeyPair.generate()
    peer.keys = [new]
    clock.now += 60

    verified = [await peer_keys.verify(signed(new), sender=PEER, typ=STATUS_TYP) for _ in range(5)]

    assert {v.kid for v in verified} == {new.kid}
    assert peer.fetches == 2


async def test_a_key_the_peer_stops_publishing_is_not_trusted_after_the_refetch(
    peer, peer_keys, clock
):
    old = peer.key
    await peer_keys.verify(signed(old), sender=PEER, typ=STATUS_TYP)
    peer.keys = [KeyPair.generate()]
    clock.now += 60
    await peer_keys.verify(signed(peer.key), sender=PEER, typ=STATUS_TYP)

    with pytest.raises(SignatureError) as refused:
        await peer_keys.verify(signed(old), sender=PEER, typ=STATUS_TYP)

    assert not isinstance(refused.value, PeerUnavailable)


async def test_a_forged_kid_is_refused_and_a_flood_refetches_at_most_once_per_interval(
    peer, peer_keys, clock
):
    await peer_keys.verify(signed(peer.key), sender=PEER, typ=STATUS_TYP)
    forgeries = [signed(KeyPair.generate()) for _ in range(50)]

    async def refused(document: str) -> SignatureError:
        with pytest.raises(SignatureError) as caught:
            await peer_keys.verify(document, sender=PEER, typ=STATUS_TYP)
        return caught.value

    within_interval = await asyncio.gather(*(refused(f) for f in forgeries))
    fetches_within_interval = peer.fetches
    clock.now += 1.5
    after_interval = await asyncio.gather(*(refused(f) for f in forgeries))

    assert fetches_within_interval == 1  # the first fetch only: no refetch inside the interval
    assert peer.fetches == 2  # one refetch for the whole second flood
    assert all(not isinstance(e, PeerUnavailable) for e in [*within_interval, *after_interval])
    assert {e.reason for e in within_interval} == {"no registered key has this kid"}


async def test_a_document_signed_by_a_key_the_peer_does_not_publish_is_refused(peer, peer_keys):
    impostor = KeyPair.generate()

    with pytest.raises(SignatureError, match="signature does not match"):
        await peer_keys.verify(signed_with_kid(impostor, peer.key.kid), sender=PEER, typ=STATUS_TYP)
    with pytest.raises(SignatureError, match="no registered key"):
        await peer_keys.verify(signed(impostor), sender=PEER, typ=STATUS_TYP)


async def test_a_document_is_checked_against_its_senders_keys_only(peer, clock):
    other = KeyPair.generate()
    other_peer = Peer()
    other_peer.keys = [other]
    server = ThreadedServer(other_peer.app).start()
    try:
        routes = {PEER: peer.url, "recommendation-province-31": server.url}
        peer_keys = PeerKeys(routes.__getitem__, clock=clock)
        await peer_keys.verify(signed(other), sender="recommendation-province-31", typ=STATUS_TYP)

        with pytest.raises(SignatureError):
            await peer_keys.verify(signed(other), sender=PEER, typ=STATUS_TYP)
    finally:
        server.stop()


async def test_refused_headers_and_types_are_refused_before_any_fetch(peer, peer_keys):
    attempts = [
        (signed(peer.key), "siapnet-envelope+jws"),
        (signed_with_kid(peer.key, peer.key.kid, jku="https://evil.example/jwks"), STATUS_TYP),
        (unsigned(event()), STATUS_TYP),
    ]

    for document, typ in attempts:
        with pytest.raises(SignatureError):
            await peer_keys.verify(document, sender=PEER, typ=typ)

    assert peer.fetches == 0


async def test_a_peer_that_is_down_makes_verification_unavailable_not_invalid(peer):
    peer_keys = PeerKeys({PEER: f"http://127.0.0.1:{free_port()}"}.__getitem__)

    with pytest.raises(PeerUnavailable) as unavailable:
        await peer_keys.verify(signed(peer.key), sender=PEER, typ=STATUS_TYP)

    assert isinstance(unavailable.value, SignatureError)
    assert unavailable.value.reason.startswith(f"cannot fetch the keys of {PEER}")
    assert not unavailable.value.malformed


async def test_a_peer_that_is_down_is_asked_once_per_interval(peer, clock):
    requests: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    peer_keys = PeerKeys(
        {PEER: "http://peer"}.__getitem__, transport=httpx.MockTransport(refuse), clock=clock
    )
    documents = [signed(peer.key) for _ in range(20)]

    async def unavailable(document: str) -> None:
        with pytest.raises(PeerUnavailable):
            await peer_keys.verify(document, sender=PEER, typ=STATUS_TYP)

    await asyncio.gather(*(unavailable(d) for d in documents))
    asked_first = len(requests)
    clock.now += 1.5
    await unavailable(documents[0])

    assert asked_first == 1
    assert len(requests) == 2


async def test_keys_already_held_keep_verifying_while_the_peer_is_down(clock):
    peer = Peer()
    server = ThreadedServer(peer.app).start()
    peer_keys = PeerKeys({PEER: server.url}.__getitem__, clock=clock)
    await peer_keys.verify(signed(peer.key), sender=PEER, typ=STATUS_TYP)
    server.stop()
    clock.now += 60

    verified = await peer_keys.verify(signed(peer.key), sender=PEER, typ=STATUS_TYP)

    assert verified.kid == peer.key.kid
    with pytest.raises(PeerUnavailable):
        await peer_keys.verify(signed(KeyPair.generate()), sender=PEER, typ=STATUS_TYP)


@pytest.mark.parametrize("answer", [500, 404])
async def test_a_peer_that_answers_an_error_is_unavailable(peer, answer):
    def failing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(answer, json={"keys": []})

    peer_keys = PeerKeys({PEER: "http://peer"}.__getitem__, transport=httpx.MockTransport(failing))

    with pytest.raises(PeerUnavailable):
        await peer_keys.verify(signed(peer.key), sender=PEER, typ=STATUS_TYP)


async def test_a_jwk_set_nested_too_deep_makes_the_peer_unavailable_not_a_crash(peer):
    def nested(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"keys": ' + b"[" * 20_000 + b"]" * 20_000 + b"}")

    peer_keys = PeerKeys({PEER: "http://peer"}.__getitem__, transport=httpx.MockTransport(nested))

    with pytest.raises(PeerUnavailable):
        await peer_keys.verify(signed(peer.key), sender=PEER, typ=STATUS_TYP)


async def test_a_jwks_entry_whose_kid_is_not_its_thumbprint_is_ignored(peer, peer_keys):
    mislabelled = KeyPair.generate()
    peer.extra_entries = [
        {**mislabelled.public_jwk, "kid": "not-its-thumbprint", "use": "sig", "alg": "ES256"},
        {**KeyPair.generate().public_jwk, "kid": peer.key.kid},  # claims the real key's kid
        {**KeyPair.generate().private_jwk(), "kid": "private"},
        "not a key",
    ]

    with pytest.raises(SignatureError, match="no registered key"):
        await peer_keys.verify(
            signed_with_kid(mislabelled, "not-its-thumbprint"), sender=PEER, typ=STATUS_TYP
        )
    verified = await peer_keys.verify(signed(peer.key), sender=PEER, typ=STATUS_TYP)

    assert verified.kid == peer.key.kid


async def test_a_sender_that_is_not_a_peer_is_refused_without_a_fetch(peer, peer_keys):
    with pytest.raises(SignatureError, match="not a known peer") as refused:
        await peer_keys.verify(signed(peer.key), sender="somebody-else", typ=STATUS_TYP)

    assert not isinstance(refused.value, PeerUnavailable)
    assert peer.fetches == 0


def test_the_sender_is_the_unverified_issuer():
    assert sender_of(signed(KeyPair.generate())) == PEER


@pytest.mark.parametrize(
    "compact",
    [
        "not a jws",
        KeyPair.generate().sign(event(iss=36), STATUS_TYP),
        KeyPair.generate().sign({"jti": "x"}, STATUS_TYP),
        KeyPair.generate().sign(b"[1, 2]", STATUS_TYP),
        KeyPair.generate().sign(b"not json", STATUS_TYP),
    ],
    ids=["not a jws", "iss not a string", "no iss", "payload not an object", "payload not json"],
)
def test_a_document_without_a_readable_issuer_is_malformed(compact):
    with pytest.raises(SignatureError) as refused:
        sender_of(compact)

    assert refused.value.malformed

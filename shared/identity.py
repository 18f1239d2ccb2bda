"""Who is calling: an access token (an ES256 JWT issued by the gateway) checked by every service.

Services do not trust the network or headers a proxy could forge; they verify the bearer token
themselves against the issuer's published public keys.
"""

import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request

from shared import regions
from shared.problems import Forbidden, Unauthenticated
from shared.signing import KeyPair, SignatureError, verify

ACCESS_TOKEN_TYP = "at+jwt"  # RFC 9068
CLOCK_LEEWAY_SECONDS = 30
# Tokens whose signature has been checked, remembered per process: an office sends the same
# token with every request for its lifetime, and checking it again cost a verification each time.
VERIFIED_TOKENS_KEPT = 10_000


@dataclass(frozen=True)
class Caller:
    subject: str
    office: regions.Office
    roles: frozenset[str]

    def can_see_office(self, office_id: str) -> bool:
        """Whether the caller's jurisdiction includes everything `office_id` does."""
        other = regions.office(office_id)
        if other is None:
            return False
        if self.office.region is None:
            return True
        return other.region is not None and self.office.covers(other.region.code)


class TrustedIssuer:
    """The public keys an access token may be signed with, reloaded when an unknown kid shows up."""

    def __init__(self, jwks_file: Path, *, issuer: str, audience: str) -> None:
        self.jwks_file = jwks_file
        self.issuer = issuer
        self.audience = audience
        self._keys: dict[str, dict[str, str]] = {}
        # token -> (kid, claims): a token's signature never changes; its expiry and issuer are
        # still checked on every use, and it counts only while its key is still trusted.
        self._verified: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()

    def _load(self) -> None:
        try:
            document = json.loads(self.jwks_file.read_text())
        except (OSError, ValueError):
            return
        self._keys = {
            key["kid"]: {name: key[name] for name in ("kty", "crv", "x", "y")}
            for key in document.get("keys", [])
            if isinstance(key, dict) and {"kid", "kty", "crv", "x", "y"} <= key.keys()
        }

    def key_for(self, kid: str) -> dict[str, str] | None:
        if kid not in self._keys:
            self._load()
        return self._keys.get(kid)

    def caller(self, token: str) -> Caller:
        return caller_from_claims(self._claims(token), issuer=self.issuer, audience=self.audience)

    def _claims(self, token: str) -> dict[str, Any]:
        remembered = self._verified.get(token)
        if remembered is not None and remembered[0] in self._keys:
            self._verified.move_to_end(token)
            return remembered[1]
        try:
            verified = verify(token, typ=ACCESS_TOKEN_TYP, key_for=self.key_for)
        except SignatureError as exc:
            raise Unauthenticated(f"the access token was refused: {exc.reason}") from None
        self._verified[token] = (verified.kid, verified.payload)
        if len(self._verified) > VERIFIED_TOKENS_KEPT:
            self._verified.popitem(last=False)
        return verified.payload


def caller_from_claims(claims: dict[str, Any], *, issuer: str, audience: str) -> Caller:
    now = time.time()
    if claims.get("iss") != issuer:
        raise Unauthenticated("the access token comes from an unknown issuer")
    audiences = claims.get("aud")
    if audience != audiences and not (isinstance(audiences, list) and audience in audiences):
        raise Unauthenticated("the access token is for another audience")
    expires, issued = claims.get("exp"), claims.get("iat")
    if not isinstance(expires, int | float) or expires + CLOCK_LEEWAY_SECONDS < now:
        raise Unauthenticated("the access token has expired")
    if not isinstance(issued, int | float) or issued - CLOCK_LEEWAY_SECONDS > now:
        raise Unauthenticated("the access token was issued in the future")
    office = regions.office(str(claims.get("office", "")))
    roles = claims.get("roles")
    if office is None or not isinstance(roles, list) or not isinstance(claims.get("sub"), str):
        raise Unauthenticated("the access token lacks sub, office or roles")
    return Caller(subject=claims["sub"], office=office, roles=frozenset(map(str, roles)))


def mint_access_token(
    key: KeyPair,
    *,
    subject: str,
    office: str,
    roles: list[str],
    issuer: str = "siapnet-gateway",
    audience: str = "siapnet",
    lifetime_seconds: int = 900,
    token_id: str,
) -> str:
    """Sign an access token; the gateway issues these, and operators mint one to bootstrap."""
    found = regions.office(office)
    if found is None:
        raise ValueError(f"{office!r} is not a Bawaslu office id")
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "jti": token_id,
        "iat": now,
        "exp": now + lifetime_seconds,
        "office": office,
        "tier": str(found.tier),
        "roles": roles,
    }
    return key.sign(claims, ACCESS_TOKEN_TYP)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


# The dependencies below are coroutines on purpose: they only compute, and a plain function would
# be sent to a worker thread and back on every request, which cost more than the work.
async def current_caller(request: Request) -> Caller:
    token = bearer_token(request)
    if token is None:
        raise Unauthenticated(
            "send an access token: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": 'Bearer realm="siapnet"'},
        )
    issuer: TrustedIssuer = request.app.state.trusted_issuer
    return issuer.caller(token)


async def optional_caller(request: Request) -> Caller | None:
    return None if bearer_token(request) is None else await current_caller(request)


async def require_admin(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    if "admin" not in caller.roles:
        raise Forbidden("this needs the admin role")
    return caller


CurrentCaller = Annotated[Caller, Depends(current_caller)]
OptionalCaller = Annotated[Caller | None, Depends(optional_caller)]
AdminCaller = Annotated[Caller, Depends(require_admin)]

"""Accounts and tokens: who may log in, and what they get.

Secrets are argon2id hashes. Repeated failed logins lock an account for a while; a locked account
is refused without its password being checked. Access tokens are short-lived ES256 JWTs every
service verifies itself; refresh tokens are opaque, stored hashed, rotate on every use, and a
refresh token used twice revokes its whole family — one of the two holders was not its owner.
"""

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, select

from services.gateway.models import Account, RefreshToken
from services.gateway.settings import GatewaySettings
from shared import regions
from shared.db import utcnow
from shared.identity import mint_access_token
from shared.problems import Conflict, InvalidFields, NotFound, Problem
from shared.signing import KeyPair

ROLES = ("officer", "supervisor", "admin", "viewer", "liaison")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,99}$")
MIN_SECRET_LENGTH = 12
_hasher = PasswordHasher()
# Compared against when the username is unknown, so that case takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class LoginRefused(Problem):
    """OAuth2's invalid_grant / invalid_client, as problem+json (RFC 6749 §5.2 codes kept)."""

    status, slug, title = 401, "login-refused", "The credentials were refused"
    example = "unknown account or wrong secret"
    example_members: ClassVar[dict[str, Any]] = {"error": "invalid_grant"}


class UnsupportedGrant(Problem):
    status, slug, title = 400, "unsupported-grant-type", "Unsupported grant_type"
    example = "grant_type is password, client_credentials or refresh_token"
    example_members: ClassVar[dict[str, Any]] = {"error": "unsupported_grant_type"}


@dataclass(frozen=True)
class Tokens:
    access_token: str
    expires_in: int
    refresh_token: str | None


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def create_account(
    session: Session,
    *,
    username: str,
    office_id: str,
    roles: list[str],
    secret: str,
    kind: str = "user",
) -> Account:
    errors = []
    if not USERNAME.match(username):
        errors.append(_error("username", "2-100 of a-z, 0-9, '.', '_' or '-'"))
    office = regions.office(office_id)
    if office is None:
        errors.append(_error("office", "not a Bawaslu office id"))
    unknown = sorted(set(roles) - set(ROLES))
    if unknown or not roles:
        errors.append(_error("roles", f"roles are some of {', '.join(ROLES)}"))
    if "liaison" in roles and office is not None and office.tier is not regions.Tier.national:
        errors.append(_error("roles", "the ruling-body liaison works at the national office"))
    if len(secret) < MIN_SECRET_LENGTH:
        errors.append(_error("password", f"at least {MIN_SECRET_LENGTH} characters"))
    if kind not in ("user", "client"):
        errors.append(_error("kind", "user or client"))
    if errors:
        raise InvalidFields("The account is invalid.", errors=errors)
    if session.exec(select(Account).where(Account.username == username)).first() is not None:
        raise Conflict(f"the username {username!r} is taken")
    account = Account(
        username=username,
        kind=kind,
        office_id=office_id,
        roles=" ".join(sorted(set(roles))),
        secret_hash=hash_secret(secret),
        created_at=utcnow(),
    )
    session.add(account)
    session.commit()
    return account


def _error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message, "type": "value_error"}


def password_grant(
    session: Session,
    *,
    username: str,
    password: str,
    kind: str,
    settings: GatewaySettings,
    key: KeyPair,
) -> Tokens:
    """Log in with a username (or client id) and its secret."""
    account = session.exec(
        select(Account).where(Account.username == username).with_for_update()
    ).first()
    code = "invalid_client" if kind == "client" else "invalid_grant"
    now = utcnow()
    if account is None or account.kind != kind or account.disabled:
        _check(_DUMMY_HASH, password)
        raise LoginRefused("unknown account or wrong secret", error=code)
    if account.locked_until is not None and account.locked_until > now:
        wait = int((account.locked_until - now).total_seconds()) + 1
        raise LoginRefused(
            "too many failed logins; the account is locked for a while",
            error=code,
            headers={"retry-after": str(wait)},
        )
    if not _check(account.secret_hash, password):
        account.failed_logins += 1
        if account.failed_logins >= settings.lockout_after_failures:
            account.locked_until = now + timedelta(minutes=settings.lockout_minutes)
            account.failed_logins = 0
        session.add(account)
        session.commit()
        raise LoginRefused("unknown account or wrong secret", error=code)
    account.failed_logins = 0
    account.locked_until = None
    session.add(account)
    with_refresh = kind == "user"  # RFC 6749 §4.4.3: no refresh token for client credentials
    return issue(session, account, settings=settings, key=key, refresh=with_refresh)


def _check(hashed: str, secret: str) -> bool:
    try:
        return _hasher.verify(hashed, secret)
    except (VerificationError, InvalidHashError):
        return False


def issue(
    session: Session,
    account: Account,
    *,
    settings: GatewaySettings,
    key: KeyPair,
    refresh: bool = True,
    family_id: str | None = None,
) -> Tokens:
    lifetime = settings.access_token_minutes * 60
    access = mint_access_token(
        key,
        subject=account.username,
        office=account.office_id,
        roles=account.role_list,
        issuer=settings.identity_issuer,
        audience=settings.identity_audience,
        lifetime_seconds=lifetime,
        token_id=str(uuid.uuid4()),
    )
    refresh_token = None
    if refresh:
        token_id, secret = str(uuid.uuid4()), secrets.token_urlsafe(32)
        now = utcnow()
        session.add(
            RefreshToken(
                id=token_id,
                family_id=family_id or str(uuid.uuid4()),
                account_id=account.id,  # type: ignore[arg-type]
                secret_hash=_sha256(secret),
                issued_at=now,
                expires_at=now + timedelta(days=settings.refresh_token_days),
            )
        )
        refresh_token = f"{token_id}.{secret}"
    session.commit()
    return Tokens(access_token=access, expires_in=lifetime, refresh_token=refresh_token)


def refresh_grant(
    session: Session, *, refresh_token: str, settings: GatewaySettings, key: KeyPair
) -> Tokens:
    """Trade a refresh token for new tokens; the old one is spent."""
    stored = _stored(session, refresh_token)
    now = utcnow()
    if stored.used_at is not None or stored.revoked_at is not None:
        if stored.used_at is not None:
            _revoke_family(session, stored.family_id, now)
            session.commit()
        raise LoginRefused("this refresh token was already used or revoked", error="invalid_grant")
    if stored.expires_at <= now:
        raise LoginRefused("this refresh token has expired", error="invalid_grant")
    account = session.get(Account, stored.account_id)
    if account is None or account.disabled:
        raise LoginRefused("the account is disabled", error="invalid_grant")
    stored.used_at = now
    session.add(stored)
    return issue(session, account, settings=settings, key=key, family_id=stored.family_id)


def revoke(session: Session, *, refresh_token: str) -> None:
    """Log out: the refresh token's family can no longer be used (RFC 7009: unknown is fine)."""
    try:
        stored = _stored(session, refresh_token)
    except LoginRefused:
        return
    _revoke_family(session, stored.family_id, utcnow())
    session.commit()


def _stored(session: Session, refresh_token: str) -> RefreshToken:
    token_id, _, secret = refresh_token.partition(".")
    stored = session.get(RefreshToken, token_id) if token_id and secret else None
    if stored is None or not secrets.compare_digest(stored.secret_hash, _sha256(secret)):
        raise LoginRefused("unknown refresh token", error="invalid_grant")
    return stored


def _revoke_family(session: Session, family_id: str, at: datetime) -> None:
    members = session.exec(
        select(RefreshToken)
        .where(RefreshToken.family_id == family_id)
        .where(col(RefreshToken.revoked_at).is_(None))
    ).all()
    for member in members:
        member.revoked_at = at
        session.add(member)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def accounts_of(session: Session, *, office_id: str | None = None) -> list[Account]:
    statement = select(Account).order_by(col(Account.username))
    if office_id is not None:
        statement = statement.where(Account.office_id == office_id)
    return list(session.exec(statement).all())


def set_disabled(session: Session, *, username: str, disabled: bool) -> Account:
    account = session.exec(select(Account).where(Account.username == username)).first()
    if account is None:
        raise NotFound(f"no account {username!r}")
    account.disabled = disabled
    session.add(account)
    if disabled:
        tokens = session.exec(
            select(RefreshToken).where(RefreshToken.account_id == account.id)
        ).all()
        families = {token.family_id for token in tokens}
        for family in families:
            _revoke_family(session, family, utcnow())
    session.commit()
    return account

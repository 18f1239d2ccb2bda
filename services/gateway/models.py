"""The gateway's tables: accounts (people and service clients) and refresh tokens."""

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, String
from sqlmodel import Field, SQLModel

from shared.db import UTCDateTime

TABLES = ("accounts", "refresh_tokens")


class Account(SQLModel, table=True):
    """Someone who logs in: a person (password grant) or a client system (client_credentials),
    always bound to one office."""

    __tablename__ = "accounts"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, max_length=100)
    kind: str = Field(default="user", max_length=8)  # user | client
    office_id: str = Field(index=True, max_length=32)
    roles: str = Field(max_length=200)  # space-separated
    secret_hash: str = Field(max_length=200)  # argon2id
    failed_logins: int = 0
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    disabled: bool = False
    created_at: datetime = Field(sa_type=UTCDateTime)

    @property
    def role_list(self) -> list[str]:
        return self.roles.split()


class RefreshToken(SQLModel, table=True):
    """One refresh token of a login family. Using it rotates it; using a used one again
    revokes the whole family (someone copied it)."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (Index("ix_refresh_tokens_family", "family_id"),)

    id: str = Field(primary_key=True, max_length=36)
    family_id: str = Field(max_length=36)
    account_id: int = Field(
        sa_column=Column(Integer, ForeignKey("accounts.id"), nullable=False, index=True)
    )
    secret_hash: str = Field(sa_column=Column(String(64), nullable=False))  # sha256 hex
    issued_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

"""Intake's tables: registered office keys, received documents and registration counters.
The outbox tables come from `shared.outbox`."""

from datetime import date, datetime

from sqlalchemy import Column, ForeignKey, String, Text
from sqlmodel import Field, SQLModel

from shared import audit  # noqa: F401  (registers the audit_log table)
from shared.db import UTCDateTime

TABLES = (
    "office_keys",
    "documents",
    "registration_counters",
    "outbox_messages",
    "outbox_attempts",
    "audit_log",
)


class OfficeKey(SQLModel, table=True):
    __tablename__ = "office_keys"

    kid: str = Field(primary_key=True, max_length=64)
    office_id: str = Field(index=True, max_length=32)
    jwk: str = Field(sa_column=Column(Text, nullable=False))  # the public JWK, canonical JSON
    registered_at: datetime = Field(sa_type=UTCDateTime)
    registered_by: str = Field(max_length=100)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    retired_by: str | None = Field(default=None, max_length=100)


class DocumentStatus:
    received = "received"
    returned = "returned"
    superseded = "superseded"


class Document(SQLModel, table=True):
    __tablename__ = "documents"

    id: str = Field(primary_key=True, max_length=36)  # the document's jti
    office_id: str = Field(max_length=32)
    kid: str = Field(sa_column=Column(String(64), ForeignKey("office_keys.kid"), nullable=False))
    compact: str = Field(sa_column=Column(Text, nullable=False))  # the exact bytes received
    sha256: str = Field(max_length=64)
    registration_number: str = Field(unique=True, max_length=40)
    received_at: datetime = Field(sa_type=UTCDateTime)
    receipt: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default=DocumentStatus.received, max_length=16)
    supersedes: str | None = Field(
        default=None,
        sa_column=Column(String(36), ForeignKey("documents.id"), unique=True, nullable=True),
    )
    region_code: str = Field(max_length=13)
    province_code: str = Field(max_length=2)
    category: str = Field(max_length=40)
    source: str = Field(max_length=16)
    election_kind: str = Field(max_length=16)
    election_year: int
    occurred_on: date


class RegistrationCounter(SQLModel, table=True):
    """The last registration number given per office and year; incremented in the same
    transaction that stores the document, so numbers are unique and gap-free."""

    __tablename__ = "registration_counters"
    office_id: str = Field(primary_key=True, max_length=32)
    year: int = Field(primary_key=True)
    last: int = 0

"""The recommendation service's tables: recommendations and their status history.
The outbox and audit tables come from `shared`."""

from datetime import date, datetime

from sqlalchemy import Column, ForeignKey, Index, String, Text
from sqlmodel import Field, SQLModel

from shared import audit, outbox  # noqa: F401  (registers the shared tables)
from shared.db import UTCDateTime

TABLES = (
    "recommendations",
    "recommendation_counts",
    "status_history",
    "outbox_messages",
    "outbox_attempts",
    "audit_log",
)


TOTALS_COLUMNS = [
    "regency_code",
    "office_id",
    "category",
    "status",
    "position_class",
    "employment",
    "election_kind",
    "election_year",
    "review_due_on",
    "ppk_due_on",
]


class Recommendation(SQLModel, table=True):
    """One recommendation as this service holds it. `seq` orders lists stably: it only grows,
    so a page boundary never moves while rows are added."""

    __tablename__ = "recommendations"
    __table_args__ = (
        Index("ix_recommendations_province_status", "province_code", "status"),
        Index("ix_recommendations_office_seq", "office_id", "seq"),
        Index("ix_recommendations_province_seq", "province_code", "seq"),
        Index("ix_recommendations_status_due", "status", "review_due_on"),
        Index("ix_recommendations_status_ppk_due", "status", "ppk_due_on"),
        Index("ix_recommendations_received", "received_at"),
        # Totals read only this index on PostgreSQL: scope and period in the key, every
        # grouping column included, so the wide document columns are never touched.
        Index(
            "ix_recommendations_totals",
            "province_code",
            "received_at",
            postgresql_include=TOTALS_COLUMNS,
        ),
    )

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, max_length=36)  # the office document's jti
    office_id: str = Field(max_length=32)
    province_code: str = Field(max_length=2)
    regency_code: str = Field(max_length=5)  # the regency/city the region lies in (or the office's)
    region_code: str = Field(max_length=13)
    category: str = Field(max_length=40)
    source: str = Field(max_length=16)
    election_kind: str = Field(max_length=16)
    election_year: int
    position_class: str = Field(max_length=20)
    employment: str = Field(max_length=8)
    occurred_on: date
    registration_number: str = Field(max_length=40)
    received_at: datetime = Field(sa_type=UTCDateTime)  # at intake
    arrived_at: datetime = Field(sa_type=UTCDateTime)  # at this service
    status: str = Field(max_length=24)
    version: int = 1  # the ETag: grows with every change
    # The last status sequence applied from the national service (province tier only).
    national_sequence: int = 0
    review_due_on: date | None = None
    reviewed_on: date | None = None
    ppk_due_on: date | None = None
    document: str = Field(sa_column=Column(Text, nullable=False))  # the office's exact bytes
    signer_jwk: str = Field(sa_column=Column(Text, nullable=False))
    envelope: str = Field(sa_column=Column(Text, nullable=False))  # the envelope as received
    updated_at: datetime = Field(sa_type=UTCDateTime)


# The columns `recommendation_counts` keeps counts by: what totals group and filter by most.
COUNTED_COLUMNS = (
    "province_code",
    "regency_code",
    "office_id",
    "category",
    "status",
    "election_kind",
    "election_year",
)


class RecommendationCount(SQLModel, table=True):
    """How many recommendations share one combination of `COUNTED_COLUMNS`: a trigger on
    `recommendations` keeps it (migration 0003), so every insert and status change counts,
    whichever code makes it. National totals sum a few hundred thousand of these rather than
    grouping a million recommendations. A count may fall to 0; its row stays."""

    __tablename__ = "recommendation_counts"

    province_code: str = Field(primary_key=True, max_length=2)
    regency_code: str = Field(primary_key=True, max_length=5)
    office_id: str = Field(primary_key=True, max_length=32)
    category: str = Field(primary_key=True, max_length=40)
    status: str = Field(primary_key=True, max_length=24)
    election_kind: str = Field(primary_key=True, max_length=16)
    election_year: int = Field(primary_key=True)
    count: int


class StatusChange(SQLModel, table=True):
    """The append-only history: who changed what, when, and the signed status event if any."""

    __tablename__ = "status_history"
    __table_args__ = (Index("ix_status_history_recommendation", "recommendation_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    recommendation_id: str = Field(
        sa_column=Column(String(36), ForeignKey("recommendations.id"), nullable=False)
    )
    event_id: str | None = Field(default=None, unique=True, max_length=36)
    sequence: int | None = None  # the national sequence of a status event
    action: str = Field(max_length=24)
    from_status: str | None = Field(default=None, max_length=24)
    to_status: str = Field(max_length=24)
    at: datetime = Field(sa_type=UTCDateTime)
    actor_office: str = Field(max_length=40)
    actor_user: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    details: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    applied: bool = True  # False for a late event kept for the record but not applied
    document: str | None = Field(default=None, sa_column=Column(Text, nullable=True))

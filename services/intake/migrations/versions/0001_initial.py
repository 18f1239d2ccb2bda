"""Intake's first tables: office keys, documents, registration counters and the outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "office_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("office_id", sa.String(32), nullable=False, index=True),
        sa.Column("jwk", sa.Text, nullable=False),
        sa.Column("registered_at", TIMESTAMP, nullable=False),
        sa.Column("registered_by", sa.String(100), nullable=False),
        sa.Column("retired_at", TIMESTAMP, nullable=True),
        sa.Column("retired_by", sa.String(100), nullable=True),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("office_id", sa.String(32), nullable=False, index=True),
        sa.Column("kid", sa.String(64), sa.ForeignKey("office_keys.kid"), nullable=False),
        sa.Column("compact", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("registration_number", sa.String(40), nullable=False, unique=True),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("receipt", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column(
            "supersedes", sa.String(36), sa.ForeignKey("documents.id"), nullable=True, unique=True
        ),
        sa.Column("region_code", sa.String(13), nullable=False),
        sa.Column("province_code", sa.String(2), nullable=False, index=True),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("election_kind", sa.String(16), nullable=False),
        sa.Column("election_year", sa.Integer, nullable=False),
        sa.Column("occurred_on", sa.Date, nullable=False),
    )
    op.create_table(
        "registration_counters",
        sa.Column("office_id", sa.String(32), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("last", sa.Integer, nullable=False),
    )
    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("document_id", sa.String(36), nullable=False, index=True),
        sa.Column("destination", sa.String(100), nullable=False),
        sa.Column("path", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("leased_until", TIMESTAMP, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("delivered_at", TIMESTAMP, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
    )
    op.create_index("ix_outbox_due", "outbox_messages", ["state", "next_attempt_at"])
    op.create_table(
        "outbox_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "message_id",
            sa.String(36),
            sa.ForeignKey("outbox_messages.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("outbox_attempts")
    op.drop_index("ix_outbox_due", table_name="outbox_messages")
    op.drop_table("outbox_messages")
    op.drop_table("registration_counters")
    op.drop_table("documents")
    op.drop_table("office_keys")

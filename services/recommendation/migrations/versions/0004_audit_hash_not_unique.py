"""The audit log's hash is no longer unique: nothing looks an entry up by its hash (the chain is
checked in id order, each entry against the one before), and the index over random hashes cost
every append a page of its own in the log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from shared.migrations import add_unique, drop_unique

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# PostgreSQL's name for the constraint 0001 created; on SQLite it has none.
HASH_UNIQUE = "audit_log_entry_hash_key"


def _audit_log() -> sa.Table:
    """audit_log as 0001 made it, but for the unique hash."""
    return sa.Table(
        "audit_log",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("previous_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.Index("ix_audit_log_document_id", "document_id"),
    )


def upgrade() -> None:
    drop_unique(_audit_log(), HASH_UNIQUE)


def downgrade() -> None:
    add_unique(_audit_log(), "entry_hash", HASH_UNIQUE)

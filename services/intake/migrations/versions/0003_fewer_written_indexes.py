"""Fewer index pages written per submission: drop the indexes nothing reads.

Every index is one more page written to the log at each commit. Intake never looks documents up
by office or province (reads go by id; lists come from the recommendation services), and nothing
looks an audit entry up by its hash: the chain is checked in id order, each entry against the one
before. The three indexes were 5 of the 21 log pages a submission wrote, and the unique one on
the audit hashes, random by nature, the largest share (2.8).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.migrations import add_unique, drop_unique

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNUSED_INDEXES = {
    "ix_documents_office_id": "office_id",
    "ix_documents_province_code": "province_code",
}
# PostgreSQL's name for the constraint 0002 created; on SQLite it has none.
HASH_UNIQUE = "audit_log_entry_hash_key"


def _audit_log() -> sa.Table:
    """audit_log as 0002 made it, but for the unique hash."""
    return sa.Table(
        "audit_log",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("document_id", sa.String(36), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("previous_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Index("ix_audit_log_document_id", "document_id"),
    )


def upgrade() -> None:
    for name in UNUSED_INDEXES:
        op.drop_index(name, table_name="documents")
    drop_unique(_audit_log(), HASH_UNIQUE)


def downgrade() -> None:
    add_unique(_audit_log(), "entry_hash", HASH_UNIQUE)
    for name, column in UNUSED_INDEXES.items():
        op.create_index(name, "documents", [column])

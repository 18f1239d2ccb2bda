"""A covering index for totals: at a million rows on PostgreSQL, province totals went from
300-575 ms (bitmap heap scans over the wide rows) to 13-58 ms, national from ~630 ms to ~240 ms.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INCLUDED = [
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


def upgrade() -> None:
    op.create_index(
        "ix_recommendations_totals",
        "recommendations",
        ["province_code", "received_at"],
        postgresql_include=INCLUDED,
    )


def downgrade() -> None:
    op.drop_index("ix_recommendations_totals", table_name="recommendations")

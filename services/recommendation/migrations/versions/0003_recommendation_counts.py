"""Counts kept by trigger, for national totals: grouping a million recommendations took
115-160 ms in PostgreSQL for the plain total and 230-440 ms grouped by regency and category
(`EXPLAIN ANALYZE`, this 2-core machine); summing their 170,000 counts takes 22-35 ms.

A trigger, not the service's code, keeps the counts: every insert, status change and delete
counts, whichever statement makes it (a bulk load with COPY included), and on PostgreSQL a
TRUNCATE empties them. An update takes its
two counts in key order, so two transactions moving recommendations between the same two
counts in opposite directions cannot deadlock. The index on (status, ppk_due_on) lets the
overdue follow-ups be counted from the index alone.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here, as a migration must be: models.COUNTED_COLUMNS may change in a later revision.
KEY = (
    "province_code",
    "regency_code",
    "office_id",
    "category",
    "status",
    "election_kind",
    "election_year",
)
COLUMNS = ", ".join(KEY)


def _values(row: str, count: int) -> str:
    return ", ".join(f"{row}.{column}" for column in KEY) + f", {count}"


def _count(row: str, change: int) -> str:
    return (
        f"INSERT INTO recommendation_counts ({COLUMNS}, count)"
        f" VALUES ({_values(row, change)})"
        f" ON CONFLICT ({COLUMNS}) DO UPDATE SET count = recommendation_counts.count + {change};"
    )


def _key(row: str) -> str:
    return "(" + ", ".join(f"{row}.{column}" for column in KEY) + ")"


POSTGRESQL = f"""
CREATE FUNCTION recommendation_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_count("NEW", 1)}
    ELSIF TG_OP = 'DELETE' THEN
        {_count("OLD", -1)}
    ELSIF {_key("OLD")} < {_key("NEW")} THEN
        {_count("OLD", -1)}
        {_count("NEW", 1)}
    ELSIF {_key("OLD")} > {_key("NEW")} THEN
        {_count("NEW", 1)}
        {_count("OLD", -1)}
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER recommendations_counted
    AFTER INSERT OR DELETE OR UPDATE OF {COLUMNS} ON recommendations
    FOR EACH ROW EXECUTE FUNCTION recommendation_counts_follow();
CREATE FUNCTION recommendation_counts_empty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM recommendation_counts;
    RETURN NULL;
END
$$;
CREATE TRIGGER recommendations_emptied AFTER TRUNCATE ON recommendations
    FOR EACH STATEMENT EXECUTE FUNCTION recommendation_counts_empty();
"""

SQLITE = [
    f"""CREATE TRIGGER recommendations_counted_insert AFTER INSERT ON recommendations
    BEGIN {_count("NEW", 1)} END""",
    f"""CREATE TRIGGER recommendations_counted_delete AFTER DELETE ON recommendations
    BEGIN {_count("OLD", -1)} END""",
    f"""CREATE TRIGGER recommendations_counted_update AFTER UPDATE OF {COLUMNS} ON recommendations
    WHEN {" OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in KEY)}
    BEGIN {_count("OLD", -1)} {_count("NEW", 1)} END""",
]


def upgrade() -> None:
    op.create_table(
        "recommendation_counts",
        sa.Column("province_code", sa.String(length=2), nullable=False),
        sa.Column("regency_code", sa.String(length=5), nullable=False),
        sa.Column("office_id", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("election_kind", sa.String(length=16), nullable=False),
        sa.Column("election_year", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY),
    )
    op.create_index(
        "ix_recommendations_status_ppk_due", "recommendations", ["status", "ppk_due_on"]
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        # No write may fall between the count below and the trigger; the lock lasts until the
        # migration's transaction commits.
        op.execute("LOCK TABLE recommendations IN SHARE ROW EXCLUSIVE MODE")
    op.execute(
        f"INSERT INTO recommendation_counts ({COLUMNS}, count)"
        f" SELECT {COLUMNS}, count(*) FROM recommendations GROUP BY {COLUMNS}"
    )
    if postgresql:
        op.execute(POSTGRESQL)
    else:
        for statement in SQLITE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER recommendations_emptied ON recommendations")
        op.execute("DROP FUNCTION recommendation_counts_empty()")
        op.execute("DROP TRIGGER recommendations_counted ON recommendations")
        op.execute("DROP FUNCTION recommendation_counts_follow()")
    else:
        for action in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER recommendations_counted_{action}")
    op.drop_index("ix_recommendations_status_ppk_due", table_name="recommendations")
    op.drop_table("recommendation_counts")

"""Steps more than one service's migrations take. A migration must keep doing what it did when
it was written: once a migration uses a step here, the step does not change (a new need gets a
new step)."""

import sqlalchemy as sa
from alembic import op


def drop_unique(table: sa.Table, name: str) -> None:
    """Drop a UNIQUE constraint, `name` on PostgreSQL. `table` is the table as it is to be,
    without it: SQLite cannot drop a constraint, so there the rows are copied, ids and all, into
    a new table made from it."""
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(table.name, copy_from=table, recreate="always"):
            pass
    else:
        op.drop_constraint(name, table.name, type_="unique")


def add_unique(table: sa.Table, column: str, name: str) -> None:
    """Put back what `drop_unique` took: a UNIQUE named `name` on `table.column`."""
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(table.name, copy_from=table, recreate="always") as batch:
            batch.create_unique_constraint(name, [column])
    else:
        op.create_unique_constraint(name, table.name, [column])

"""Every row of a service's tables, to show that a refused request changed nothing."""

from sqlalchemy import MetaData, select

from shared.db import Database


def snapshot(database: Database) -> dict[str, list[tuple]]:
    metadata = MetaData()
    metadata.reflect(bind=database.engine)
    with database.engine.connect() as connection:
        return {
            name: sorted(map(tuple, connection.execute(select(table)).all()), key=repr)
            for name, table in metadata.tables.items()
        }

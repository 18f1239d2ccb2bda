"""Alembic environment for intake: the connection comes from `shared.db.Database`, or from the
URL in the config when run by the alembic command."""

from alembic import context
from sqlalchemy import engine_from_config, pool
from sqlmodel import SQLModel

from services.intake import models

config = context.config
target_metadata = SQLModel.metadata


def include_name(name, type_, _parent_names) -> bool:
    return type_ != "table" or name in models.TABLES


def run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=include_name,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as fresh:
        run(fresh)

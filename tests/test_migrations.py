"""Specification: every service's migrations run up, down and up again, on SQLite and PostgreSQL."""

from pathlib import Path

import pytest
from sqlalchemy import inspect

from services.gateway import models as gateway_models
from services.intake import models as intake_models
from services.recommendation import models as recommendation_models
from shared.db import Database

SERVICES = {
    "gateway": gateway_models.TABLES,
    "intake": intake_models.TABLES,
    "recommendation": recommendation_models.TABLES,
}
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_migrations_run_up_and_down(service, database_url):
    database = Database(database_url, ROOT / "services" / service / "migrations")
    try:
        database.upgrade()
        assert database.at_head()
        assert set(SERVICES[service]) <= set(inspect(database.engine).get_table_names())

        database.downgrade("base")
        assert database.current() is None
        assert set(inspect(database.engine).get_table_names()) <= {"alembic_version"}

        database.upgrade()
        assert database.at_head()
    finally:
        database.dispose()


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_migrations_match_the_models(service, database_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    database = Database(database_url, ROOT / "services" / service / "migrations")
    try:
        database.upgrade()
        with database.engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "include_object": lambda item, name, kind, *_: (
                        (item if kind == "table" else item.table).name in SERVICES[service]
                    ),
                },
            )
            assert compare_metadata(context, SQLModel.metadata) == []
    finally:
        database.dispose()

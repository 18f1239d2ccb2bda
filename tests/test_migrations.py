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


def test_the_counts_migration_counts_the_recommendations_already_held(database_url):
    from datetime import UTC, date, datetime

    from sqlalchemy import insert, select

    from services.recommendation.models import Recommendation, RecommendationCount

    database = Database(database_url, ROOT / "services" / "recommendation" / "migrations")
    now = datetime(2026, 11, 1, tzinfo=UTC)

    def held(number: int, status: str) -> dict:
        return {
            "id": f"00000000-0000-4000-8000-{number:012d}",
            "office_id": "bawaslu-36.01",
            "province_code": "36",
            "regency_code": "36.01",
            "region_code": "36.01",
            "category": "partisan_photo",
            "source": "report",
            "election_kind": "pilkada",
            "election_year": 2024,
            "position_class": "pelaksana",
            "employment": "pns",
            "occurred_on": date(2026, 10, 30),
            "registration_number": f"REG-{number}",
            "received_at": now,
            "arrived_at": now,
            "status": status,
            "version": 1,
            "national_sequence": 0,
            "document": "x",
            "signer_jwk": "{}",
            "envelope": "x",
            "updated_at": now,
        }

    try:
        database.upgrade("0002")
        with database.engine.begin() as connection:
            connection.execute(
                insert(Recommendation.__table__),
                [held(1, "submitted"), held(2, "submitted"), held(3, "verified")],
            )
        database.upgrade()
        with database.engine.begin() as connection:
            connection.execute(insert(Recommendation.__table__), [held(4, "verified")])
            counts = connection.execute(
                select(RecommendationCount.status, RecommendationCount.count)
            ).all()
        assert sorted(counts) == [("submitted", 2), ("verified", 2)]
    finally:
        database.dispose()


@pytest.mark.parametrize(("service", "before"), [("intake", "0002"), ("recommendation", "0003")])
def test_the_audit_log_keeps_every_entry_and_its_chain_when_its_hash_index_goes(
    service, before, database_url
):
    from sqlmodel import Session, func, select

    from shared import audit

    database = Database(database_url, ROOT / "services" / service / "migrations")
    document = "00000000-0000-4000-8000-000000000001"
    try:
        database.upgrade(before)
        with Session(database.engine) as session:
            for number in range(3):
                audit.append(session, kind="received", document_id=document, details={"n": number})
            session.commit()
        database.upgrade()
        with Session(database.engine) as session:
            audit.append(session, kind="received", document_id=document, details={"n": 3})
            session.commit()
            assert session.exec(select(func.count()).select_from(audit.AuditEntry)).one() == 4
            assert audit.verify_chain(session) is None
        assert "entry_hash" not in {
            column
            for unique in inspect(database.engine).get_unique_constraints("audit_log")
            for column in unique["column_names"]
        }
    finally:
        database.dispose()

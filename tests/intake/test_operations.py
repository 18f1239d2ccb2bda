"""Specification: what operators and peers rely on — health, readiness, keys, request ids."""

import json
import logging

import pytest

from shared.problems import PROBLEM_MEDIA_TYPE

pytestmark = pytest.mark.anyio


async def test_liveness_and_readiness(intake):
    assert (await intake.get("/healthz")).json() == {"status": "ok"}
    ready = await intake.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


async def test_readiness_fails_when_migrations_are_not_at_head(intake):
    intake.app.state.database.downgrade("base")

    response = await intake.get("/readyz")

    assert response.status_code == 503
    assert response.json()["detail"] == "migrations not at head"
    assert response.headers["retry-after"]


async def test_the_service_publishes_its_signing_key(intake):
    keys = (await intake.get("/.well-known/jwks.json")).json()["keys"]

    assert [key["kid"] for key in keys] == [intake.app.state.signing_key.kid]
    assert {key["alg"] for key in keys} == {"ES256"}
    assert all("d" not in key for key in keys)


async def test_a_request_id_is_echoed_and_logged(intake, caplog):
    caplog.set_level(logging.INFO)

    response = await intake.get("/healthz", headers={"x-request-id": "trace-123"})

    assert response.headers["x-request-id"] == "trace-123"
    from shared.logs import JsonFormatter

    lines = [json.loads(JsonFormatter("intake").format(r)) for r in caplog.records]
    assert any(line.get("request_id") == "trace-123" and line["msg"] == "request" for line in lines)


async def test_a_request_without_an_id_gets_one(intake):
    response = await intake.get("/healthz")

    assert len(response.headers["x-request-id"]) == 36


async def test_an_unknown_path_is_a_problem_document(intake):
    response = await intake.get("/v1/nothing-here")

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["status"] == 404


async def test_malformed_json_to_a_json_endpoint_is_a_problem_document(intake, admin_headers):
    response = await intake.post(
        "/v1/offices/bawaslu-36.01/keys",
        content=b"{not json",
        headers={**admin_headers, "content-type": "application/json"},
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["errors"]


async def test_a_tampered_access_token_is_refused(intake, token_for):
    token = token_for("bawaslu-ri", "admin")
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"

    response = await intake.get(
        "/v1/offices/bawaslu-36.01/keys", headers={"authorization": f"Bearer {forged}"}
    )

    assert response.status_code == 401
    assert response.json()["type"].endswith("/unauthenticated")


def test_the_formatter_drops_personal_fields():
    from shared.logs import JsonFormatter

    record = logging.makeLogRecord(
        {"msg": "x", "reporter": {"name": "Warga"}, "nip": "198503122010011002", "office": "o"}
    )
    line = json.loads(JsonFormatter("intake").format(record))

    assert "reporter" not in line and "nip" not in line
    assert line["office"] == "o"


async def test_a_lost_database_is_a_503_to_retry_not_a_500(intake, token_for):
    from services.intake.app import MIGRATIONS
    from shared.db import Database
    from tests.support.postgres import free_port

    working = intake.app.state.database
    intake.app.state.database = Database(
        f"postgresql://postgres@127.0.0.1:{free_port()}/x", MIGRATIONS
    )
    headers = {"authorization": f"Bearer {token_for('bawaslu-36.01')}"}
    try:
        answer = await intake.get(
            "/v1/documents/00000000-0000-4000-8000-000000000000", headers=headers
        )
    finally:
        intake.app.state.database.dispose()
        intake.app.state.database = working

    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE


async def test_a_statement_failing_mid_submission_is_a_503_and_leaves_nothing_behind(
    intake, pandeglang
):
    """The submission's statements run on the driver (`DriverSQL`); a database error half-way
    through is still SQLAlchemy's OperationalError: answered 503 to retry, the transaction
    rolled back whole, and the same document accepted once the database is whole again."""
    from sqlalchemy import text

    from tests.conftest import submit

    database = intake.app.state.database
    with database.engine.begin() as connection:
        connection.execute(text("ALTER TABLE outbox_messages RENAME TO outbox_moved"))
    compact = pandeglang.sign()

    answer = await submit(intake, compact)

    with database.engine.begin() as connection:
        connection.execute(text("ALTER TABLE outbox_moved RENAME TO outbox_messages"))
        counts = [
            connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("documents", "registration_counters", "audit_log")
        ]
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert answer.headers["retry-after"] == "5"
    assert counts == [0, 0, 0]
    again = await submit(intake, compact)
    assert again.status_code == 201
    assert again.json()["registration_number"].endswith("-000001")

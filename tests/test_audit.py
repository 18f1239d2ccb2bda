"""Specification: every service keeps an append-only, hash-chained evidence log, and
`siapnet audit verify` names the first link that does not hold."""

import hashlib
import json
import threading

import pytest
from sqlalchemy import text
from sqlmodel import select
from typer.testing import CliRunner

from shared import audit, outbox
from shared.cli import app as cli
from shared.db import Database
from tests.conftest import submit
from tests.support.offices import example

THREADS = 20


def record(database: Database, count: int) -> None:
    """Append `count` entries, each in its own committed transaction, as a service would."""
    for n in range(count):
        with database.session() as session:
            audit.append(
                session,
                kind=audit.AuditKind.status_changed,
                document_id=f"00000000-0000-4000-8000-{n:012d}",
                details={"from": "submitted", "to": "verified", "sequence": n},
            )
            session.commit()


def tamper(database: Database, statement: str, **values: object) -> None:
    """Change the log behind the service's back, as someone with database access could."""
    with database.engine.begin() as connection:
        connection.execute(text(statement), values)


def broken_link(database: Database) -> audit.BrokenLink | None:
    with database.session() as session:
        return audit.verify_chain(session)


def entries(database: Database) -> list[audit.AuditEntry]:
    with database.session() as session:
        return list(session.exec(select(audit.AuditEntry).order_by(audit.AuditEntry.id)).all())


def test_appended_entries_form_a_chain_from_genesis_that_verifies(database):
    record(database, 5)

    chain = entries(database)
    assert [entry.id for entry in chain] == [1, 2, 3, 4, 5]
    assert [entry.previous_hash for entry in chain[1:]] == [
        entry.entry_hash for entry in chain[:-1]
    ]
    assert broken_link(database) is None
    with database.session() as session:
        assert audit.check_chain(session, batch_size=2) == audit.ChainCheck(entries=5, broken=None)


def test_an_entry_hash_is_the_sha256_of_its_canonical_json(database):
    record(database, 1)

    entry = entries(database)[0]
    content = {
        "id": 1,
        "recorded_at": entry.recorded_at.isoformat(timespec="microseconds"),
        "kind": "status_changed",
        "document_id": entry.document_id,
        "details": json.loads(entry.details),
        "previous_hash": audit.GENESIS,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert entry.entry_hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert entry.details == '{"from":"submitted","sequence":0,"to":"verified"}'


def test_an_empty_log_verifies(database):
    with database.session() as session:
        assert audit.check_chain(session) == audit.ChainCheck(entries=0, broken=None)


def test_changing_an_entrys_details_breaks_exactly_that_entry(database):
    record(database, 10)

    tamper(database, "UPDATE audit_log SET details = :d WHERE id = 7", d='{"to":"not_proven"}')

    assert broken_link(database) == audit.BrokenLink(7, "hash does not match its contents")


def test_rewriting_an_entry_and_its_hash_breaks_the_link_from_the_next_entry(database):
    record(database, 10)
    forged = entries(database)[6]
    forged_details = {"from": "submitted", "to": "returned", "sequence": 6}
    forged_hash = audit.entry_hash(
        id=7,
        recorded_at=forged.recorded_at,
        kind=forged.kind,
        document_id=forged.document_id,
        details=forged_details,
        previous_hash=forged.previous_hash,
    )

    tamper(
        database,
        "UPDATE audit_log SET details = :d, entry_hash = :h WHERE id = 7",
        d=audit.canonical_json(forged_details),
        h=forged_hash,
    )

    assert broken_link(database) == audit.BrokenLink(8, "previous_hash does not match entry 7")


def test_deleting_an_entry_in_the_middle_names_the_missing_entry(database):
    record(database, 10)

    tamper(database, "DELETE FROM audit_log WHERE id = 5")

    link = broken_link(database)
    assert link == audit.BrokenLink(5, "missing from the log")
    assert str(link) == "entry 5: missing from the log"


def test_deleting_the_first_entry_is_named(database):
    record(database, 3)

    tamper(database, "DELETE FROM audit_log WHERE id = 1")

    assert broken_link(database) == audit.BrokenLink(1, "missing from the log")


def test_changing_a_previous_hash_names_that_entry(database):
    record(database, 10)

    tamper(database, "UPDATE audit_log SET previous_hash = :h WHERE id = 8", h="f" * 64)

    assert broken_link(database) == audit.BrokenLink(8, "previous_hash does not match entry 7")


def test_details_rewritten_in_another_json_spelling_are_refused(database):
    record(database, 3)
    original = json.loads(entries(database)[1].details)

    tamper(
        database, "UPDATE audit_log SET details = :d WHERE id = 2", d=json.dumps(original, indent=1)
    )

    assert broken_link(database) == audit.BrokenLink(
        2, "details are not the canonical JSON of a dict"
    )


def test_concurrent_appends_keep_one_linear_chain(database):
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def append_one(n: int) -> None:
        try:
            start.wait()
            with database.session() as session:
                audit.append(
                    session,
                    kind=audit.AuditKind.document_received,
                    document_id=f"00000000-0000-4000-8000-{n:012d}",
                    details={"n": n},
                )
                session.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=append_one, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    chain = entries(database)
    assert [entry.id for entry in chain] == list(range(1, THREADS + 1))
    assert sorted(json.loads(entry.details)["n"] for entry in chain) == list(range(THREADS))
    assert broken_link(database) is None


def test_an_entry_rolled_back_with_its_transaction_leaves_no_trace(database):
    record(database, 2)

    with database.session() as session:
        audit.append(session, kind="document_received", document_id="x", details={"n": 99})
        session.rollback()
    record(database, 1)

    chain = entries(database)
    assert [entry.id for entry in chain] == [1, 2, 3]
    assert all(json.loads(entry.details).get("n") != 99 for entry in chain)
    assert broken_link(database) is None


def test_personal_data_is_refused_in_details(database):
    with database.session() as session, pytest.raises(ValueError, match="personal data"):
        audit.append(
            session, kind="document_received", document_id="x", details={"reporter": "Warga"}
        )


def test_the_verify_command_says_intact_and_exits_0(database, monkeypatch):
    record(database, 4)
    monkeypatch.setenv("SIAPNET_AUDIT_DATABASE_URL", database.url)

    result = CliRunner().invoke(cli, ["audit", "verify"])

    assert result.exit_code == 0, result.output
    assert "audit chain intact: 4 entries" in result.output


def test_the_verify_command_names_the_broken_entry_and_exits_1(database):
    record(database, 4)
    tamper(database, "UPDATE audit_log SET kind = 'envelope_sent' WHERE id = 3")

    result = CliRunner().invoke(cli, ["audit", "verify", "--database-url", database.url])

    assert result.exit_code == 1
    assert "audit chain broken at entry 3: hash does not match its contents" in result.output


def test_the_verify_command_refuses_a_missing_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path}/nowhere.db"

    result = CliRunner().invoke(cli, ["audit", "verify", "--database-url", url])

    assert result.exit_code == 1
    assert "no SQLite database" in result.output
    assert not (tmp_path / "nowhere.db").exists()


@pytest.mark.anyio
async def test_a_submitted_report_is_logged_as_received_and_sent_without_personal_data(
    intake, pandeglang
):
    report = example("report")
    compact = pandeglang.sign(pandeglang.payload(report))

    response = await submit(intake, compact)

    assert response.status_code == 201, response.text
    document_id = response.json()["document_id"]
    database: Database = intake.app.state.database
    chain = entries(database)
    assert [(entry.kind, entry.document_id) for entry in chain] == [
        ("document_received", document_id),
        ("envelope_sent", document_id),
    ]
    received, sent = (json.loads(entry.details) for entry in chain)
    assert received == {
        "sha256": hashlib.sha256(compact.encode()).hexdigest(),
        "registration_number": response.json()["registration_number"],
        "office": "bawaslu-36.01",
        "kid": pandeglang.key.kid,
    }
    with database.session() as session:
        message = session.exec(
            select(outbox.OutboxMessage).where(outbox.OutboxMessage.document_id == document_id)
        ).one()
    assert sent == {
        "destination": "recommendation-province-36",
        "envelope_sha256": hashlib.sha256(message.body.encode()).hexdigest(),
    }
    personal = [
        report["reporter"]["name"],
        report["reporter"]["contact"],
        report["subject"]["name"],
        report["subject"]["nip"],
    ]
    for entry in chain:
        assert not [value for value in personal if value in entry.details]
    assert broken_link(database) is None

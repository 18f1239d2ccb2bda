"""Specification: the hot writes go through `Database.run`: on SQLite one at a time on the event
loop, on PostgreSQL on the database's own threads."""

import asyncio
import sqlite3
import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from services.intake.app import MIGRATIONS
from shared.db import Database, DriverSQL, read_timestamp

pytestmark = pytest.mark.anyio


async def test_concurrent_writes_all_commit_and_sqlite_takes_them_one_at_a_time(database_url):
    database = Database(database_url, MIGRATIONS)
    database.upgrade()
    threads: set[int] = set()
    inside, most_inside = 0, 0
    guard = threading.Lock()

    def write(number: int) -> int:
        nonlocal inside, most_inside
        with guard:
            inside += 1
            most_inside = max(most_inside, inside)
        threads.add(threading.get_ident())
        try:
            with database.session() as session:
                session.connection().execute(
                    text(
                        "INSERT INTO registration_counters (office_id, year, last)"
                        " VALUES (:office, :year, 0)"
                    ),
                    {"office": f"bawaslu-{number}", "year": 2026},
                )
                session.commit()
            return number
        finally:
            with guard:
                inside -= 1

    try:
        done = await asyncio.gather(*(database.run(write, number) for number in range(60)))
        with database.session() as session:
            stored = session.connection().execute(
                text("SELECT count(*) FROM registration_counters")
            )
            assert stored.scalar_one() == 60
    finally:
        database.dispose()

    assert done == list(range(60))
    if database.engine.dialect.name == "sqlite":
        # One writer at a time: none ever waits in SQLite's sleeping busy handler.
        assert threads == {threading.get_ident()} and most_inside == 1
    else:
        assert threading.get_ident() not in threads  # never on the event loop's thread


async def test_work_on_the_loop_never_waits_for_a_lock_a_request_on_the_loop_holds(tmp_path):
    """A request on the loop may hold SQLite's lock across an `await`: work that waited for it
    on the loop would wait for ever. It waits on a thread instead, and runs once released."""
    database = Database(f"sqlite:///{tmp_path / 'intake.db'}", MIGRATIONS)
    database.upgrade()
    ran_on: list[int] = []

    def write(office: str) -> str:
        ran_on.append(threading.get_ident())
        with database.session() as session:
            session.connection().execute(
                text("INSERT INTO registration_counters (office_id, year, last) VALUES (:o, 1, 0)"),
                {"o": office},
            )
            session.commit()
        return office

    try:
        with database.session() as holder:
            holder.connection().execute(
                text("INSERT INTO registration_counters (office_id, year, last) VALUES ('a', 1, 0)")
            )
            waiting = asyncio.ensure_future(database.run(write, "b"))
            await asyncio.sleep(0.3)  # the loop is free: this returns
            assert not waiting.done()
            holder.commit()
        assert await waiting == "b"
        assert await database.run(write, "c") == "c"
        with database.session() as session:
            offices = session.connection().execute(
                text("SELECT office_id FROM registration_counters ORDER BY office_id")
            )
            assert offices.scalars().all() == ["a", "b", "c"]
    finally:
        database.dispose()

    loop_thread = threading.get_ident()
    # "b" tried the loop, found the lock taken and went to the thread; "c" ran on the loop.
    assert ran_on[0] == loop_thread and ran_on[1] != loop_thread and ran_on[2] == loop_thread


def test_a_served_sqlite_database_copies_its_log_back_in_the_background(tmp_path) -> None:
    """No commit pays for the checkpoint: the log is copied into the database file by a thread
    of its own, and that thread ends with the database."""
    path = tmp_path / "intake.db"
    database = Database(f"sqlite:///{path}", MIGRATIONS)
    database.upgrade()
    database.checkpoint_in_background(every=0.05)
    try:
        with database.session() as session:
            session.connection().execute(
                text(
                    "INSERT INTO registration_counters (office_id, year, last)"
                    " VALUES (:office, 2026, 0)"
                ),
                [{"office": f"bawaslu-{number:05d}"} for number in range(5000)],
            )
            session.commit()
        wal = tmp_path / "intake.db-wal"

        def copied() -> bool:
            # Every row is in the database file itself once the log has been copied back; a
            # reader of the file alone (immutable: no log) then finds them all.
            alone = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
            try:
                found = alone.execute("SELECT count(*) FROM registration_counters").fetchone()
            except sqlite3.OperationalError:  # not even the tables are in the file yet
                return False
            finally:
                alone.close()
            return found == (5000,)

        deadline = time.monotonic() + 10
        while not copied():
            assert time.monotonic() < deadline, "the log was not copied back within 10 s"
            time.sleep(0.05)
        assert wal.exists()  # copied by the checkpoint, not by closing the database
    finally:
        database.dispose()
    assert not [thread for thread in threading.enumerate() if thread.name == "sqlite-checkpoint"]


def test_sqlite_hands_out_the_connection_used_last(tmp_path) -> None:
    """SQLite's page cache belongs to a connection and is dropped whenever another connection
    has written, so the pool gives back the connection that worked last, with its pages warm."""
    database = Database(f"sqlite:///{tmp_path / 'intake.db'}", MIGRATIONS)
    database.upgrade()
    try:
        first, second = database.engine.connect(), database.engine.connect()
        used_last = second.connection.dbapi_connection
        first.close()
        second.close()
        for _ in range(3):
            with database.session() as session:
                connection = session.connection()
                connection.execute(text("UPDATE registration_counters SET last = last + 1"))
                assert connection.connection.dbapi_connection is used_last
                session.commit()
    finally:
        database.dispose()


def test_driver_sql_writes_rows_the_orm_reads_back_unchanged(database_url) -> None:
    """`DriverSQL` bypasses SQLAlchemy's type handling, so it must store timestamps and dates
    exactly as the ORM would: the ORM reads them back equal, timezone-aware and in UTC."""
    from datetime import UTC, date, datetime, timedelta, timezone

    from services.intake.models import Document, OfficeKey

    database = Database(database_url, MIGRATIONS)
    database.upgrade()
    jakarta = timezone(timedelta(hours=7))
    registered = datetime(2026, 11, 22, 23, 59, 59, 5, tzinfo=jakarta)
    insert_key = DriverSQL.insert(
        "office_keys", ["kid", "office_id", "jwk", "registered_at", "registered_by", "retired_at"]
    )
    by_kid = DriverSQL("SELECT registered_at, retired_at FROM office_keys WHERE kid = :kid")

    def key_row(kid: str, registered_at: datetime) -> dict:
        return {
            "kid": kid,
            "office_id": "bawaslu-36.01",
            "jwk": "{}",
            "registered_at": registered_at,
            "registered_by": "admin",
            "retired_at": None,
        }

    try:
        with database.session() as session:
            insert_key.execute(session.connection(), key_row("k1", registered))
            session.commit()
        with database.session() as session:
            key = session.get(OfficeKey, "k1")
            assert key is not None and key.registered_at == registered
            assert key.registered_at.utcoffset() == timedelta(0) and key.retired_at is None
            read_at, retired = by_kid.first(session.connection(), {"kid": "k1"})
            assert read_timestamp(read_at) == registered and read_timestamp(retired) is None
            # The ORM's own writes read back through DriverSQL the same way.
            key.registered_at = datetime(2027, 1, 1, tzinfo=UTC)
            session.commit()
            read_at, _ = by_kid.first(session.connection(), {"kid": "k1"})
            assert read_timestamp(read_at) == datetime(2027, 1, 1, tzinfo=UTC)
            session.rollback()
        with pytest.raises(ValueError, match="naive"), database.session() as session:
            insert_key.execute(session.connection(), key_row("k2", datetime(2026, 1, 1)))
        # The driver's errors are SQLAlchemy's, and never show the parameters (a document's
        # personal data would otherwise reach the logs with a traceback).
        with database.session() as session, pytest.raises(IntegrityError) as refused:
            insert_key.execute(
                session.connection(), key_row("k1", registered) | {"jwk": "Siti Rahayu"}
            )
        assert "Siti" not in str(refused.value)
        # So do SQLAlchemy's own statements.
        with database.session() as session, pytest.raises(IntegrityError) as refused:
            insert_key.execute(session.connection(), key_row("k2", registered))
            session.connection().execute(
                text("UPDATE office_keys SET kid = :kid, jwk = :jwk WHERE kid = 'k2'"),
                {"kid": "k1", "jwk": "Siti Rahayu"},
            )
        assert "Siti" not in str(refused.value)
        with database.session() as session, pytest.raises(DBAPIError):
            DriverSQL("SELECT x FROM no_such_table").first(session.connection())
        with database.session() as session:
            row = {column.name: None for column in Document.__table__.columns}
            row |= {"id": "d1", "office_id": "bawaslu-36.01", "kid": "k1", "compact": "x"}
            row |= {"sha256": "0" * 64, "registration_number": "R-1", "receipt": "y"}
            row |= {"received_at": registered, "status": "received", "region_code": "36.01"}
            row |= {"province_code": "36", "category": "c", "source": "s", "election_kind": "k"}
            row |= {"election_year": 2026, "occurred_on": date(2026, 2, 28)}
            DriverSQL.insert("documents", list(row)).execute(session.connection(), row)
            session.commit()
        with database.session() as session:
            document = session.get(Document, "d1")
            assert document is not None and document.occurred_on == date(2026, 2, 28)
            assert document.received_at == registered
    finally:
        database.dispose()


def test_driver_sql_names_parameters_in_each_drivers_style() -> None:
    statement = DriverSQL("SELECT :a::text, '100%' WHERE x = :b_2")
    assert statement.sql["sqlite"] == "SELECT :a::text, '100%' WHERE x = :b_2"
    assert statement.sql["postgresql"] == "SELECT %(a)s::text, '100%%' WHERE x = %(b_2)s"

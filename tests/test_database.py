"""Specification: the hot writes go through `Database.run`: on SQLite one at a time on the event
loop, the work of one turn of the loop under one commit; on PostgreSQL on the database's own
threads."""

import asyncio
import sqlite3
import threading
import time

import pytest
from sqlalchemy import event, text

from services.intake.app import MIGRATIONS
from shared.db import Database

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
    # "b" found the lock taken and ran on the thread, once; "c" ran on the loop.
    assert ran_on[0] != loop_thread and ran_on[1] == loop_thread and len(ran_on) == 2


def _sqlite(tmp_path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'intake.db'}", MIGRATIONS)
    database.upgrade()
    return database


def _insert(database: Database, office: str) -> None:
    with database.session() as session:
        session.connection().execute(
            text("INSERT INTO registration_counters (office_id, year, last) VALUES (:o, 1, 0)"),
            {"o": office},
        )
        session.commit()


def _stored(path) -> list[str]:
    """What another connection (another process, say) sees committed."""
    with sqlite3.connect(path) as reader:
        rows = reader.execute("SELECT office_id FROM registration_counters ORDER BY office_id")
        return [office for (office,) in rows]


def _counting_commits(database: Database) -> list[None]:
    commits: list[None] = []
    event.listen(database.engine, "commit", lambda _connection: commits.append(None))
    return commits


async def test_the_work_of_one_turn_of_the_loop_shares_one_commit(tmp_path):
    database = _sqlite(tmp_path)
    commits = _counting_commits(database)

    def write(office: str) -> str:
        _insert(database, office)
        return office

    try:
        answered = await asyncio.gather(*(database.run(write, f"o{n}") for n in range(8)))
        # Answered only once committed: another connection sees every row.
        assert _stored(tmp_path / "intake.db") == [f"o{n}" for n in range(8)]
    finally:
        database.dispose()

    assert answered == [f"o{n}" for n in range(8)]
    assert len(commits) == 1


async def test_work_that_fails_after_writing_leaves_nothing_and_the_rest_is_done_again(tmp_path):
    database = _sqlite(tmp_path)
    ran: list[str] = []

    def write(office: str) -> str:
        ran.append(office)
        _insert(database, office)
        return office

    def write_then_fail(office: str) -> str:
        ran.append(office)
        with database.session() as session:
            session.connection().execute(
                text("INSERT INTO registration_counters (office_id, year, last) VALUES (:o, 1, 0)"),
                {"o": office},
            )
            raise ValueError("refused half-way")

    try:
        answers = await asyncio.gather(
            database.run(write, "a"),
            database.run(write_then_fail, "b"),
            database.run(write, "c"),
            return_exceptions=True,
        )
        stored = _stored(tmp_path / "intake.db")
    finally:
        database.dispose()

    assert answers[0] == "a" and answers[2] == "c"
    assert isinstance(answers[1], ValueError)
    assert stored == ["a", "c"]  # nothing of "b", and "a" once though its work ran twice
    assert sorted(ran) == ["a", "a", "b", "c"]


async def test_work_refused_before_writing_does_not_disturb_its_group(tmp_path):
    database = _sqlite(tmp_path)
    commits = _counting_commits(database)

    def write(office: str) -> str:
        _insert(database, office)
        return office

    def refuse(_office: str) -> str:
        raise ValueError("refused before any write")

    try:
        answers = await asyncio.gather(
            database.run(write, "a"),
            database.run(refuse, "b"),
            database.run(write, "c"),
            return_exceptions=True,
        )
        stored = _stored(tmp_path / "intake.db")
        # A refusal that nobody else waits on does not keep the lock until the loop turns.
        with pytest.raises(ValueError):
            await database.run(refuse, "d")
        _insert(database, "e")  # at once, on the loop's own thread, outside `run`
    finally:
        database.dispose()

    assert answers[0] == "a" and isinstance(answers[1], ValueError) and answers[2] == "c"
    assert stored == ["a", "c"]
    assert len(commits) == 2  # the group of a and c, then e


async def test_a_failed_commit_reaches_every_piece_of_work_and_keeps_nothing(tmp_path):
    database = _sqlite(tmp_path)

    def refuse_commit(_connection) -> None:
        raise OSError("disk full")

    event.listen(database.engine, "commit", refuse_commit)

    def write(office: str) -> str:
        _insert(database, office)
        return office

    try:
        answers = await asyncio.gather(
            *(database.run(write, office) for office in "abc"), return_exceptions=True
        )
        event.remove(database.engine, "commit", refuse_commit)
        stored = _stored(tmp_path / "intake.db")
    finally:
        database.dispose()

    assert all(isinstance(answer, OSError) for answer in answers)
    assert stored == []


async def test_a_caller_that_gives_up_does_not_cancel_the_commit_others_wait_on(tmp_path):
    database = _sqlite(tmp_path)

    def write(office: str) -> str:
        _insert(database, office)
        return office

    try:
        first = asyncio.ensure_future(database.run(write, "a"))
        second = asyncio.ensure_future(database.run(write, "b"))
        await asyncio.sleep(0)  # both have written and wait for the commit
        first.cancel()
        assert await second == "b"
        stored = _stored(tmp_path / "intake.db")
    finally:
        database.dispose()

    assert first.cancelled()
    assert stored == ["a", "b"]  # written before it gave up, committed with the rest


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

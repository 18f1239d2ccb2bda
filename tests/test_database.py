"""Specification: blocking database work leaves the event loop through `Database.run`."""

import asyncio
import threading

import pytest
from sqlalchemy import text

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
        # One writer thread: no writer ever waits in SQLite's sleeping busy handler.
        assert len(threads) == 1 and most_inside == 1
    else:
        assert threading.get_ident() not in threads  # never on the event loop's thread

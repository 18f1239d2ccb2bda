"""Database engines, sessions and migrations, the same for every service.

SQLite (the embedded default) runs in WAL mode with foreign keys on, and every transaction begins
IMMEDIATE: it takes the write lock up front and waits for it (busy_timeout) instead of failing
half-way when two writers meet. PostgreSQL is reached with psycopg 3.

The hot writes (a submission, an envelope, a status event, an outbox pass) go through
`Database.run`. On SQLite it runs the work right there, on the event loop, one piece at a time:
SQLite has a single writer anyway, and writers that take turns hand the lock on at once, where
SQLite's own busy-wait sleeps up to 100 ms between tries (under load that was most of intake's
p99). A thread of its own did the same at first, but handing each piece of work over and back
made the two threads trade the GIL at every statement: on the loop, intake spends a quarter
less CPU per submission (2.7-3.7 -> 2.0-2.5 ms) and takes half again as many (221-309 ->
351-443/s; the `make bench` setup, old and new code alternating, 2026-11-22). Work on the
loop never waits for the lock, though, as its holder may be a request on the same loop: when
the lock is taken, the work goes to a thread of its own and waits there. On PostgreSQL
the work goes to a few threads, fewer than the pooled connections, and the loop serves others
while the server answers: with anyio's 40 worker threads, every thread beyond the pool opened a
connection of its own and closed it after one use (a quarter of intake's submissions under
load, and most of its CPU).

A served SQLite database copies its write-ahead log back into the database file from a thread
of its own (`checkpoint_in_background`). Left to SQLite, the commit that takes the log past
1,000 pages does the copy and its fsync: one submission in a hundred waited 8 ms or more for it.
"""

import asyncio
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, DateTime, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, create_engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
# PostgreSQL connections kept open per service, and how many more reads may open for a moment.
POOL_SIZE = 10
POOL_OVERFLOW = 20
# Threads for `Database.run` on PostgreSQL. More threads than this spent their time handing
# the GIL round while they waited on the database: intake took 96-99 submissions/s with 10,
# 133 with 4, 107 with 2 (32 connections, all four services and PostgreSQL on two cores).
POSTGRESQL_THREADS = 4
# How often a served SQLite database's log is copied back into it, and the log's length at
# which a commit does the copy itself anyway (SQLite's default is 1,000 pages): the backstop
# should the background copy ever stall.
SQLITE_CHECKPOINT_SECONDS = 0.2
SQLITE_AUTOCHECKPOINT_PAGES = 4_000
SQLITE_CHECKPOINT_TRIES = 10
T = TypeVar("T")

log = logging.getLogger("siapnet.db")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; give a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class DriverSQL:
    """A statement every submission runs, as plain SQL on the driver's own cursor, inside the
    caller's SQLAlchemy transaction.

    SQLAlchemy Core spends about 24 µs a statement above the driver (26 µs against sqlite3's
    2 µs), and a submission runs seven: under load that was a fifth of intake's time. The SQL
    names its parameters (`:name`); values may be str, int, None, dates and timezone-aware
    datetimes, which are stored as `UTCDateTime` stores them, so the ORM reads the rows back
    unchanged (`read_timestamp` reads them here). The driver's errors become SQLAlchemy's, as
    SQLAlchemy would raise them (an `IntegrityError`, an `OperationalError` answered with 503),
    without the parameters, which may carry a document's personal data."""

    def __init__(self, sql: str) -> None:
        postgresql = _NAMED_PARAMETER.sub(r"%(\1)s", sql.replace("%", "%%"))
        self.sql = {"sqlite": sql, "postgresql": postgresql}

    @classmethod
    def insert(cls, table: str, columns: list[str]) -> "DriverSQL":
        """`INSERT INTO table (columns) VALUES (:column, …)`."""
        names = ", ".join(columns)
        values = ", ".join(f":{column}" for column in columns)
        return cls(f"INSERT INTO {table} ({names}) VALUES ({values})")

    def execute(self, connection: Connection, parameters: dict[str, Any] | None = None) -> None:
        self._run(connection, parameters).close()

    def execute_many(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        self._run(connection, rows, many=True).close()

    def first(self, connection: Connection, parameters: dict[str, Any] | None = None) -> Any:
        """The first row, or None."""
        cursor = self._run(connection, parameters)
        row = cursor.fetchone()
        cursor.close()
        return row

    def _run(self, connection: Connection, parameters: Any, *, many: bool = False) -> Any:
        """The driver's cursor, having run the statement."""
        dialect = connection.dialect
        sql = self.sql[dialect.name]
        cursor = connection.connection.driver_connection.cursor()
        try:
            if many:
                cursor.executemany(sql, [_for_driver(row, dialect.name) for row in parameters])
            else:
                cursor.execute(sql, _for_driver(parameters or {}, dialect.name))
        except dialect.loaded_dbapi.Error as error:
            cursor.close()
            raise as_sqlalchemy_error(connection, error, sql) from error
        return cursor


def as_sqlalchemy_error(connection: Connection, error: Exception, sql: str) -> Exception:
    """The exception SQLAlchemy raises for a driver's `error`, its connection invalidated when
    the error says the database is gone; its parameters are never shown."""
    dialect = connection.dialect
    gone = dialect.is_disconnect(error, connection.connection.dbapi_connection, None)
    if gone:
        connection.invalidate(error)
    return DBAPIError.instance(
        sql,
        None,
        error,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=gone,
        dialect=dialect,
    )


_NAMED_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")


def _for_driver(parameters: dict[str, Any], dialect: str) -> dict[str, Any]:
    on_sqlite = dialect == "sqlite"
    return {name: _driver_value(value, on_sqlite) for name, value in parameters.items()}


def _driver_value(value: Any, on_sqlite: bool) -> Any:
    # SQLAlchemy's SQLite DATETIME and DATE store ISO text; UTCDateTime stores UTC, naive.
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; give a timezone")
        if on_sqlite:
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    elif on_sqlite and isinstance(value, date):
        return value.isoformat()
    return value


def connection_of(db: Session | Connection) -> Connection:
    """The connection plain SQL runs on: a session's, in the session's transaction, or the one
    given (the hot paths hold a connection, not a session)."""
    return db.connection() if isinstance(db, Session) else db


def read_timestamp(value: str | datetime | None) -> datetime | None:
    """A timestamp column as `DriverSQL` reads it (text on SQLite), timezone-aware in UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC)


def normalise_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` URLs and use psycopg 3 for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
            hide_parameters=True,  # as below
        )

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        # The connection used last, not the one idle longest: SQLite keeps its pages per
        # connection and drops them all once another connection has written. Taken in turns,
        # the pool's connections re-read every page they touched (intake read 53-58 times per
        # submission instead of 18-22, and its slowest answers under load took twice as long).
        pool_use_lifo=True,
        # A failed statement's parameters may be a document and its reporter's identity;
        # errors (and so the tracebacks in the logs) never show them.
        hide_parameters=True,
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        # BEGIN and the pragmas straight on the driver's connection: through SQLAlchemy each
        # cost what a statement of the submission does.
        driver = connection.connection.driver_connection
        turn = _ON_THE_LOOP
        if not turn.active or turn.began:
            _begin_immediate(connection, driver)
            return
        # On the event loop nothing may wait for the lock: its holder may be a request that
        # needs the loop to finish. Take the lock now or hand the work to the thread.
        driver.execute("PRAGMA busy_timeout=0")
        try:
            _begin_immediate(connection, driver)
        except OperationalError as error:
            if getattr(error.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY:
                raise LockTaken from error
            raise
        finally:
            driver.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        turn.began = True

    return engine


def _begin_immediate(connection: Connection, driver: sqlite3.Connection) -> None:
    try:
        driver.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as error:
        raise as_sqlalchemy_error(connection, error, "BEGIN IMMEDIATE") from error


class LockTaken(Exception):
    """SQLite's write lock was held elsewhere when work on the event loop began."""


class _Turn(threading.local):
    """Set while `Database.run` runs work on the event loop (see `_begin`)."""

    active = False
    began = False


_ON_THE_LOOP = _Turn()


class Database:
    """One service's database: its engine and the Alembic scripts that shape it."""

    def __init__(self, url: str, migrations: Path) -> None:
        self.url = normalise_url(url)
        self.migrations = migrations
        self.engine = make_engine(self.url)
        self._on_the_loop = self.engine.dialect.name == "sqlite"
        self._threads = ThreadPoolExecutor(
            max_workers=1 if self._on_the_loop else POSTGRESQL_THREADS,
            thread_name_prefix="database",
        )
        self._checkpoints: tuple[threading.Event, threading.Thread] | None = None

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)`, a short piece of database work in one transaction, awaited: on SQLite
        here on the event loop, on PostgreSQL on one of the database's threads (see the
        module's notes). On SQLite, work whose transaction finds the lock taken (a request on
        this loop may hold it across an `await`) goes to a thread and waits there instead:
        nothing of it has happened yet but computation, which it does again."""
        if self._on_the_loop:
            _ON_THE_LOOP.active, _ON_THE_LOOP.began = True, False
            try:
                return work(*args)
            except LockTaken:
                pass
            finally:
                _ON_THE_LOOP.active = False
        return await asyncio.wrap_future(self._threads.submit(work, *args))

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection for work that runs plain SQL in transactions of its own (`DriverSQL`),
        without an ORM session's bookkeeping."""
        with self.engine.connect() as connection:
            yield connection

    def alembic_config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(self.migrations))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return config

    def upgrade(self, revision: str = "head") -> None:
        with self.engine.begin() as connection:
            config = self.alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def downgrade(self, revision: str = "base") -> None:
        with self.engine.begin() as connection:
            config = self.alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, revision)

    def head(self) -> str | None:
        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()

    def current(self) -> str | None:
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def at_head(self) -> bool:
        return self.current() == self.head()

    def checkpoint_in_background(self, every: float = SQLITE_CHECKPOINT_SECONDS) -> None:
        """On a SQLite file, copy the write-ahead log into the database every `every` seconds
        from a thread of its own, so that no request's commit does it (until `dispose`). A
        PASSIVE checkpoint never waits for the writer, nor the writer for it."""
        if self.engine.dialect.name != "sqlite" or self._checkpoints is not None:
            return
        if make_url(self.url).database in (None, "", ":memory:"):
            return
        stop = threading.Event()
        thread = threading.Thread(
            target=self._checkpoint_until,
            args=(stop, every),
            name="sqlite-checkpoint",
            daemon=True,  # a checkpoint cut short is safe: SQLite finishes it later
        )
        self._checkpoints = (stop, thread)
        thread.start()

    def _checkpoint_until(self, stop: threading.Event, every: float) -> None:
        while not stop.wait(every):
            try:
                connection = self.engine.raw_connection()
                try:
                    _checkpoint(connection.driver_connection)
                finally:
                    connection.close()
            except Exception:
                log.warning("the SQLite checkpoint failed; retrying", exc_info=True)

    def dispose(self) -> None:
        if self._checkpoints is not None:
            stop, thread = self._checkpoints
            stop.set()
            thread.join()
            self._checkpoints = None
        self._threads.shutdown(wait=True)
        self.engine.dispose()


def _checkpoint(connection: Any) -> None:
    """Copy the log into the database without ever waiting for the writer. Only a log copied
    whole lets the next commit start it afresh, and commits keep landing while a copy runs, so
    copy again, each time only what arrived meanwhile, until a copy catches up (with a single
    copy a second, the log of a steadily loaded intake grew to 82 MB and stayed there)."""
    for _ in range(SQLITE_CHECKPOINT_TRIES):
        # Outside any transaction: the DBAPI connection is in autocommit mode.
        _busy, frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if copied >= frames:
            return


def run_migrations(tables: tuple[str, ...]) -> None:
    """The body of every service's Alembic `env.py`: migrate the service's own tables, on the
    connection `Database` passes in, or on the URL of the alembic config when run by hand."""
    from alembic import context
    from sqlalchemy import engine_from_config, pool
    from sqlmodel import SQLModel

    def include_object(item, name, type_, _reflected, _compare_to) -> bool:
        table = item if type_ == "table" else getattr(item, "table", None)
        return table is None or table.name in tables

    def run(connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=SQLModel.metadata,
            include_object=include_object,
            compare_type=True,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()

    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as fresh:
        run(fresh)

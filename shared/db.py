"""Database engines, sessions and migrations, the same for every service.

SQLite (the embedded default) runs in WAL mode with foreign keys on, and every transaction begins
IMMEDIATE: it takes the write lock up front and waits for it (busy_timeout) instead of failing
half-way when two writers meet. PostgreSQL is reached with psycopg 3.

Blocking database work leaves the event loop through `Database.run`. On SQLite that is one
thread per database, one piece of work at a time: SQLite has a single writer anyway, and a queue
in front of it hands the lock on at once, where SQLite's own busy-wait sleeps up to 100 ms
between tries (under load that was most of intake's p99). On PostgreSQL, any worker thread.
"""

import asyncio
import functools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import DateTime, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, create_engine
from starlette.concurrency import run_in_threadpool

SQLITE_BUSY_TIMEOUT_MS = 30_000
T = TypeVar("T")


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
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """One service's database: its engine and the Alembic scripts that shape it."""

    def __init__(self, url: str, migrations: Path) -> None:
        self.url = normalise_url(url)
        self.migrations = migrations
        self.engine = make_engine(self.url)
        self._sqlite_thread = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
            if self.engine.dialect.name == "sqlite"
            else None
        )

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` on a thread of its own, awaited: see the module's notes."""
        if self._sqlite_thread is not None:
            return await asyncio.wrap_future(self._sqlite_thread.submit(work, *args))
        return await run_in_threadpool(functools.partial(work, *args))

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

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

    def dispose(self) -> None:
        if self._sqlite_thread is not None:
            self._sqlite_thread.shutdown(wait=True)
        self.engine.dispose()


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

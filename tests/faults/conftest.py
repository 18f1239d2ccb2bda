"""The exchange as real OS processes for the fault suite, on SQLite files (the embedded default)
and on PostgreSQL (one database per service on a throwaway cluster)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.exchange import SERVICES, ProcessExchange


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def process_exchange(request, tmp_path: Path) -> Iterator[ProcessExchange]:
    """Gateway, intake, Banten and national started and ready, demo accounts seeded and the
    Banten offices' keys registered; stopped at the end."""
    var = tmp_path / "var"
    var.mkdir()
    databases = {}  # the SQLite files of `make run`
    if request.param == "postgres":
        cluster = request.getfixturevalue("postgres_cluster")
        databases = {service: cluster.create_database() for service in SERVICES}
    exchange = ProcessExchange(var, databases)
    try:
        exchange.start_all()
        yield exchange
    finally:
        exchange.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed fault test shows the last lines each service logged, and where its logs are."""
    report = yield
    exchange = item.funcargs.get("process_exchange") if hasattr(item, "funcargs") else None
    if report.failed and call.when == "call" and exchange is not None:
        for name in SERVICES:
            report.sections.append(
                (f"{name} log ({exchange.log_path(name)})", exchange.tail(name, lines=25))
            )
    return report

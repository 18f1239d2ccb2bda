"""Totals over a million recommendations on PostgreSQL: a throwaway cluster, the recommendation
service's real schema and indexes, rows loaded with COPY, the real /v1/stats answering over
ASGI for a national and a provincial caller."""

import asyncio
import json
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

from services.recommendation.app import MIGRATIONS, create_app
from services.recommendation.settings import RecommendationSettings
from shared import regions
from shared.codes import Category, Employment, PositionClass
from shared.db import Database
from shared.entrypoint import frozen_after_startup
from shared.identity import mint_access_token
from shared.lifecycle import Status
from shared.signing import KeyPair, jwks
from tests.support.postgres import NoPostgres, start_cluster

QUERIES = {
    "national: total": ("bawaslu-ri", "/v1/stats"),
    "national: by status": ("bawaslu-ri", "/v1/stats?group_by=status"),
    "national: by region and category": ("bawaslu-ri", "/v1/stats?group_by=region,category"),
    "national: by election, last 90 days": (
        "bawaslu-ri",
        "/v1/stats?group_by=election&since=" + (date.today() - timedelta(days=90)).isoformat(),
    ),
    "national: vulnerability": ("bawaslu-ri", "/v1/stats/vulnerability"),
    "Banten: by region and status": ("bawaslu-36", "/v1/stats?group_by=region,status"),
    "Banten: vulnerability": ("bawaslu-36", "/v1/stats/vulnerability"),
}
REPEATS = 15
PPK_DAYS = timedelta(days=20)


def _rows(count: int):
    random.seed(7)
    regencies = [r for p in regions.provinces() for r in regions.regencies(p.code)]
    statuses, categories = list(Status), list(Category)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    day = date.today()
    # Rows are stored in the order they arrive, as the service stores them: a time filter then
    # reads one stretch of the table, not a page here and there across all of it.
    moments = sorted(random.randrange(0, 3 * 365 * 86400) for _ in range(count))
    for number, moment in enumerate(moments):
        regency = random.choice(regencies)
        received = start + timedelta(seconds=moment)
        status = random.choice(statuses)
        if status is Status.sanction_recommended and received.date() + PPK_DAYS < day:
            # What national's overdue job has made of it by now: timing totals while that job
            # marks tens of thousands of rows would time the job, not the totals.
            status = Status.overdue
        yield (
            str(uuid.UUID(int=random.getrandbits(128))),
            f"bawaslu-{regency.code}",
            regency.province_code,
            regency.code,
            regency.code,
            random.choice(categories).value,
            "finding",
            random.choice(("pemilu", "pilkada")),
            random.choice((2024, 2029)),
            random.choice(list(PositionClass)).value,
            random.choice(list(Employment)).value,
            received.date(),
            f"{regency.code.replace('.', '')}-{received.year}-{number:06d}",
            received,
            received,
            status.value,
            1,
            0,
            received.date() + timedelta(days=9),
            None,
            received.date() + PPK_DAYS,
            "x",
            "{}",
            "x",
            received,
        )


COLUMNS = (
    "id, office_id, province_code, regency_code, region_code, category, source, election_kind, "
    "election_year, position_class, employment, occurred_on, registration_number, received_at, "
    "arrived_at, status, version, national_sequence, review_due_on, reviewed_on, ppk_due_on, "
    "document, signer_jwk, envelope, updated_at"
)


def measure(rows: int = 1_000_000) -> dict:
    try:
        cluster = start_cluster()
    except NoPostgres as exc:
        return {"skipped": str(exc)}
    try:
        url = cluster.create_database()
        database = Database(url, MIGRATIONS)
        database.upgrade()
        database.dispose()
        started = time.perf_counter()
        with psycopg.connect(url) as connection:
            # COPY FREEZE into a table emptied in the same transaction: the rows are written
            # visible to all, so totals can read an index alone from the first query.
            connection.execute("TRUNCATE recommendations, status_history")
            with connection.cursor().copy(
                f"COPY recommendations ({COLUMNS}) FROM STDIN (FREEZE)"
            ) as copy:
                for row in _rows(rows):
                    copy.write_row(row)
        with psycopg.connect(url, autocommit=True) as connection:
            # The counts the trigger kept hold a million superseded versions after the bulk
            # load; VACUUM FULL leaves them the size they have when counted as rows arrive,
            # autovacuum running.
            connection.execute("VACUUM (FULL, ANALYZE) recommendation_counts")
            connection.execute("ANALYZE recommendations")
            pages, visible = connection.execute(
                "SELECT relpages, relallvisible FROM pg_class WHERE relname = 'recommendations'"
            ).fetchone()
        loaded = time.perf_counter() - started
        return {
            "cluster": cluster.where,
            "rows": rows,
            "load_seconds": loaded,
            "pages_all_visible": visible / pages,
            "queries": asyncio.run(_time(url)),
        }
    finally:
        cluster.stop()


async def _time(url: str) -> dict:
    directory = Path(tempfile.mkdtemp(prefix="siapnet-totals-"))
    identity = KeyPair.generate()
    (directory / "identity.jwks.json").write_text(json.dumps(jwks(identity.public_jwk)))
    settings = RecommendationSettings(
        tier="national",
        database_url=url,
        key_dir=directory / "keys",
        identity_jwks_file=directory / "identity.jwks.json",
        relay_enabled=False,
        overdue_check_seconds=3600,
    )
    app = frozen_after_startup(create_app(settings))  # as `python -m services...` serves it

    def token(office: str) -> str:
        return mint_access_token(
            identity, subject="bench", office=office, roles=["officer"], token_id=str(uuid.uuid4())
        )

    timings = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://national") as client:
            for name, (office, path) in QUERIES.items():
                headers = {"authorization": f"Bearer {token(office)}"}
                samples = []
                for attempt in range(REPEATS + 2):
                    started = time.perf_counter()
                    answer = await client.get(path, headers=headers)
                    elapsed = (time.perf_counter() - started) * 1000
                    answer.raise_for_status()
                    if attempt >= 2:  # the first two warm the caches
                        samples.append(elapsed)
                samples.sort()
                timings[name] = {
                    "p50_ms": statistics.median(samples),
                    "p95_ms": samples[int(len(samples) * 0.95) - 1],
                }
    return timings

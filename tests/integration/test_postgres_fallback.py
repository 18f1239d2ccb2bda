"""Specification: on a machine with a Docker engine but no PostgreSQL server binaries, the tests'
and the benchmark's throwaway PostgreSQL runs in a container of the suite's own image, its port
published on 127.0.0.1 only, tuned like the local one, and gone once stopped."""

import docker
import psycopg
import pytest
from docker.errors import NotFound

from services.recommendation.app import MIGRATIONS
from shared.db import Database
from tests.support import postgres

pytestmark = pytest.mark.containers


def test_without_server_binaries_the_cluster_runs_in_a_container(images, monkeypatch) -> None:
    monkeypatch.setattr(postgres, "server_binaries", lambda: None)
    cluster = postgres.start_cluster()
    try:
        assert isinstance(cluster, postgres.ContainerCluster)
        url = cluster.create_database()
        database = Database(url, MIGRATIONS)
        database.upgrade()
        database.dispose()
        with psycopg.connect(url) as connection:
            tables = connection.execute(
                "SELECT count(*) FROM pg_tables WHERE tablename = 'recommendations'"
            ).fetchone()
            settings = {
                name: connection.execute(f"SHOW {name}").fetchone()[0]
                for name in postgres.THROWAWAY_SETTINGS
            }
        assert tables == (1,)
        assert settings == postgres.THROWAWAY_SETTINGS
        client = docker.from_env()
        published = client.containers.get(cluster.container.id).ports["5432/tcp"]
        assert [binding["HostIp"] for binding in published] == ["127.0.0.1"]
        name = cluster.container.name
    finally:
        cluster.stop()
    with pytest.raises(NotFound):
        client.containers.get(name)

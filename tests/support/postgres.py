"""A throwaway PostgreSQL cluster on a free loopback port, for tests and the benchmark.

`start_cluster` uses the PostgreSQL 15 server binaries when the machine has them (DESIGN §7: a
cluster in a temporary directory, run as the `postgres` user when we are root). A machine with a
Docker engine but no server binaries gets the same in a container of the image the container
suite builds (`deploy/airgap`), built first if it is missing. Each test gets a database of its own.
"""

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

BIN_DIRS = [Path("/usr/lib/postgresql/15/bin"), Path("/usr/lib/postgresql/16/bin")]
ROOT = Path(__file__).resolve().parents[2]
POSTGRES_IMAGE = os.environ.get("SIAPNET_POSTGRES_IMAGE", "siapnet-postgres:15")
# A throwaway cluster trades durability for speed; these are reloadable, so a running server
# (the container's) takes them too.
THROWAWAY_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class NoPostgres(RuntimeError):
    """Neither PostgreSQL server binaries nor a Docker engine to run one in."""


def start_cluster() -> "Cluster":
    """A started throwaway cluster: from the server binaries, else in a container."""
    binaries = server_binaries()
    if binaries is not None:
        return ThrowawayCluster(binaries).start()
    if docker_answers():
        return ContainerCluster().start()
    raise NoPostgres(
        "no PostgreSQL server binaries and no Docker engine: install the server with"
        " `apt-get install postgresql-15`, or start Docker with `bash deploy/docker-engine.sh`"
    )


def docker_answers() -> bool:
    import docker  # only machines without the server binaries need it
    from docker.errors import DockerException

    try:
        client = docker.from_env()
    except DockerException:
        return False
    try:
        return bool(client.ping())
    except DockerException:
        return False
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_binaries() -> Path | None:
    for directory in BIN_DIRS:
        if (directory / "initdb").exists():
            return directory
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class Cluster:
    """What the tests and the benchmark use of a cluster: URLs, and a fresh database."""

    def url(self, database: str = "postgres") -> str:
        raise NotImplementedError

    def create_database(self) -> str:
        name = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


class ThrowawayCluster(Cluster):
    where = "server binaries, temporary directory"

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.directory = Path(tempfile.mkdtemp(prefix="siapnet-pg-"))
        self.port = free_port()
        self.as_root = os.geteuid() == 0

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> "ThrowawayCluster":
        if self.as_root:
            shutil.chown(self.directory, "postgres")
        data = self.directory / "data"
        self._run(str(self.binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
        throwaway = " ".join(f"-c {name}={value}" for name, value in THROWAWAY_SETTINGS.items())
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
            f" {throwaway} -c max_connections=200"
        )
        self._run(
            str(self.binaries / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.directory / "log"),
            "-w",
            "start",
        )
        return self

    def stop(self) -> None:
        try:
            self._run(
                str(self.binaries / "pg_ctl"),
                "-D",
                str(self.directory / "data"),
                "-m",
                "immediate",
                "stop",
            )
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


class ContainerCluster(Cluster):
    """The same cluster as a container, its port published on 127.0.0.1 only."""

    def __init__(self, image: str = POSTGRES_IMAGE) -> None:
        self.image = image
        self.where = f"container of {image}"
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        self.container = None

    def start(self, timeout: float = 90.0) -> "ContainerCluster":
        import docker
        from docker.errors import ImageNotFound

        client = docker.from_env()
        try:
            client.images.get(self.image)
        except ImageNotFound:
            subprocess.run(
                ["bash", "deploy/airgap/build-base.sh"],
                cwd=ROOT,
                env={**os.environ, "POSTGRES_TAG": self.image},
                check=True,
                capture_output=True,
                timeout=900,
            )
        self.container = client.containers.run(
            self.image,
            detach=True,
            name=f"siapnet-pg-{uuid.uuid4().hex[:12]}",
            environment={"POSTGRES_PASSWORD": self.password},
            ports={"5432/tcp": ("127.0.0.1", self.port)},
        )
        deadline = time.monotonic() + timeout
        while True:  # the first start runs a socket-only server while it makes the cluster
            try:
                with psycopg.connect(self.url(), autocommit=True, connect_timeout=2) as connection:
                    for name, value in THROWAWAY_SETTINGS.items():
                        connection.execute(f"ALTER SYSTEM SET {name} = '{value}'")
                    connection.execute("SELECT pg_reload_conf()")
                return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.3)

    def stop(self) -> None:
        if self.container is not None:
            self.container.remove(force=True)
            self.container = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

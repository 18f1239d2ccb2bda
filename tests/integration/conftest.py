"""The exchange in containers: the images (built when missing), then PostgreSQL and every service
of deploy/compose.yaml on one Docker network, shared by the tests and removed at the end.

No Docker engine: skipped with how to start one, except in CI (`CI=true`), where it fails.
"""

import os
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

# testcontainers reads these when imported (DESIGN §7): no reaper (its image cannot be pulled),
# and containers reached through ports published on 127.0.0.1 — this machine has a /.dockerenv.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
os.environ.setdefault("TC_HOST", "127.0.0.1")

import docker
from docker.errors import DockerException, ImageNotFound

from tests.conftest import IN_CI
from tests.integration.exchange import (
    IMAGE,
    POSTGRES_IMAGE,
    SERVICES,
    Exchange,
    start_exchange,
)

ROOT = Path(__file__).resolve().parents[2]


def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except DockerException as error:
        message = (
            f"no Docker engine answers ({error}); start one with `bash deploy/docker-engine.sh`"
        )
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return client


def missing_images(client: docker.DockerClient) -> list[str]:
    missing = []
    for image in (IMAGE, POSTGRES_IMAGE):
        try:
            client.images.get(image)
        except ImageNotFound:
            missing.append(image)
    return missing


def build(*command: str, **environment: str) -> None:
    done = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}", pytrace=False)


@pytest.fixture(scope="session")
def images() -> None:
    """siapnet:latest and siapnet-postgres:15 (or SIAPNET_IMAGE, SIAPNET_POSTGRES_IMAGE): reused
    when present, else built as `make up` does (the air-gapped Debian base, then the image from
    wheels)."""
    client = docker_client()
    try:
        if missing_images(client):
            build("bash", "deploy/airgap/build-base.sh", POSTGRES_TAG=POSTGRES_IMAGE)
            build("bash", "deploy/build-image.sh", BASE_IMAGE="siapnet-base:bookworm", IMAGE=IMAGE)
        still_missing = missing_images(client)
    finally:
        client.close()
    if still_missing:
        pytest.fail(f"the build did not make {still_missing}", pytrace=False)


@pytest.fixture(scope="session")
def exchange(images, tmp_path_factory) -> Iterator[Exchange]:
    """The whole exchange, up and ready, with the first admin created inside the gateway."""
    with ExitStack() as stack:
        yield start_exchange(stack, tmp_path_factory.mktemp("exchange"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed container test shows the last lines each service logged."""
    report = yield
    exchange = item.funcargs.get("exchange") if hasattr(item, "funcargs") else None
    if report.failed and call.when == "call" and exchange is not None:
        for name in ("postgres", *SERVICES):
            try:
                report.sections.append((f"{name} logs", exchange.logs(name)))
            except DockerException:
                continue
    return report

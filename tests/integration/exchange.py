"""The compose topology (deploy/compose.yaml) started with testcontainers, and the HTTPS client
the tests use to talk to it through the gateway — the only port published, on 127.0.0.1.

Import this only after tests/integration/conftest.py has set the testcontainers environment.
"""

import io
import json
import os
import secrets
import ssl
import tarfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import docker
import httpx
from docker.errors import APIError, NotFound
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from tests.support.offices import OfficeSigner

# The images deploy/compose.yaml runs, overridable the same way.
IMAGE = os.environ.get("SIAPNET_IMAGE", "siapnet:latest")
POSTGRES_IMAGE = os.environ.get("SIAPNET_POSTGRES_IMAGE", "siapnet-postgres:15")
DATABASES = ("gateway", "intake", "province_36", "province_32", "national")
# Started in this order: the gateway first, so that its read-write mount of the identity volume
# is the one that creates the volume's contents (owned by the image's siapnet user).
SERVICES = ("gateway", "intake", "banten", "jabar", "national")
IDENTITY_DIR = "/var/lib/siapnet/identity"
JWKS_FILE = f"{IDENTITY_DIR}/identity.jwks.json"
GATEWAY_CA = "/var/lib/siapnet/tls/ca.pem"
PROVINCE_ROUTES = '{"36": "http://banten:8000", "32": "http://jabar:8000"}'
# Short outbox timings so that a peer coming back is retried within seconds.
FAST_OUTBOX = {
    "OUTBOX_POLL_SECONDS": "0.2",
    "OUTBOX_BACKOFF_BASE_SECONDS": "0.2",
    "OUTBOX_BACKOFF_CAP_SECONDS": "2",
}

# Every account of one run shares this suffix, so no two runs' passwords are alike.
PASSWORD_SUFFIX = secrets.token_urlsafe(9)

T = TypeVar("T")

# Runs inside a service's container: one HTTP request to a URL, prints the status and the body.
PROBE = """
import sys, urllib.error, urllib.request
request = urllib.request.Request(sys.argv[1])
if len(sys.argv) > 2:
    request.add_header("authorization", "Bearer " + sys.argv[2])
try:
    with urllib.request.urlopen(request, timeout=5) as answer:
        status, body = answer.status, answer.read()
except urllib.error.HTTPError as error:
    status, body = error.code, error.read()
print(status)
print(body.decode())
"""


def eventually(check: Callable[[], T], *, timeout: float, what: str, every: float = 0.25) -> T:
    """Poll `check()` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


def service_environment(name: str, postgres_password: str) -> dict[str, str]:
    """Each service's environment, as deploy/compose.yaml gives it, plus fast outbox timings."""

    def database(name: str) -> str:
        return f"postgresql://postgres:{postgres_password}@postgres/{name}"

    def recommendation(**settings: str) -> dict[str, str]:
        return {
            "SERVICE": "recommendation",
            **{
                f"SIAPNET_RECOMMENDATION_{key}": value
                for key, value in {
                    "ENVIRONMENT": "production",
                    "KEY_DIR": "/var/lib/siapnet/keys",
                    "IDENTITY_JWKS_FILE": JWKS_FILE,
                    "INTAKE_URL": "http://intake:8000",
                    **FAST_OUTBOX,
                    **settings,
                }.items()
            },
        }

    province = {"TIER": "province", "NATIONAL_URL": "http://national:8000"}
    environments = {
        "gateway": {
            "SERVICE": "gateway",
            "SIAPNET_GATEWAY_ENVIRONMENT": "production",
            "SIAPNET_GATEWAY_DATABASE_URL": database("gateway"),
            "SIAPNET_GATEWAY_KEY_DIR": "/var/lib/siapnet/keys",
            "SIAPNET_GATEWAY_IDENTITY_JWKS_FILE": JWKS_FILE,
            "SIAPNET_GATEWAY_TLS_LOCAL_CA_DIR": "/var/lib/siapnet/tls",
            "SIAPNET_GATEWAY_INTAKE_URL": "http://intake:8000",
            "SIAPNET_GATEWAY_NATIONAL_URL": "http://national:8000",
            "SIAPNET_GATEWAY_PROVINCE_ROUTES": PROVINCE_ROUTES,
            "SIAPNET_GATEWAY_DEFAULT_PROVINCE_URL": "http://banten:8000",
        },
        "intake": {
            "SERVICE": "intake",
            "SIAPNET_INTAKE_ENVIRONMENT": "production",
            "SIAPNET_INTAKE_DATABASE_URL": database("intake"),
            "SIAPNET_INTAKE_KEY_DIR": "/var/lib/siapnet/keys",
            "SIAPNET_INTAKE_IDENTITY_JWKS_FILE": JWKS_FILE,
            "SIAPNET_INTAKE_ROUTES": PROVINCE_ROUTES,
            "SIAPNET_INTAKE_DEFAULT_ROUTE": "http://banten:8000",
            **{f"SIAPNET_INTAKE_{key}": value for key, value in FAST_OUTBOX.items()},
        },
        "banten": recommendation(
            **province, PROVINCES='["36"]', DATABASE_URL=database("province_36")
        ),
        "jabar": recommendation(
            **province, PROVINCES='["32"]', DATABASE_URL=database("province_32")
        ),
        "national": recommendation(
            TIER="national",
            DATABASE_URL=database("national"),
            PEERS=json.dumps(
                {
                    "recommendation-province-36": "http://banten:8000",
                    "recommendation-province-32": "http://jabar:8000",
                }
            ),
            DEFAULT_PROVINCE_URL="http://banten:8000",
        ),
    }
    return environments[name]


@dataclass
class Exchange:
    """The running exchange: its containers, and an HTTPS client for the gateway."""

    containers: dict[str, DockerContainer]
    gateway: httpx.Client
    admin_password: str
    _accounts: set[str] = field(default_factory=set)

    # --- the containers ---------------------------------------------------------------------

    def container(self, name: str):
        """The docker SDK's container object, freshly inspected."""
        wrapped = self.containers[name].get_wrapped_container()
        wrapped.reload()
        return wrapped

    def restart_counts(self) -> dict[str, int]:
        """How often Docker's restart policy brought each service back after it exited."""
        return {name: self.container(name).attrs["RestartCount"] for name in SERVICES}

    def probe(self, name: str, path: str, token: str | None = None) -> tuple[int, Any] | None:
        """GET `path` on the service itself, from inside its container (no gateway); None when
        nothing answers."""
        command = [
            "python",
            "-c",
            PROBE,
            f"http://127.0.0.1:8000{path}",
            *([token] if token else []),
        ]
        try:
            result = self.container(name).exec_run(command)
        except APIError:
            return None
        if result.exit_code != 0:
            return None
        status, _, body = result.output.decode().partition("\n")
        try:
            return int(status), json.loads(body)
        except ValueError:
            return int(status), body

    def wait_ready(self, name: str, timeout: float = 60) -> None:
        """Until the service answers /readyz with 200 (database reachable, migrations at head)."""

        def ready() -> bool:
            state = self.container(name).attrs["State"]
            if state["Status"] == "exited":
                logs = self.container(name).logs(tail=40).decode(errors="replace")
                raise AssertionError(f"{name} exited ({state['ExitCode']}):\n{logs}")
            if name == "gateway":
                return self.answer("GET", "/readyz").status_code == 200
            answer = self.probe(name, "/readyz")
            return answer is not None and answer[0] == 200

        eventually(ready, timeout=timeout, what=f"{name} to be ready", every=0.3)

    def stop(self, name: str) -> None:
        self.container(name).stop(timeout=10)

    def start(self, name: str) -> None:
        """Start a stopped container; a service, until it is ready again."""
        self.container(name).start()
        if name in SERVICES:
            self.wait_ready(name)

    def pause(self, name: str) -> None:
        """Freeze every process of the service: connections open, nothing answers."""
        self.container(name).pause()

    def unpause(self, name: str) -> None:
        self.container(name).unpause()

    def restart(self, name: str) -> None:
        self.container(name).restart(timeout=10)

    def logs(self, name: str, lines: int = 15) -> str:
        """The service's last log lines, without Docker's healthchecks."""
        logged = self.container(name).logs(tail=500).decode(errors="replace").splitlines()
        return "\n".join([line for line in logged if '"/healthz"' not in line][-lines:])

    # --- the public API, through the gateway ------------------------------------------------

    def answer(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request through the gateway; a connection that fails is a 599 answer, so that a
        test polling through an outage reads it as 'not yet'."""
        try:
            return self.gateway.request(method, path, **kwargs)
        except httpx.TransportError as error:
            return httpx.Response(599, text=f"{type(error).__name__}: {error}")

    def login(self, username: str, password: str) -> dict[str, str] | None:
        """The Authorization header of a fresh login; None if the gateway refused it."""
        answer = self.answer(
            "POST",
            "/v1/auth/token",
            data={"grant_type": "password", "username": username, "password": password},
        )
        if answer.status_code != 200:
            return None
        return {"authorization": f"Bearer {answer.json()['access_token']}"}

    def admin(self) -> dict[str, str]:
        headers = self.login("admin", self.admin_password)
        assert headers is not None, "the admin cannot log in"
        return headers

    def account(self, office: str, role: str = "officer") -> tuple[str, str]:
        """Username and password of an account of `office`, created through the API once."""
        username = f"{office}-{role}".replace(".", "-")
        password = f"pw-{username}-{PASSWORD_SUFFIX}"
        if username not in self._accounts:
            created = self.gateway.post(
                "/v1/accounts",
                json={
                    "username": username,
                    "office": office,
                    "roles": [role],
                    "password": password,
                },
                headers=self.admin(),
            )
            assert created.status_code == 201, created.text
            self._accounts.add(username)
        return username, password

    def headers_for(self, office: str, role: str = "officer") -> dict[str, str]:
        """The Authorization header of a fresh login as the account of `office`."""
        headers = self.login(*self.account(office, role))
        assert headers is not None, f"{office} cannot log in"
        return headers

    def token_for(self, office: str, role: str = "officer") -> str:
        return self.headers_for(office, role)["authorization"].removeprefix("Bearer ")

    def registered_office(self, office_id: str) -> OfficeSigner:
        """A new signing key for `office_id`, registered by the admin through the gateway."""
        signer = OfficeSigner(office_id)
        answer = self.gateway.post(
            f"/v1/offices/{office_id}/keys",
            json={"jwk": signer.key.public_jwk},
            headers=self.admin(),
        )
        assert answer.status_code == 201, answer.text
        return signer

    def submit(self, compact: str, headers: dict[str, str]) -> httpx.Response:
        return self.answer(
            "POST",
            "/v1/recommendations",
            content=compact,
            headers={**headers, "content-type": "application/jose"},
        )

    def read(self, recommendation_id: str, headers: dict[str, str]) -> httpx.Response:
        return self.answer("GET", f"/v1/recommendations/{recommendation_id}", headers=headers)

    def status(self, recommendation_id: str, headers: dict[str, str]) -> str | None:
        answer = self.read(recommendation_id, headers)
        return answer.json().get("status") if answer.status_code == 200 else None

    def act(
        self,
        recommendation_id: str,
        action: str,
        headers: dict[str, str],
        details: dict | None = None,
    ) -> httpx.Response:
        read = self.read(recommendation_id, headers)
        assert read.status_code == 200, read.text
        return self.gateway.post(
            f"/v1/recommendations/{recommendation_id}/transitions",
            json={"action": action, "details": details},
            headers={**headers, "if-match": read.headers["etag"]},
        )

    def listed(self, headers: dict[str, str], **filters: str) -> list[dict] | None:
        """Every recommendation the caller's list shows (all pages); None if a page failed."""
        items: list[dict] = []
        params: dict[str, str] = {"limit": "100", **filters}
        while True:
            page = self.answer("GET", "/v1/recommendations", params=params, headers=headers)
            if page.status_code != 200:
                return None
            items += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return items
            params["cursor"] = cursor


def _gateway_ca(container: DockerContainer) -> bytes | None:
    """The gateway's local CA certificate, read out of its container (None until written)."""
    try:
        stream, _ = container.get_wrapped_container().get_archive(GATEWAY_CA)
    except NotFound:
        return None
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
        member = archive.extractfile(archive.getmembers()[0])
        return member.read() if member is not None else None


def _publish_on_loopback(container: DockerContainer, port: int) -> DockerContainer:
    """Publish `port` on 127.0.0.1 only, on a host port Docker picks."""
    container.ports[f"{port}/tcp"] = ("127.0.0.1",)  # type: ignore[assignment]
    return container


def start_exchange(stack: ExitStack, workdir: Path) -> Exchange:
    """Start PostgreSQL and every service of deploy/compose.yaml on one fresh network; `stack`
    removes all of it (containers, network, volume) when closed."""
    run = uuid.uuid4().hex[:8]
    client = docker.from_env()
    stack.callback(client.close)
    network = Network()
    network.create()
    stack.callback(network.remove)
    # The gateway writes its token key's JWKS here; every other service reads it (read-only).
    identity = client.volumes.create(name=f"siapnet-it-{run}-identity")
    stack.callback(identity.remove, force=True)

    postgres_password = secrets.token_urlsafe(18)
    postgres = (
        DockerContainer(POSTGRES_IMAGE, name=f"siapnet-it-{run}-postgres")
        .with_env("POSTGRES_PASSWORD", postgres_password)
        .with_env("POSTGRES_DATABASES", " ".join(DATABASES))
        .with_network(network)
        .with_network_aliases("postgres")
        .with_kwargs(restart_policy={"Name": "unless-stopped"})
    )
    stack.callback(postgres.stop)
    postgres.start()
    wait_for_postgres(postgres)

    containers: dict[str, DockerContainer] = {"postgres": postgres}
    for name in SERVICES:
        container = (
            DockerContainer(IMAGE, name=f"siapnet-it-{run}-{name}")
            .with_envs(**service_environment(name, postgres_password))
            .with_network(network)
            .with_network_aliases(name)
            .with_volume_mapping(identity.name, IDENTITY_DIR, "rw" if name == "gateway" else "ro")
            .with_kwargs(restart_policy={"Name": "unless-stopped"})
        )
        if name == "gateway":
            _publish_on_loopback(container, 8443)
        stack.callback(container.stop)
        container.start()
        containers[name] = container

    gateway = containers["gateway"]
    ca = eventually(lambda: _gateway_ca(gateway), timeout=60, what="the gateway's CA certificate")
    ca_file = workdir / "gateway-ca.pem"
    ca_file.write_bytes(ca)
    port = gateway.get_exposed_port(8443)
    https = httpx.Client(
        base_url=f"https://127.0.0.1:{port}",
        verify=ssl.create_default_context(cafile=str(ca_file)),
        timeout=20,
    )
    stack.callback(https.close)
    admin_password = secrets.token_urlsafe(18)
    exchange = Exchange(containers=containers, gateway=https, admin_password=admin_password)
    for name in SERVICES:
        exchange.wait_ready(name)
    created = gateway.exec(["python", "-m", "services.gateway", "create-admin", admin_password])
    assert created.exit_code == 0, created.output.decode(errors="replace")
    return exchange


def wait_for_postgres(postgres: DockerContainer) -> None:
    """Until the server answers on the network. (The image's first start runs a temporary
    server on loopback only while it creates the databases; asking by the network name skips
    that one.)"""

    def answers() -> bool:
        try:
            asked = postgres.exec(["pg_isready", "-q", "-h", "postgres", "-U", "postgres"])
        except APIError:  # not running (yet)
            return False
        return asked.exit_code == 0

    eventually(answers, timeout=60, what="PostgreSQL to accept connections", every=0.3)

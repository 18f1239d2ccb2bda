"""The exchange as `make run` starts it — gateway (HTTPS, local CA), intake, the Banten province
service and national, each `python -m services.<name>` in its own OS process — but in a directory
of its own, on free loopback ports, on SQLite files or on one PostgreSQL database per service,
with a fast outbox. Any one service can be killed with SIGKILL and started again with the same
environment: the same database, the same keys, the same port.

Each service's output goes to `<var>/logs/<name>.log`, appended across restarts, with a line
marking every start and every kill.
"""

import os
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services import demo
from services.local import Layout, Ports, Service
from shared.signing import KeyPair
from tests.support.offices import OfficeSigner
from tests.support.postgres import free_port

SERVICES = ("gateway", "intake", "banten", "national")
# A delivery that failed is retried within a second; a relay polls ten times a second. The driver
# is one client per office, far above a person's pace: rate limits are not on trial.
FAST = {
    **{
        f"SIAPNET_{service}_{key}": value
        for service in ("INTAKE", "RECOMMENDATION")
        for key, value in {
            "OUTBOX_POLL_SECONDS": "0.1",
            "OUTBOX_BACKOFF_BASE_SECONDS": "0.1",
            "OUTBOX_BACKOFF_CAP_SECONDS": "1",
        }.items()
    },
    "SIAPNET_GATEWAY_RATE_LIMIT_PER_MINUTE": "1000000",
    "SIAPNET_GATEWAY_RATE_LIMIT_BURST": "100000",
    "SIAPNET_GATEWAY_ACCESS_TOKEN_MINUTES": "60",
}
ADMIN_PASSWORD = "faults-admin-password"
DEMO_PASSWORD = "faults-demo-password"
READY_TIMEOUT = 90.0


@dataclass
class ProcessExchange:
    """The four services as OS processes, each startable, killable and restartable alone: the
    `make run` layout (services/local.py) on free ports, on SQLite files unless `databases`
    names another database for a service."""

    var: Path
    databases: dict[str, str] = field(default_factory=dict)
    layout: Layout = field(init=False)
    specs: dict[str, Service] = field(init=False)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    starts: dict[str, int] = field(default_factory=dict)
    offices: dict[str, OfficeSigner] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ports = Ports(
            gateway=free_port(), intake=free_port(), province=free_port(), national=free_port()
        )
        self.layout = Layout(self.var, ports, extra=FAST, databases=self.databases)
        self.databases = {name: self.layout.database_url(name) for name in SERVICES}
        self.specs = {service.name: service for service in self.layout.services()}
        (self.var / "logs").mkdir(parents=True, exist_ok=True)

    @property
    def gateway_url(self) -> str:
        return self.layout.gateway_url

    @property
    def ca(self) -> Path:
        return self.layout.ca

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    # --- the world before the first start, as services/__main__.py prepares it ---------------

    def prepare(self) -> None:
        self.layout.prepare()
        demo.seed_accounts(
            self.databases["gateway"], {"admin": ADMIN_PASSWORD, "demo": DEMO_PASSWORD}
        )

    def start_all(self) -> None:
        """Prepare, start every service, wait until each is ready, register the offices' keys."""
        self.prepare()
        for name in SERVICES:
            self.start(name)
        for name in SERVICES:
            self.wait_ready(name)
        key_dir = self.var / "office-keys"
        registered = demo.register_office_keys(self.gateway_url, self.ca, ADMIN_PASSWORD, key_dir)
        self.offices = {
            office: OfficeSigner(office, KeyPair.load(key_dir / f"{office}.pem"))
            for office in registered
        }

    # --- one service --------------------------------------------------------------------------

    def log_path(self, name: str) -> Path:
        return self.var / "logs" / f"{name}.log"

    def _note(self, name: str, line: str) -> None:
        with self.log_path(name).open("a") as log:
            log.write(f"===== {time.strftime('%H:%M:%S')} {line} =====\n")

    def start(self, name: str) -> None:
        """Start the service with its environment (a second start reuses its data and keys)."""
        spec = self.specs[name]
        self.starts[name] = self.starts.get(name, 0) + 1
        self._note(name, f"start #{self.starts[name]}")
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("SIAPNET_")}
        with self.log_path(name).open("a") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", spec.module],
                env={**inherited, **spec.env, **self.layout.extra},
                cwd=self.var,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown, no flush, no lifespan; whatever was in flight is cut off."""
        process = self.processes[name]
        self._note(name, f"kill -9 (pid {process.pid})")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def ready(self, name: str) -> bool:
        spec = self.specs[name]
        verify: ssl.SSLContext | bool = self.tls_context() if name == "gateway" else False
        try:
            answer = httpx.get(f"{spec.url}/readyz", verify=verify, timeout=2)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    def wait_ready(self, name: str, timeout: float = READY_TIMEOUT) -> float:
        """Seconds until the service answers /readyz with 200; fails if it exits or hangs."""
        started = time.monotonic()
        while not self.ready(name):
            process = self.processes[name]
            if process.poll() is not None:
                raise ServiceDidNotComeBack(
                    f"{name} exited with {process.returncode} while starting:\n{self.tail(name)}"
                )
            if time.monotonic() - started > timeout:
                raise ServiceDidNotComeBack(
                    f"{name} was not ready {timeout:.0f} s after starting:\n{self.tail(name)}"
                )
            time.sleep(0.1)
        return time.monotonic() - started

    def tail(self, name: str, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop_all(self, timeout: float = 15) -> dict[str, int | None]:
        """SIGTERM to every service; each one's exit code, or None for one that was still
        running `timeout` seconds later and had to be killed."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for name, process in self.processes.items():
            try:
                codes[name] = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
                codes[name] = None
        return codes


class ServiceDidNotComeBack(AssertionError):
    """A service that was started (or restarted after a kill) never became ready."""

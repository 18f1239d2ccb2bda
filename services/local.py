"""The whole system on one machine: the gateway (HTTPS), intake, the Banten province service and
national, each its own process on its own SQLite file under one directory (or on the database
`databases` names for it). `make run` uses this with var/ and the usual ports; the benchmark and
the fault suite with a directory and ports of their own.
"""

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from services.gateway.tls import ensure_local_tls
from shared.signing import KeyPair, jwks


@dataclass(frozen=True)
class Ports:
    gateway: int = 8443
    intake: int = 8001
    province: int = 8002
    national: int = 8003


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    url: str
    env: dict[str, str]


@dataclass(frozen=True)
class Layout:
    var: Path
    ports: Ports = field(default_factory=Ports)
    # Extra environment for every service (e.g. a faster outbox for tests).
    extra: dict[str, str] = field(default_factory=dict)
    # A database URL per service name, in place of its SQLite file (e.g. PostgreSQL databases).
    databases: dict[str, str] = field(default_factory=dict)

    def database_url(self, name: str) -> str:
        files = {
            "gateway": "gateway.db",
            "intake": "intake.db",
            "banten": "recommendation-36.db",
            "national": "recommendation-national.db",
        }
        return self.databases.get(name) or f"sqlite:///{self.var}/{files[name]}"

    @property
    def gateway_url(self) -> str:
        return f"https://127.0.0.1:{self.ports.gateway}"

    @property
    def ca(self) -> Path:
        return self.var / "tls" / "ca.pem"

    def services(self) -> list[Service]:
        var, ports = self.var, self.ports
        jwks_file = str(var / "keys" / "identity.jwks.json")
        intake, province, national = (
            f"http://127.0.0.1:{ports.intake}",
            f"http://127.0.0.1:{ports.province}",
            f"http://127.0.0.1:{ports.national}",
        )
        recommendation = {
            "SIAPNET_RECOMMENDATION_IDENTITY_JWKS_FILE": jwks_file,
            "SIAPNET_RECOMMENDATION_INTAKE_URL": intake,
            "SIAPNET_RECOMMENDATION_NATIONAL_URL": national,
            "SIAPNET_RECOMMENDATION_DEFAULT_PROVINCE_URL": province,
        }
        return [
            Service(
                "gateway",
                "services.gateway",
                self.gateway_url,
                {
                    "SIAPNET_GATEWAY_PORT": str(ports.gateway),
                    "SIAPNET_GATEWAY_DATABASE_URL": self.database_url("gateway"),
                    "SIAPNET_GATEWAY_KEY_DIR": str(var / "keys" / "identity"),
                    "SIAPNET_GATEWAY_IDENTITY_JWKS_FILE": jwks_file,
                    "SIAPNET_GATEWAY_TLS_CERTIFICATE": str(var / "tls" / "server.pem"),
                    "SIAPNET_GATEWAY_TLS_PRIVATE_KEY": str(var / "tls" / "server-key.pem"),
                    "SIAPNET_GATEWAY_INTAKE_URL": intake,
                    "SIAPNET_GATEWAY_NATIONAL_URL": national,
                    "SIAPNET_GATEWAY_DEFAULT_PROVINCE_URL": province,
                },
            ),
            Service(
                "intake",
                "services.intake",
                intake,
                {
                    "SIAPNET_INTAKE_PORT": str(ports.intake),
                    "SIAPNET_INTAKE_DATABASE_URL": self.database_url("intake"),
                    "SIAPNET_INTAKE_KEY_DIR": str(var / "keys" / "intake"),
                    "SIAPNET_INTAKE_IDENTITY_JWKS_FILE": jwks_file,
                    "SIAPNET_INTAKE_DEFAULT_ROUTE": province,
                },
            ),
            Service(
                "banten",
                "services.recommendation",
                province,
                {
                    **recommendation,
                    "SIAPNET_RECOMMENDATION_TIER": "province",
                    "SIAPNET_RECOMMENDATION_PROVINCES": '["36"]',
                    "SIAPNET_RECOMMENDATION_PORT": str(ports.province),
                    "SIAPNET_RECOMMENDATION_DATABASE_URL": self.database_url("banten"),
                    "SIAPNET_RECOMMENDATION_KEY_DIR": str(var / "keys" / "recommendation-36"),
                },
            ),
            Service(
                "national",
                "services.recommendation",
                national,
                {
                    **recommendation,
                    "SIAPNET_RECOMMENDATION_TIER": "national",
                    "SIAPNET_RECOMMENDATION_PORT": str(ports.national),
                    "SIAPNET_RECOMMENDATION_DATABASE_URL": self.database_url("national"),
                    "SIAPNET_RECOMMENDATION_KEY_DIR": str(var / "keys" / "recommendation-national"),
                },
            ),
        ]

    def prepare(self) -> None:
        """The token key (its JWKS where the services read it) and the TLS certificate."""
        identity = KeyPair.load_or_create(self.var / "keys" / "identity" / "signing.pem")
        (self.var / "keys" / "identity.jwks.json").write_text(json.dumps(jwks(identity.public_jwk)))
        ensure_local_tls(self.var / "tls")

    def start(self, service: Service, **popen) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", service.module],
            env={**os.environ, **service.env, **self.extra},
            **popen,
        )


def stop(processes: list[subprocess.Popen], timeout: float = 10) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()

"""Settings every service shares, read from environment variables (pydantic-settings).

Each service subclasses `ServiceSettings` with its own prefix (`SIAPNET_INTAKE_`, ...). Outside
development a setting still holding a well-known placeholder secret stops the service at start.
"""

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.outbox import RetryPolicy

PLACEHOLDER_SECRETS = (
    "changeme",
    "change-me",
    "password",
    "secret",
    "postgres:postgres",
    "example",
)


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIAPNET_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = "sqlite:///var/service.db"
    key_dir: Path = Path("var/keys/service")
    log_level: str = "INFO"
    # Public keys of whoever issues access tokens (the gateway): a JWKS file.
    identity_jwks_file: Path = Path("var/keys/identity.jwks.json")
    identity_issuer: str = "siapnet-gateway"
    identity_audience: str = "siapnet"
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # A request body must have arrived this long after its request began (408 otherwise), so a
    # client dribbling bytes cannot hold a connection open: 1 MiB at ~35 KB/s still makes it.
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    # Who may read /metrics: address blocks (internal services sit behind network policies).
    metrics_allow_from: list[str] = Field(default_factory=lambda: ["0.0.0.0/0", "::/0"])

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> Self:
        if self.environment == "production":
            lowered = self.database_url.lower()
            for placeholder in PLACEHOLDER_SECRETS:
                if f":{placeholder}@" in lowered or lowered.endswith(f":{placeholder}"):
                    raise ValueError(
                        "database_url holds a placeholder password; set a real one in production"
                    )
        return self


class RelaySettings(ServiceSettings):
    """Settings of a service that hands documents on through its outbox (intake and the
    recommendation services), under the service's own prefix."""

    relay_enabled: bool = True
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    outbox_max_attempts: int = Field(default=200, ge=1)
    outbox_backoff_base_seconds: float = Field(default=0.5, gt=0)
    outbox_backoff_cap_seconds: float = Field(default=300.0, gt=0)
    # How long a relay holds the messages it is delivering. Messages a crashed relay held wait
    # this long before a relay takes them again, so it is short; it must outlast a delivery.
    outbox_lease_seconds: float = Field(default=30.0, gt=RetryPolicy.timeout_seconds)
    # While the service's event loop runs this late (it has more requests than it can answer at
    # once), its relay makes way for them: one pass (up to 50 messages) per
    # `outbox_busy_pause_seconds`, the rest once the burst is over (shared.outbox).
    # 0: the relay never waits for requests.
    outbox_busy_lateness_seconds: float = Field(default=0.025, ge=0)
    outbox_busy_pause_seconds: float = Field(default=1.0, gt=0)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            base_seconds=self.outbox_backoff_base_seconds,
            cap_seconds=self.outbox_backoff_cap_seconds,
            max_attempts=self.outbox_max_attempts,
            lease_seconds=self.outbox_lease_seconds,
        )

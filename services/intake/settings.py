from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.outbox import RetryPolicy
from shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SIAPNET_INTAKE_", extra="ignore")

    port: int = 8001
    database_url: str = "sqlite:///var/intake.db"
    key_dir: Path = Path("var/keys/intake")
    migrate_on_start: bool = True
    # How far an office's clock may run ahead of ours before its `iat` is refused.
    clock_leeway_seconds: int = Field(default=60, ge=0, le=3600)
    # Province code -> base URL of the recommendation service holding that province.
    routes: dict[str, str] = Field(default_factory=dict)
    default_route: str = "http://127.0.0.1:8002"
    relay_enabled: bool = True
    outbox_poll_seconds: float = 1.0
    outbox_max_attempts: int = Field(default=200, ge=1)
    outbox_backoff_base_seconds: float = Field(default=0.5, gt=0)
    outbox_backoff_cap_seconds: float = Field(default=300.0, gt=0)

    def route_for(self, province_code: str) -> str:
        return self.routes.get(province_code, self.default_route)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            base_seconds=self.outbox_backoff_base_seconds,
            cap_seconds=self.outbox_backoff_cap_seconds,
            max_attempts=self.outbox_max_attempts,
        )

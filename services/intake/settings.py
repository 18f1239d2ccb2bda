from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import RelaySettings


class IntakeSettings(RelaySettings):
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

    def route_for(self, province_code: str) -> str:
        return self.routes.get(province_code, self.default_route)

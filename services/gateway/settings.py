from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SIAPNET_GATEWAY_", extra="ignore")

    port: int = 8443
    database_url: str = "sqlite:///var/gateway.db"
    # The key access tokens are signed with; services trust its public half.
    key_dir: Path = Path("var/keys/identity")
    migrate_on_start: bool = True
    tls_certificate: Path | None = None
    tls_private_key: Path | None = None
    # Without a certificate of its own: make (once) a local CA and a certificate here.
    tls_local_ca_dir: Path | None = None
    tls_hostnames: list[str] = Field(default_factory=lambda: ["localhost", "gateway"])
    intake_url: str = "http://127.0.0.1:8001"
    national_url: str = "http://127.0.0.1:8003"
    # Province code -> base URL of the recommendation service holding it.
    province_routes: dict[str, str] = Field(default_factory=dict)
    default_province_url: str = "http://127.0.0.1:8002"
    upstream_timeout_seconds: float = Field(default=10.0, gt=0)
    access_token_minutes: int = Field(default=15, ge=1, le=60)
    refresh_token_days: int = Field(default=30, ge=1)
    lockout_after_failures: int = Field(default=5, ge=1)
    lockout_minutes: int = Field(default=15, ge=1)
    # Requests per minute per token subject (or per client address when anonymous).
    rate_limit_per_minute: int = Field(default=600, ge=1)
    rate_limit_burst: int = Field(default=100, ge=1)
    cors_origins: list[str] = Field(default_factory=list)
    # The gateway faces the public: its /metrics answers loopback and private networks only.
    metrics_allow_from: list[str] = Field(
        default_factory=lambda: [
            "127.0.0.0/8",
            "::1/128",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "fc00::/7",
        ]
    )

    def province_url(self, province_code: str) -> str:
        return self.province_routes.get(province_code, self.default_province_url)

    def province_urls(self) -> list[str]:
        """Every distinct province service, for totals across the whole country."""
        return sorted({*self.province_routes.values(), self.default_province_url})

from datetime import date
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from shared import regions
from shared.documents import NATIONAL_SERVICE, province_service
from shared.settings import RelaySettings


class RecommendationSettings(RelaySettings):
    model_config = SettingsConfigDict(env_prefix="SIAPNET_RECOMMENDATION_", extra="ignore")

    tier: Literal["province", "national"] = "province"
    # Province codes a province service serves; "all" serves every province.
    provinces: list[str] = Field(default_factory=lambda: ["36"])
    port: int = 8002
    database_url: str = "sqlite:///var/recommendation-province.db"
    key_dir: Path = Path("var/keys/recommendation-province")
    migrate_on_start: bool = True
    # Base URLs of peers by service id: "intake", "recommendation-national", and
    # "recommendation-province-<code>" (several codes may share one URL).
    peers: dict[str, str] = Field(default_factory=dict)
    default_province_url: str = "http://127.0.0.1:8002"
    intake_url: str = "http://127.0.0.1:8001"
    national_url: str = "http://127.0.0.1:8003"
    ruling_body: str = "BKN"
    province_review_days: int = Field(default=7, ge=1)
    ppk_follow_up_days: int = Field(default=14, ge=1)
    extra_holidays: list[date] = Field(default_factory=list)
    # Vulnerability zones by case count: green below yellow_from, red from red_from.
    zone_yellow_from: int = Field(default=1, ge=1)
    zone_red_from: int = Field(default=5, ge=2)
    overdue_check_seconds: float = Field(default=60.0, gt=0)
    clock_leeway_seconds: int = Field(default=60, ge=0, le=3600)

    @model_validator(mode="after")
    def _known_provinces(self) -> Self:
        if self.provinces == ["all"]:
            self.provinces = [region.code for region in regions.provinces()]
        unknown = [code for code in self.provinces if regions.region(code) is None or "." in code]
        if unknown:
            raise ValueError(f"not province codes: {unknown}")
        if self.zone_red_from <= self.zone_yellow_from:
            raise ValueError("zone_red_from must be above zone_yellow_from")
        return self

    @property
    def service_ids(self) -> list[str]:
        """The ids this service answers to as the `aud` of documents."""
        if self.tier == "national":
            return [NATIONAL_SERVICE]
        return [province_service(code) for code in self.provinces]

    def service_id_for(self, province_code: str) -> str:
        return NATIONAL_SERVICE if self.tier == "national" else province_service(province_code)

    def peer_url(self, service_id: str) -> str:
        if service_id in self.peers:
            return self.peers[service_id]
        if service_id == NATIONAL_SERVICE:
            return self.national_url
        if service_id == "intake":
            return self.intake_url
        if service_id.startswith(province_service("")):
            return self.default_province_url
        raise KeyError(f"no URL for peer {service_id!r}")

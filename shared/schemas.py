"""The JSON answers a service gives and the gateway relays (DESIGN §5), declared once so a
service's answer and the gateway's OpenAPI description cannot drift apart.

The examples follow one recommendation of Bawaslu Kabupaten Pandeglang (36.01, Banten) through
the exchange.
"""

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.codes import Category
from shared.lifecycle import Status
from shared.outbox import DeliveryState

DOCUMENT_ID = "8f3c2a71-4d5e-4b6f-9a0c-1e2d3f4a5b6c"
REGISTRATION_NUMBER = "3601-2026-000001"
RECEIPT = (
    "eyJhbGciOiJFUzI1NiIsImtpZCI6IkhzQzlPa3BsOU5LZnY5VEFxWFQ3VEprbm1mZURydFFybGFCa0lQcnpZdFkiLCJ0"
    "eXAiOiJzaWFwbmV0LXJlY2VpcHQrandzIn0.eyJqdGkiOiI1YzBlOWExZi0yYjdkLTRlODMtOWE2NC0wZjFkMmMzYjRh"
    "NTkiLCJpc3MiOiJpbnRha2UiLCJhdWQiOiJiYXdhc2x1LTM2LjAxIiwiaWF0IjoxNzcyNTI0ODAwLCJzdWIiOiI4ZjNj"
    "MmE3MS00ZDVlLTRiNmYtOWEwYy0xZTJkM2Y0YTViNmMiLCJkb2N1bWVudF9zaGEyNTYiOiIyZDcxMTY0MmI3MjZiMDQ0"
    "MDE2MjdjYTlmYmFjMzJmNWM4NTMwZmIxOTAzY2M0ZGIwMjI1ODcxNzkyMWE0ODgxIiwicmVnaXN0cmF0aW9uX251bWJl"
    "ciI6IjM2MDEtMjAyNi0wMDAwMDEiLCJyZWNlaXZlZF9hdCI6IjIwMjYtMDMtMDNUMDg6MDA6MDArMDA6MDAifQ.gQRe7O"
    "QnCVuTBf--ypAxKefcwNOkLJzGuASpeGcdjeCim0BePTgGwALAwe-vlPF4aMlm4qX3pt-eXjhv54NVNg"
)
OFFICE_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "NMF9b7sTVvOFHYcNhNwp5x0-Yw4wZ1mgLEUOW5t9hPk",
    "y": "ocdEm-hDy_E63Uu7Tv2mzWWBw8Zb4nm9yoOj2QcX0Qk",
}
OFFICE_KID = "0xZos8ihpXRDdvJW4IiAUUbCV0QfAGqOstrCRJhEPnw"
EVIDENCE_SHA256 = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
RECOMMENDATION = {
    "source": "finding",
    "election": {"kind": "pilkada", "year": 2026},
    "region_code": "36.01",
    "occurred_on": "2026-02-20",
    "discovered_on": "2026-02-21",
    "category": "social_media_campaign",
    "subject": {
        "name": "Ahmad Fauzi",
        "nip": "198503122010011002",
        "employment": "pns",
        "position_class": "administrator",
        "agency": "Dinas Pendidikan Kabupaten Pandeglang",
        "agency_region_code": "36.01",
    },
    "summary": "Mengunggah foto bersama pasangan calon bupati dengan pose nomor urut di akun "
    "Facebook pribadi.",
    "evidence": [
        {
            "description": "Tangkapan layar unggahan Facebook",
            "sha256": EVIDENCE_SHA256,
            "media_type": "image/png",
        }
    ],
    "reporter": None,
}


def _examples(*examples: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


# --- intake: submissions, delivery, office keys -----------------------------------------------

SUBMISSION_ANSWER = {
    "document_id": DOCUMENT_ID,
    "registration_number": REGISTRATION_NUMBER,
    "received_at": "2026-03-03T08:00:00Z",
    "receipt": RECEIPT,
}


class SubmissionAnswer(BaseModel):
    """Intake's answer to a submission: the registration and the receipt signed by intake."""

    model_config = _examples(SUBMISSION_ANSWER)

    document_id: str = Field(description="the document's `jti`, a UUID")
    registration_number: str = Field(description="`<office region>-<year>-<sequence>`")
    received_at: datetime
    receipt: str = Field(description="siapnet-receipt+jws signed by intake")


class DeliveryAttempt(BaseModel):
    number: int
    started_at: datetime
    duration_ms: int
    status_code: int | None = Field(description="the province service's answer, if any")
    error: str | None
    outcome: DeliveryState


class Delivery(BaseModel):
    """How the document is travelling from intake to its province service (the outbox)."""

    destination: str
    state: DeliveryState
    attempts: list[DeliveryAttempt]
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None


class DocumentState(BaseModel):
    """What intake knows of a document it received."""

    model_config = _examples(
        {
            "document_id": DOCUMENT_ID,
            "office": "bawaslu-36.01",
            "registration_number": REGISTRATION_NUMBER,
            "received_at": "2026-03-03T08:00:00Z",
            "status": "received",
            "supersedes": None,
            "sha256": EVIDENCE_SHA256,
            "delivery": {
                "destination": "recommendation-province-36",
                "state": "delivered",
                "attempts": [
                    {
                        "number": 1,
                        "started_at": "2026-03-03T08:00:01Z",
                        "duration_ms": 84,
                        "status_code": 201,
                        "error": None,
                        "outcome": "delivered",
                    }
                ],
                "next_attempt_at": None,
                "delivered_at": "2026-03-03T08:00:01Z",
                "last_error": None,
            },
        }
    )

    document_id: str
    office: str
    registration_number: str
    received_at: datetime
    status: str = Field(description="`received`, then the status its province service reports")
    supersedes: str | None
    sha256: str = Field(description="SHA-256 of the compact JWS as received")
    delivery: Delivery | None


class KeyRegistration(BaseModel):
    model_config = _examples({"jwk": OFFICE_JWK})

    jwk: dict[str, Any] = Field(description="the office's public EC P-256 key as a JWK")


class RegisteredKey(BaseModel):
    """An office's public key, as intake verifies the office's documents with it."""

    model_config = _examples(
        {
            "kid": OFFICE_KID,
            "office": "bawaslu-36.01",
            "jwk": OFFICE_JWK,
            "registered_at": "2026-01-05T02:30:00Z",
            "retired_at": None,
        }
    )

    kid: str = Field(description="the JWK's RFC 7638 thumbprint")
    office: str
    jwk: dict[str, str]
    registered_at: datetime
    retired_at: datetime | None = Field(description="documents signed after this are refused")


# --- recommendation services: lists, details, the lifecycle ----------------------------------

PAGE_LIMIT_MAX = 200

HISTORY = [
    {
        "action": "submit",
        "from_status": None,
        "to_status": "submitted",
        "at": "2026-03-03T08:00:01Z",
        "actor_office": "bawaslu-36.01",
        "actor_user": None,
        "note": None,
        "details": {},
        "sequence": None,
        "applied": True,
    },
    {
        "action": "verify",
        "from_status": "submitted",
        "to_status": "verified",
        "at": "2026-03-04T03:15:00Z",
        "actor_office": "bawaslu-36",
        "actor_user": "verifikator-banten",
        "note": "Bukti unggahan sudah diperiksa.",
        "details": {},
        "sequence": 1,
        "applied": True,
    },
]
SUMMARY = {
    "id": DOCUMENT_ID,
    "office": "bawaslu-36.01",
    "region_code": "36.01",
    "category": "social_media_campaign",
    "status": "verified",
    "registration_number": REGISTRATION_NUMBER,
    "received_at": "2026-03-03T08:00:00Z",
    "updated_at": "2026-03-04T03:15:00Z",
    "review_due_on": "2026-03-10",
    "ppk_due_on": None,
}


class HistoryEntry(BaseModel):
    model_config = _examples(HISTORY[1])

    action: str = Field(description="`submit`, or the lifecycle action taken")
    from_status: str | None
    to_status: str
    at: datetime
    actor_office: str
    actor_user: str | None
    note: str | None
    details: dict[str, Any]
    sequence: int | None = Field(description="the status event's number, for national's actions")
    applied: bool = Field(description="false when a newer status event had already arrived")


class RecommendationSummary(BaseModel):
    model_config = _examples(SUMMARY)

    id: str
    office: str = Field(description="the submitting office")
    region_code: str = Field(description="Kemendagri code of the region where it happened")
    category: Category
    status: Status
    registration_number: str
    received_at: datetime
    updated_at: datetime
    review_due_on: date | None = Field(description="when the province review is due")
    ppk_due_on: date | None = Field(description="when the PPK's follow-up on a sanction is due")


class RecommendationDetail(RecommendationSummary):
    model_config = _examples(
        {
            **SUMMARY,
            "recommendation": RECOMMENDATION,
            "supersedes": None,
            "history": HISTORY,
            "allowed_actions": ["forward"],
        }
    )

    recommendation: dict[str, Any] = Field(description="the recommendation as the office signed it")
    supersedes: str | None = Field(description="the returned recommendation this one corrects")
    history: list[HistoryEntry]
    allowed_actions: list[str] = Field(description="what the caller's tier may do next")


class RecommendationPage(BaseModel):
    model_config = _examples({"items": [SUMMARY], "next_cursor": "MjAyNi0wMy0wM1QwODowMDowMFo"})

    items: list[RecommendationSummary]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: last")


class TransitionRequest(BaseModel):
    """A lifecycle action; `details` are required by `return`, `recommend` and
    `record_follow_up`."""

    model_config = _examples(
        {"action": "verify", "note": "Bukti unggahan sudah diperiksa.", "details": None},
        {
            "action": "return",
            "note": None,
            "details": {"reason": "NIP terlapor tidak sesuai dengan data kepegawaian."},
        },
        {
            "action": "recommend",
            "note": None,
            "details": {
                "sanction": {"kind": "discipline", "type": "allowance_cut_6m"},
                "ppk": {"title": "Bupati Pandeglang", "agency": "Pemerintah Kabupaten Pandeglang"},
            },
        },
    )

    action: str = Field(examples=["verify"], description="a lifecycle action, e.g. `verify`")
    note: str | None = Field(default=None, max_length=2000)
    details: dict[str, Any] | None = None


# --- totals ----------------------------------------------------------------------------------


class Grouping(StrEnum):
    """What `GET /v1/stats` can group by. `region` is the regency/city (`regency_code`) for
    every caller, national included: a province's totals are the sum of its regencies'."""

    region = "region"
    office = "office"
    category = "category"
    status = "status"
    position_class = "position_class"
    employment = "employment"
    election = "election"


class Zone(StrEnum):
    green = "green"
    yellow = "yellow"
    red = "red"


TOTALS = {
    "groups": [
        {"region": "36.01", "category": "social_media_campaign", "count": 3},
        {"region": "36.02", "category": "partisan_photo", "count": 1},
    ],
    "total": 4,
    "late_reviews": 1,
    "overdue_follow_ups": 0,
    "as_of": "2026-03-05",
}


class Totals(BaseModel):
    model_config = _examples(TOTALS)

    groups: list[dict[str, str | int]] = Field(
        examples=[[{"region": "36.01", "category": "social_media_campaign", "count": 3}]],
        description="one object per group: the groupings asked for, and `count`",
    )
    total: int
    late_reviews: int = Field(
        description="`submitted` recommendations whose province review was due before today"
    )
    overdue_follow_ups: int = Field(
        description="`overdue` recommendations, and `sanction_recommended` ones whose PPK "
        "follow-up was due before today"
    )
    as_of: date = Field(description="today in WIB, the day the overdue counts are reckoned on")


class Thresholds(BaseModel):
    yellow_from: int
    red_from: int


class RegionVulnerability(BaseModel):
    region_code: str
    name: str
    cases: int
    score: int = Field(ge=0, le=100)
    zone: Zone


class Vulnerability(BaseModel):
    """The thematic vulnerability index (IKP) per region, the most vulnerable first."""

    model_config = _examples(
        {
            "level": "regency",
            "regions": [
                {
                    "region_code": "36.01",
                    "name": "Kabupaten Pandeglang",
                    "cases": 6,
                    "score": 100,
                    "zone": "red",
                },
                {
                    "region_code": "36.02",
                    "name": "Kabupaten Lebak",
                    "cases": 2,
                    "score": 33,
                    "zone": "yellow",
                },
                {
                    "region_code": "36.03",
                    "name": "Kabupaten Tangerang",
                    "cases": 0,
                    "score": 0,
                    "zone": "green",
                },
            ],
            "thresholds": {"yellow_from": 1, "red_from": 5},
        }
    )

    level: Literal["province", "regency"]
    regions: list[RegionVulnerability]
    thresholds: Thresholds


# --- published keys --------------------------------------------------------------------------


class JsonWebKeySet(BaseModel):
    """Public signing keys (RFC 7517), each with its `kid`, `use` and `alg`."""

    model_config = _examples(
        {"keys": [{**OFFICE_JWK, "kid": OFFICE_KID, "use": "sig", "alg": "ES256"}]}
    )

    keys: list[dict[str, Any]]


# --- operations ------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """Ready when the database answers and its migrations are at head."""

    model_config = _examples(
        {"status": "ready"}, {"status": "unavailable", "detail": "migrations not at head"}
    )

    status: Literal["ready", "unavailable"]
    detail: str | None = Field(default=None, description="why not ready")

"""The four signed document types of DESIGN §3 and the rules their payloads must satisfy.

`RecommendationPayload` validates what an office signs; jurisdiction (does the region lie in the
issuing office's?) needs the office, so `check_recommendation` does both and answers with a list
of field errors instead of raising on the first.
"""

import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from shared import regions
from shared.codes import Category, ElectionKind, Employment, PositionClass, Source

RECOMMENDATION_TYP = "siapnet-recommendation+jws"
ENVELOPE_TYP = "siapnet-envelope+jws"
STATUS_TYP = "siapnet-status+jws"
RECEIPT_TYP = "siapnet-receipt+jws"
INTAKE_AUDIENCE = "siapnet:intake"
INTAKE_SERVICE = "intake"
NATIONAL_SERVICE = "recommendation-national"

# Dates are Indonesian calendar dates; WIT (UTC+9) is the country's latest "today".
LATEST_INDONESIAN_TZ = timezone(timedelta(hours=9))
FIRST_ELECTION_YEAR = 2004


def province_service(province_code: str) -> str:
    return f"recommendation-province-{province_code}"


def today_in_indonesia() -> date:
    return datetime.now(LATEST_INDONESIAN_TZ).date()


def _nip(value: str) -> str:
    """NIP: birth date YYYYMMDD, appointment YYYYMM, sex digit 1 or 2, three-digit sequence."""
    if not re.fullmatch(r"[0-9]{18}", value):
        raise ValueError("a NIP is exactly 18 digits")
    try:
        born = date(int(value[0:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        raise ValueError("a NIP's first 8 digits must be a real birth date (YYYYMMDD)") from None
    appointed_year, appointed_month = int(value[8:12]), int(value[12:14])
    if not 1 <= appointed_month <= 12:
        raise ValueError("a NIP's digits 9-14 must be an appointment month (YYYYMM)")
    if value[14] not in "12":
        raise ValueError("a NIP's 15th digit (sex) must be 1 or 2")
    today = today_in_indonesia()
    if not born.year >= 1900 or born >= today:
        raise ValueError("a NIP's birth date must lie in the past")
    if (appointed_year, appointed_month) <= (born.year, born.month):
        raise ValueError("a NIP's appointment month must come after the birth date")
    if (appointed_year, appointed_month) > (today.year, today.month):
        raise ValueError("a NIP's appointment month must not lie in the future")
    return value


def _region_code(value: str) -> str:
    if regions.region(value) is None:
        raise ValueError(f"{value!r} is not a Kemendagri region code")
    return value


def _not_future(value: date) -> date:
    if value > today_in_indonesia():
        raise ValueError("the date must not lie in the future")
    return value


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
NIP = Annotated[str, AfterValidator(_nip)]
RegionCode = Annotated[str, StringConstraints(max_length=13), AfterValidator(_region_code)]
PastDate = Annotated[date, AfterValidator(_not_future)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$", to_lower=True)]
MediaType = Annotated[
    str,
    StringConstraints(
        pattern=r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$"
    ),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Election(Strict):
    kind: ElectionKind
    year: int = Field(ge=FIRST_ELECTION_YEAR, le=2100)

    @model_validator(mode="after")
    def _not_far_future(self) -> Self:
        if self.year > today_in_indonesia().year + 1:
            raise ValueError("the election year lies too far in the future")
        return self


class Subject(Strict):
    name: Annotated[Text, StringConstraints(max_length=200)]
    nip: NIP
    employment: Employment
    position_class: PositionClass
    agency: Annotated[Text, StringConstraints(max_length=300)]
    agency_region_code: RegionCode


class Evidence(Strict):
    description: Annotated[Text, StringConstraints(max_length=1000)]
    sha256: Sha256
    media_type: MediaType


class Reporter(Strict):
    name: Annotated[Text, StringConstraints(max_length=200)]
    contact: Annotated[Text, StringConstraints(max_length=200)]


class Recommendation(Strict):
    source: Source
    election: Election
    region_code: RegionCode
    occurred_on: PastDate
    discovered_on: PastDate
    category: Category
    subject: Subject
    summary: Annotated[Text, StringConstraints(max_length=5000)]
    evidence: list[Evidence] = Field(default_factory=list, max_length=50)
    reporter: Reporter | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.discovered_on < self.occurred_on:
            raise ValueError("discovered_on must not come before occurred_on")
        if self.source is Source.report and self.reporter is None:
            raise ValueError("a report names its reporter")
        if self.source is Source.finding and self.reporter is not None:
            raise ValueError("a finding has no reporter; use source 'report'")
        return self


class Claims(Strict):
    jti: UUID
    iss: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    aud: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    iat: int = Field(ge=0)
    exp: int | None = Field(default=None, ge=0)


class RecommendationPayload(Claims):
    aud: Literal["siapnet:intake"]
    recommendation: Recommendation
    supersedes: UUID | None = None


class Registration(Strict):
    number: str
    received_at: datetime


class Attestation(Strict):
    by: str
    action: str
    note: str | None = None


class EnvelopePayload(Claims):
    document: str
    signer_jwk: dict[str, str]
    registration: Registration
    attestation: Attestation


class Actor(Strict):
    office: str
    user: str | None = None


class StatusPayload(Claims):
    recommendation_id: UUID
    sequence: int = Field(ge=1)
    from_: str = Field(alias="from")
    to: str
    at: datetime
    actor: Actor
    note: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ReceiptPayload(Claims):
    sub: UUID
    document_sha256: Sha256
    registration_number: str
    received_at: datetime


class DocumentRejected(Exception):
    """A payload that breaks the rules, with one entry per broken field."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(f"{len(errors)} invalid field(s)")
        self.errors = errors


class NotInJurisdiction(Exception):
    """The issuing office may not speak for the region the document is about."""


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    # Input values are never echoed: a wrong field may carry personal data.
    return [
        {
            "field": ".".join(str(part) for part in error["loc"]) or "(root)",
            "message": error["msg"].removeprefix("Value error, "),
            "type": error["type"],
        }
        for error in exc.errors()
    ]


def check_recommendation(payload: dict[str, Any]) -> RecommendationPayload:
    """Validate an office's recommendation payload, its jurisdiction included."""
    try:
        document = RecommendationPayload.model_validate(payload)
    except ValidationError as exc:
        raise DocumentRejected(_errors(exc)) from None
    issuer = regions.office(document.iss)
    if issuer is None:
        raise DocumentRejected(
            [{"field": "iss", "message": "not a Bawaslu office id", "type": "office"}]
        )
    if issuer.tier is regions.Tier.national:
        raise NotInJurisdiction("recommendations start at a regency or province office")
    if not issuer.covers(document.recommendation.region_code):
        raise NotInJurisdiction(
            f"region {document.recommendation.region_code} lies outside the jurisdiction"
            f" of {issuer.id}"
        )
    return document


def parse(model: type[BaseModel], payload: dict[str, Any]) -> Any:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise DocumentRejected(_errors(exc)) from None


def timestamp(moment: datetime | None = None) -> int:
    return int((moment or datetime.now(UTC)).timestamp())

"""The status lifecycle of DESIGN §4: one table of (from, action, tier) → to.

`TRANSITIONS` is the single source of truth: services call `next_status` and `allowed_actions`,
the docs print `table_markdown()`, and the tests iterate over the table instead of copying it.
Each action's required details are checked by `check_details`, and deadlines are counted in
Indonesian working days by `add_working_days`.

`received` is not a lifecycle status: intake reports it while a document is on its way to the
province, before the province holds it as `submitted`.
"""

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

import holidays
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from shared.problems import field_errors
from shared.regions import Tier


class Status(StrEnum):
    submitted = "submitted"
    verified = "verified"
    returned = "returned"
    forwarded = "forwarded"
    sent_to_ruling_body = "sent_to_ruling_body"
    under_review = "under_review"
    not_proven = "not_proven"
    sanction_recommended = "sanction_recommended"
    overdue = "overdue"
    followed_up = "followed_up"


class Action(StrEnum):
    verify = "verify"
    return_ = "return"
    forward = "forward"
    send = "send"
    review = "review"
    recommend = "recommend"
    dismiss = "dismiss"
    record_follow_up = "record_follow_up"
    mark_overdue = "mark_overdue"


class Actor(StrEnum):
    """Who takes an action. Values match `regions.Tier`, so an office's tier compares equal."""

    province = "province"
    national = "national"
    system = "system"


@dataclass(frozen=True)
class Transition:
    source: Status
    action: Action
    actor: Actor
    target: Status


TRANSITIONS: tuple[Transition, ...] = (
    Transition(Status.submitted, Action.verify, Actor.province, Status.verified),
    Transition(Status.submitted, Action.return_, Actor.province, Status.returned),
    Transition(Status.verified, Action.forward, Actor.province, Status.forwarded),
    Transition(Status.forwarded, Action.send, Actor.national, Status.sent_to_ruling_body),
    Transition(Status.sent_to_ruling_body, Action.review, Actor.national, Status.under_review),
    Transition(Status.under_review, Action.dismiss, Actor.national, Status.not_proven),
    Transition(Status.under_review, Action.recommend, Actor.national, Status.sanction_recommended),
    Transition(
        Status.sanction_recommended, Action.record_follow_up, Actor.national, Status.followed_up
    ),
    Transition(Status.sanction_recommended, Action.mark_overdue, Actor.system, Status.overdue),
    Transition(Status.overdue, Action.record_follow_up, Actor.national, Status.followed_up),
)

# A returned office submits a new document that supersedes the returned one.
FINAL: frozenset[Status] = frozenset({Status.returned, Status.not_proven, Status.followed_up})


class TransitionRefused(Exception):
    """The action cannot be taken now by this tier; `allowed` lists what it can do instead."""

    def __init__(self, message: str, *, allowed: list[Action]) -> None:
        super().__init__(message)
        self.message = message
        self.allowed = allowed


def allowed_actions(status: Status, actor: Actor | Tier) -> list[Action]:
    """The actions `actor` may take on a recommendation in `status`, in table order."""
    return [row.action for row in TRANSITIONS if row.source == status and row.actor == actor]


def next_status(status: Status, action: Action, actor: Actor | Tier) -> Status:
    """The status `action` by `actor` leads to, or `TransitionRefused` naming what is allowed."""
    for row in TRANSITIONS:
        if row.source == status and row.action == action and row.actor == actor:
            return row.target
    allowed = allowed_actions(status, actor)
    takers = sorted(
        {row.actor.value for row in TRANSITIONS if (row.source, row.action) == (status, action)}
    )
    if takers:
        message = (
            f"`{action}` on a {status} recommendation is taken by the {' or '.join(takers)} tier,"
            f" not the {actor} tier."
        )
    elif status in FINAL:
        message = f"A {status} recommendation is final; no action can be taken on it."
    elif action in frozenset(Action):
        message = f"`{action}` cannot be taken on a {status} recommendation."
    else:
        message = "This is not a lifecycle action."
    raise TransitionRefused(message, allowed=allowed)


def table_markdown() -> str:
    """`TRANSITIONS` as a Markdown table, so the docs print the table the code runs on."""
    lines = ["| from | action | tier | to |", "| --- | --- | --- | --- |"]
    lines += [
        f"| `{row.source}` | `{row.action}` | {row.actor} | `{row.target}` |" for row in TRANSITIONS
    ]
    return "\n".join(lines) + "\n"


class SanctionKind(StrEnum):
    ethics = "ethics"
    discipline = "discipline"


class SanctionType(StrEnum):
    closed_statement = "closed_statement"
    open_statement = "open_statement"
    allowance_cut_6m = "allowance_cut_6m"
    allowance_cut_9m = "allowance_cut_9m"
    allowance_cut_12m = "allowance_cut_12m"
    demotion_12m = "demotion_12m"
    non_managerial_12m = "non_managerial_12m"
    dismissal = "dismissal"


SANCTION_TYPES: dict[SanctionKind, tuple[SanctionType, ...]] = {
    SanctionKind.ethics: (SanctionType.closed_statement, SanctionType.open_statement),
    SanctionKind.discipline: (
        SanctionType.allowance_cut_6m,
        SanctionType.allowance_cut_9m,
        SanctionType.allowance_cut_12m,
        SanctionType.demotion_12m,
        SanctionType.non_managerial_12m,
        SanctionType.dismissal,
    ),
}

# Indonesia's easternmost zone (WIT, no DST) is the first to reach a new date.
_EASTERNMOST = timezone(timedelta(hours=9), "WIT")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

_Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
_Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
_DecreeNumber = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
]


def _iso_date_only(value: Any) -> Any:
    # Pydantic would otherwise read "20240301" as a Unix timestamp.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise PydanticCustomError("iso_date", "Input should be a date in YYYY-MM-DD form")


class _Details(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoDetails(_Details):
    pass


class ReturnDetails(_Details):
    reason: _Reason


class Sanction(_Details):
    kind: SanctionKind
    type: SanctionType

    @field_validator("type")
    @classmethod
    def _fits_kind(cls, value: SanctionType, info: ValidationInfo) -> SanctionType:
        kind = info.data.get("kind")
        if kind is not None and value not in SANCTION_TYPES[kind]:
            raise PydanticCustomError(
                "sanction_type_mismatch",
                "Not among the {kind} sanctions: {allowed}",
                {"kind": str(kind), "allowed": ", ".join(SANCTION_TYPES[kind])},
            )
        return value


class Ppk(_Details):
    """The official with authority to impose the sanction (pejabat pembina kepegawaian)."""

    title: _Name
    agency: _Name


class RecommendDetails(_Details):
    sanction: Sanction
    ppk: Ppk


class FollowUpDetails(_Details):
    decree_number: _DecreeNumber
    decided_on: Annotated[date, BeforeValidator(_iso_date_only)]

    @field_validator("decided_on")
    @classmethod
    def _not_in_future(cls, value: date, info: ValidationInfo) -> date:
        today = (info.context or {}).get("today") or datetime.now(_EASTERNMOST).date()
        if value > today:
            raise PydanticCustomError("date_in_future", "The decision date is in the future")
        return value


DETAILS: dict[Action, type[_Details]] = {
    Action.return_: ReturnDetails,
    Action.recommend: RecommendDetails,
    Action.record_follow_up: FollowUpDetails,
}


class InvalidDetails(Exception):
    """The details do not fit the action; `errors` is `[{field, message, type}]`, no values."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} invalid detail(s)")
        self.errors = errors


def check_details(
    action: Action, details: dict[str, Any] | None, *, today: date | None = None
) -> dict[str, Any]:
    """The action's details, normalised to JSON values, or `InvalidDetails`; `action` must be
    an `Action` value (the transition is checked first).

    `today` is the latest date a decision may carry; it defaults to today in eastern Indonesia.
    """
    model = DETAILS.get(Action(action), NoDetails)
    try:
        checked = model.model_validate({} if details is None else details, context={"today": today})
    except ValidationError as error:
        raise InvalidDetails(field_errors(error.errors(), prefix=("details",))) from None
    return checked.model_dump(mode="json")


@lru_cache(maxsize=64)
def _public_holidays(country: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, years=year))


def is_working_day(
    day: date, *, country: str = "ID", extra_holidays: frozenset[date] = frozenset()
) -> bool:
    """Monday to Friday, and neither a public holiday of `country` nor one of `extra_holidays`."""
    return (
        day.weekday() < 5
        and day not in extra_holidays
        and day not in _public_holidays(country, day.year)
    )


def add_working_days(
    start: date, days: int, *, country: str = "ID", extra_holidays: frozenset[date] = frozenset()
) -> date:
    """The `days`-th working day after `start` (counting begins the day after `start`).

    `extra_holidays` adds non-working dates the `holidays` package does not know, such as a
    regional election day declared late.
    """
    if days < 0:
        raise ValueError("days must not be negative")
    day = start
    while days:
        day += timedelta(days=1)
        if is_working_day(day, country=country, extra_holidays=extra_holidays):
            days -= 1
    return day

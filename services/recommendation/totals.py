"""Totals for province and national offices (DESIGN §5): counts grouped any way the caller asks,
and the thematic vulnerability index (IKP) per region.

Every number is an SQL aggregate over the caller's scope (`service.in_scope`) and the list's
filters (`service.filtered`): a sum over `recommendation_counts` where those counts hold the
answer, a `GROUP BY` with `count` over the recommendations where they do not (a time filter, a
region below a province, a grouping the counts do not keep). No recommendation is loaded into
Python, and no query names the `document` column, so personal data in a recommendation (the
reporter above all) cannot reach a total, a CSV file or a log.
"""

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlmodel import Session

from services.recommendation.models import COUNTED_COLUMNS, Recommendation, RecommendationCount
from services.recommendation.service import Filters, checked_filters, filtered, in_scope, today
from services.recommendation.settings import RecommendationSettings
from shared import regions
from shared.api import SessionDep
from shared.identity import Caller, CurrentCaller
from shared.lifecycle import Status
from shared.problems import Forbidden, InvalidFields
from shared.schemas import (
    Grouping,
    RegionVulnerability,
    Thresholds,
    Totals,
    Vulnerability,
    Zone,
)

CSV_MEDIA_TYPE = "text/csv"
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


GROUP_COLUMNS: dict[Grouping, tuple[Any, ...]] = {
    Grouping.region: (Recommendation.regency_code,),
    Grouping.office: (Recommendation.office_id,),
    Grouping.category: (Recommendation.category,),
    Grouping.status: (Recommendation.status,),
    Grouping.position_class: (Recommendation.position_class,),
    Grouping.employment: (Recommendation.employment,),
    Grouping.election: (Recommendation.election_kind, Recommendation.election_year),
}


# --- the queries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Backlog:
    total: int
    late_reviews: int
    overdue_follow_ups: int


def late_review(day: date) -> ColumnElement[bool]:
    """Still `submitted` after its province review was due."""
    return and_(Recommendation.status == Status.submitted, Recommendation.review_due_on < day)


def sanction_past_due(day: date) -> ColumnElement[bool]:
    """Still `sanction_recommended` with the PPK's due date passed: national's overdue job
    marks it `overdue` within a minute, and a province learns of it by a status event, so
    counting it with the overdue ones keeps the number right in between."""
    return and_(
        Recommendation.status == Status.sanction_recommended, Recommendation.ppk_due_on < day
    )


def overdue_follow_up(day: date) -> ColumnElement[bool]:
    return or_(Recommendation.status == Status.overdue, sanction_past_due(day))


def tally(
    session: Session, *, caller: Caller, filters: Filters, groupings: list[Grouping], day: date
) -> tuple[list[dict[str, str | int]], Backlog]:
    """One `{grouping: key, ..., "count": n}` per group, sorted by the keys in the order asked
    (with no groupings, one row holding the total), and the backlog.

    The groups come from `recommendation_counts` when it holds them, and the backlog from the
    two due-date indexes; otherwise from one pass over the recommendations, groups and backlog
    together."""
    if filters.countable and all(grouping in COUNTED_GROUPINGS for grouping in groupings):
        groups = _counted_groups(session, caller, filters, groupings)
        late, overdue = _backlog(session, caller, filters, day)
    else:
        groups, late, overdue = _grouped_rows(session, caller, filters, groupings, day)
    total = sum(int(group["count"]) for group in groups)
    # Sorted here, not by the database: PostgreSQL's collation would order "_" and "." its own way.
    groups.sort(key=lambda group: tuple(str(group[g]) for g in groupings))
    return groups, Backlog(total=total, late_reviews=late, overdue_follow_ups=overdue)


COUNTED_GROUPINGS = {
    grouping
    for grouping, columns in GROUP_COLUMNS.items()
    if all(column.key in COUNTED_COLUMNS for column in columns)
}


def _counted_groups(
    session: Session, caller: Caller, filters: Filters, groupings: list[Grouping]
) -> list[dict[str, str | int]]:
    columns = [
        getattr(RecommendationCount, column.key)
        for grouping in groupings
        for column in GROUP_COLUMNS[grouping]
    ]
    statement = select(*columns, func.coalesce(func.sum(RecommendationCount.count), 0))
    statement = filtered(
        in_scope(statement, caller, RecommendationCount), filters, RecommendationCount
    )
    if columns:
        # A count that fell to 0 keeps its row; a group of none is no group.
        statement = statement.group_by(*columns).having(func.sum(RecommendationCount.count) > 0)
    return [_group(iter(row), groupings) for row in session.exec(statement).all()]


def _backlog(session: Session, caller: Caller, filters: Filters, day: date) -> tuple[int, int]:
    """Late reviews and overdue follow-ups: the `overdue` from the counts, the other two each
    from its status's stretch of a due-date index."""

    def count(condition: ColumnElement[bool]):
        statement = select(func.count()).select_from(Recommendation).where(condition)
        return filtered(in_scope(statement, caller), filters).scalar_subquery()

    overdue = select(func.coalesce(func.sum(RecommendationCount.count), 0)).where(
        RecommendationCount.status == Status.overdue
    )
    overdue = filtered(in_scope(overdue, caller, RecommendationCount), filters, RecommendationCount)
    late, marked, past_due = session.exec(
        select(count(late_review(day)), overdue.scalar_subquery(), count(sanction_past_due(day)))
    ).one()
    return late, int(marked) + past_due


def _grouped_rows(
    session: Session, caller: Caller, filters: Filters, groupings: list[Grouping], day: date
) -> tuple[list[dict[str, str | int]], int, int]:
    """The groups, late reviews and overdue follow-ups in one pass over the recommendations,
    where a query for the groups and another for the backlog would read every row twice."""
    columns = [column for grouping in groupings for column in GROUP_COLUMNS[grouping]]
    statement = select(
        *columns,
        func.count(),
        func.count(case((late_review(day), 1))),
        func.count(case((overdue_follow_up(day), 1))),
    ).select_from(Recommendation)
    statement = filtered(in_scope(statement, caller), filters)
    if columns:
        statement = statement.group_by(*columns)
    groups = []
    late = overdue = 0
    for row in session.exec(statement).all():
        values = iter(row)
        groups.append(_group(values, groupings))
        late, overdue = late + next(values), overdue + next(values)
    return groups, late, overdue


def _group(values: Iterator[Any], groupings: list[Grouping]) -> dict[str, str | int]:
    """`{grouping: key, ..., "count": n}` from a row's next values."""
    group: dict[str, str | int] = {}
    for grouping in groupings:
        if grouping is Grouping.election:
            kind, year = next(values), next(values)
            group[grouping] = f"{kind}-{year}"
        else:
            group[grouping] = next(values)
    group["count"] = int(next(values))
    return group


def cases_by_region(
    session: Session, *, caller: Caller, filters: Filters, level: Literal["province", "regency"]
) -> dict[str, int]:
    """Cases per province or regency code, from the counts when they hold them. A `returned`
    recommendation is not a case: it was either withdrawn or corrected by a new document that
    supersedes it and is counted itself."""
    rows = RecommendationCount if filters.countable else Recommendation
    column = rows.province_code if level == "province" else rows.regency_code
    case_count = func.sum(rows.count) if rows is RecommendationCount else func.count()
    statement = select(column, case_count).select_from(rows).where(rows.status != Status.returned)
    statement = filtered(in_scope(statement, caller, rows), filters, rows).group_by(column)
    return {code: int(cases) for code, cases in session.exec(statement).all()}


def score(cases: int, most: int) -> int:
    """The IKP score: the most vulnerable region is 100, the others in proportion, rounded
    half up; no cases anywhere scores 0 everywhere."""
    if most <= 0:
        return 0
    return (200 * cases + most) // (2 * most)


def zone_of(cases: int, settings: RecommendationSettings) -> Zone:
    if cases < settings.zone_yellow_from:
        return Zone.green
    if cases < settings.zone_red_from:
        return Zone.yellow
    return Zone.red


# --- the routes ------------------------------------------------------------------------------


def totals_caller(caller: CurrentCaller) -> Caller:
    if caller.office.tier is regions.Tier.regency:
        raise Forbidden("totals are for province and national offices")
    return caller


TotalsCaller = Annotated[Caller, Depends(totals_caller)]
router = APIRouter(tags=["totals"])


@router.get(
    "/v1/stats",
    response_model=Totals,
    operation_id="get_stats",
    responses={200: {"content": {CSV_MEDIA_TYPE: {}}}},
)
def get_stats(
    caller: TotalsCaller,
    session: SessionDep,
    response: Response,
    group_by: Annotated[
        list[str] | None,
        Query(description="any of " + ", ".join(Grouping) + "; comma-separated or repeated"),
    ] = None,
    status_: Annotated[str | None, Query(alias="status")] = None,
    category: str | None = None,
    region_code: str | None = None,
    office: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    accept: Annotated[str | None, Header()] = None,
) -> Totals | Response:
    """Counts of the caller's recommendations by the groupings asked, with the total and the
    overdue work; `Accept: text/csv` answers the groups as CSV."""
    groupings = parse_groupings(group_by or [])
    filters = checked_filters(
        status=status_,
        category=category,
        region_code=region_code,
        office=office,
        since=since,
        until=until,
    )
    day = today()
    groups, counted = tally(session, caller=caller, filters=filters, groupings=groupings, day=day)
    if wants_csv(accept):
        return Response(
            groups_csv(groupings, groups),
            media_type=CSV_MEDIA_TYPE,
            headers={"vary": "accept", "content-disposition": 'attachment; filename="stats.csv"'},
        )
    response.headers["vary"] = "accept"
    return Totals(
        groups=groups,
        total=counted.total,
        late_reviews=counted.late_reviews,
        overdue_follow_ups=counted.overdue_follow_ups,
        as_of=day,
    )


@router.get(
    "/v1/stats/vulnerability", response_model=Vulnerability, operation_id="get_vulnerability"
)
def get_vulnerability(
    caller: TotalsCaller,
    session: SessionDep,
    request: Request,
    level: Literal["province", "regency"] | None = None,
    category: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Vulnerability:
    """The IKP per region, every region listed even with no case: a province office's
    regencies/cities, or for national every province (`level=regency`: every regency of the
    provinces this service holds — all of them at the national tier)."""
    settings: RecommendationSettings = request.app.state.settings
    office = caller.office
    if office.tier is regions.Tier.province:
        if level == "province":
            raise InvalidFields(
                "a province office's vulnerability is per regency/city",
                errors=[{"field": "level", "message": "use level=regency", "type": "enum"}],
            )
        level, listed = "regency", regions.regencies(office.province_code or "")
    elif level == "regency":
        held = (
            [region.code for region in regions.provinces()]
            if settings.tier == "national"
            else settings.provinces
        )
        listed = [regency for code in held for regency in regions.regencies(code)]
    else:
        level, listed = "province", regions.provinces()
    filters = checked_filters(category=category, since=since, until=until)
    cases = cases_by_region(session, caller=caller, filters=filters, level=level)
    most = max((cases.get(region.code, 0) for region in listed), default=0)
    ranked = [
        RegionVulnerability(
            region_code=region.code,
            name=region.name,
            cases=cases.get(region.code, 0),
            score=score(cases.get(region.code, 0), most),
            zone=zone_of(cases.get(region.code, 0), settings),
        )
        for region in listed
    ]
    ranked.sort(key=lambda entry: (-entry.score, entry.region_code))
    return Vulnerability(
        level=level,
        regions=ranked,
        thresholds=Thresholds(
            yellow_from=settings.zone_yellow_from, red_from=settings.zone_red_from
        ),
    )


# --- reading the request, shaping the answer -------------------------------------------------


def parse_groupings(values: list[str]) -> list[Grouping]:
    """`group_by=region,status` and `group_by=region&group_by=status` alike; repeats ignored."""
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in {grouping.value for grouping in Grouping}]
    if unknown:
        raise InvalidFields(
            "group_by names an unknown grouping",
            errors=[
                {
                    "field": "group_by",
                    "message": f"{name!r} is not one of {', '.join(Grouping)}",
                    "type": "enum",
                }
                for name in unknown
            ],
        )
    return list(dict.fromkeys(Grouping(name) for name in names))


def wants_csv(accept: str | None) -> bool:
    """Whether the Accept header prefers CSV to JSON (JSON wins a tie it names explicitly)."""
    if not accept:
        return False
    quality: dict[str, float] = {}
    for entry in accept.split(","):
        media_type, *parameters = (part.strip() for part in entry.split(";"))
        q = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        quality[media_type.lower()] = max(q, quality.get(media_type.lower(), 0.0))
    csv_q = quality.get(CSV_MEDIA_TYPE, quality.get("text/*", 0.0))
    json_q = quality.get("application/json", quality.get("application/*", quality.get("*/*", 0)))
    return csv_q > 0 and (csv_q > json_q or (csv_q == json_q and "application/json" not in quality))


def groups_csv(groupings: list[Grouping], groups: list[dict[str, str | int]]) -> str:
    """A header of the groupings and `count`, then one row per group."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*groupings, "count"])
    for group in groups:
        writer.writerow([*(_cell(group[grouping]) for grouping in groupings), group["count"]])
    return buffer.getvalue()


def _cell(value: str | int) -> str | int:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value

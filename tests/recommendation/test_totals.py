"""Specification: totals and the vulnerability index count exactly the caller's recommendations,
grouped and filtered as asked, and never carry personal data out.

The fixture is fifteen recommendations across Banten (36) and Jawa Barat (32), written straight
into the service's database; every expected number below is counted by hand from `ROWS`."""

import base64
import json
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, event, text, update
from sqlmodel import select

from services.recommendation import totals
from services.recommendation.app import create_app
from services.recommendation.models import Recommendation
from services.recommendation.service import WIB, today
from shared import regions
from tests.conftest import recommendation_settings, running

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
REPORT = json.loads((EXAMPLES / "recommendation-report.json").read_text())
REPORTER = REPORT["reporter"]["name"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _compact(payload: dict) -> str:
    header = _b64(json.dumps({"alg": "ES256", "typ": "siapnet-recommendation+jws"}).encode())
    return f"{header}.{_b64(json.dumps(payload).encode())}.{_b64(b'not-a-real-signature')}"


# A document whose payload names the reporter, as a report's does.
DOCUMENT = _compact({"jti": "r", "iss": "bawaslu-36.01", "recommendation": REPORT})
DOCUMENT_PAYLOAD = DOCUMENT.split(".")[1]

T = today()
# Review and PPK due dates are days from today (None for none); every row arrived at 10:00 WIB.
# id, office, region, category, status, position class, employment, election, received,
# review due, PPK due
# fmt: off
ROWS = [
    ("r01", "bawaslu-36.01", "36.01.01", "social_media_campaign", "submitted", "pelaksana", "pns",
     "pilkada-2024", "2024-11-01", -3, None),
    ("r02", "bawaslu-36.01", "36.01", "social_media_campaign", "submitted", "administrator", "pns",
     "pilkada-2024", "2024-11-05", +2, None),
    ("r03", "bawaslu-36.01", "36.01.02", "partisan_photo", "verified", "pelaksana", "pppk",
     "pilkada-2024", "2024-11-10", -5, None),
    ("r04", "bawaslu-36.01", "36.01", "social_media_campaign", "sanction_recommended", "pengawas",
     "pns", "pilkada-2024", "2024-10-01", None, -1),
    ("r05", "bawaslu-36.01", "36.01", "declaration_attendance", "overdue", "jpt", "pns",
     "pilkada-2024", "2024-09-15", None, -20),
    ("r06", "bawaslu-36.01", "36.01", "social_media_campaign", "returned", "pelaksana", "pns",
     "pilkada-2024", "2024-10-20", -9, None),
    ("r07", "bawaslu-36.02", "36.02", "partisan_activity", "submitted", "fungsional", "pppk",
     "pemilu-2024", "2024-01-20", -1, None),
    ("r08", "bawaslu-36.02", "36.02", "social_media_campaign", "sanction_recommended",
     "pelaksana", "pns", "pemilu-2024", "2024-02-01", None, 0),
    ("r09", "bawaslu-36.72", "36.72", "partisan_photo", "followed_up", "administrator", "pns",
     "pemilu-2024", "2024-02-10", None, -30),
    ("r10", "bawaslu-36.72", "36.72", "social_media_campaign", "not_proven", "pelaksana", "pppk",
     "pilkada-2024", "2024-11-20", None, None),
    ("r11", "bawaslu-36", "36.74.01", "campaign_props", "submitted", "pelaksana", "pns",
     "pilkada-2024", "2024-11-25", 0, None),
    ("r12", "bawaslu-36.01", "36.01", "open_support", "under_review", "pengawas", "pns",
     "pilkada-2024", "2024-11-28", None, None),
    ("r13", "bawaslu-32.01", "32.01", "social_media_campaign", "submitted", "pelaksana", "pns",
     "pilkada-2024", "2024-11-03", -2, None),
    ("r14", "bawaslu-32.73", "32.73", "partisan_activity", "overdue", "administrator", "pppk",
     "pilkada-2024", "2024-10-03", None, -3),
    ("r15", "bawaslu-32.73", "32.73", "social_media_campaign", "verified", "pelaksana", "pns",
     "pemilu-2024", "2024-02-05", None, None),
]
# fmt: on


def _due(days: int | None) -> date | None:
    return None if days is None else T + timedelta(days=days)


def seed(app) -> None:
    """Write `ROWS` into the service's database, as if each had arrived in an envelope."""
    with app.state.database.session() as session:
        for seq, row in enumerate(ROWS, start=1):
            rid, office, region, category, status, position, employment, election = row[:8]
            received_on, review_due, ppk_due = date.fromisoformat(row[8]), row[9], row[10]
            kind, year = election.split("-")
            received = datetime.combine(received_on, time(10), WIB)
            session.add(
                Recommendation(
                    seq=seq,
                    id=f"00000000-0000-4000-8000-0000000000{rid[1:]}",
                    office_id=office,
                    province_code=region[:2],
                    regency_code=region[:5],
                    region_code=region,
                    category=category,
                    source="report",
                    election_kind=kind,
                    election_year=int(year),
                    position_class=position,
                    employment=employment,
                    occurred_on=received_on - timedelta(days=2),
                    registration_number=f"REG-{rid}",
                    received_at=received,
                    arrived_at=received,
                    status=status,
                    review_due_on=_due(review_due),
                    ppk_due_on=_due(ppk_due),
                    document=DOCUMENT,
                    signer_jwk="{}",
                    envelope=DOCUMENT,
                    updated_at=received,
                )
            )
        session.commit()


@pytest.fixture
async def province(tmp_path: Path, identity_key, database_url) -> AsyncIterator[httpx.AsyncClient]:
    """The province service for Banten and Jawa Barat, seeded, on SQLite and on PostgreSQL."""
    settings = recommendation_settings(tmp_path, "province").model_copy(
        update={"database_url": database_url}
    )
    async with running(create_app(settings), "http://province") as client:
        seed(client.app)
        yield client


@pytest.fixture
async def national(national) -> httpx.AsyncClient:
    seed(national.app)
    return national


@pytest.fixture
def as_office(token_for):
    def headers(office: str, **more: str) -> dict[str, str]:
        return {"authorization": f"Bearer {token_for(office, 'officer')}", **more}

    return headers


async def stats(client, headers, **params):
    answer = await client.get("/v1/stats", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


# --- counts ----------------------------------------------------------------------------------


async def test_without_group_by_one_group_holds_the_total_and_the_overdue_work(province, as_office):
    body = await stats(province, as_office("bawaslu-36"))

    assert body == {
        "groups": [{"count": 12}],
        "total": 12,
        "late_reviews": 2,  # r01, r07; r11 is due today, r03 is no longer submitted
        "overdue_follow_ups": 2,  # r05 marked overdue, r04 past its PPK due date; r08 due today
        "as_of": T.isoformat(),
    }


async def test_group_by_category_counts_each_category(province, as_office):
    body = await stats(province, as_office("bawaslu-36"), group_by="category")

    assert body["groups"] == [
        {"category": "campaign_props", "count": 1},
        {"category": "declaration_attendance", "count": 1},
        {"category": "open_support", "count": 1},
        {"category": "partisan_activity", "count": 1},
        {"category": "partisan_photo", "count": 2},
        {"category": "social_media_campaign", "count": 6},
    ]
    assert body["total"] == 12


async def test_group_by_region_and_status_groups_by_regency_sorted_by_keys(province, as_office):
    body = await stats(province, as_office("bawaslu-36"), group_by="region,status")

    assert body["groups"] == [
        {"region": "36.01", "status": "overdue", "count": 1},
        {"region": "36.01", "status": "returned", "count": 1},
        {"region": "36.01", "status": "sanction_recommended", "count": 1},
        {"region": "36.01", "status": "submitted", "count": 2},
        {"region": "36.01", "status": "under_review", "count": 1},
        {"region": "36.01", "status": "verified", "count": 1},
        {"region": "36.02", "status": "sanction_recommended", "count": 1},
        {"region": "36.02", "status": "submitted", "count": 1},
        {"region": "36.72", "status": "followed_up", "count": 1},
        {"region": "36.72", "status": "not_proven", "count": 1},
        {"region": "36.74", "status": "submitted", "count": 1},
    ]


async def test_repeated_group_by_is_the_same_as_comma_separated(province, as_office):
    headers = as_office("bawaslu-36")
    repeated = await province.get(
        "/v1/stats", params=[("group_by", "region"), ("group_by", "status")], headers=headers
    )

    assert repeated.json() == await stats(province, headers, group_by="region, status,region")


async def test_other_groupings_render_their_keys(province, as_office):
    headers = as_office("bawaslu-ri")

    by_election = await stats(province, headers, group_by="election")
    by_employment = await stats(province, headers, group_by="employment,position_class")
    by_office = await stats(province, headers, group_by="office", region_code="32")

    assert by_election["groups"] == [
        {"election": "pemilu-2024", "count": 4},
        {"election": "pilkada-2024", "count": 11},
    ]
    assert by_employment["groups"] == [
        {"employment": "pns", "position_class": "administrator", "count": 2},
        {"employment": "pns", "position_class": "jpt", "count": 1},
        {"employment": "pns", "position_class": "pelaksana", "count": 6},
        {"employment": "pns", "position_class": "pengawas", "count": 2},
        {"employment": "pppk", "position_class": "administrator", "count": 1},
        {"employment": "pppk", "position_class": "fungsional", "count": 1},
        {"employment": "pppk", "position_class": "pelaksana", "count": 2},
    ]
    assert by_office["groups"] == [
        {"office": "bawaslu-32.01", "count": 1},
        {"office": "bawaslu-32.73", "count": 2},
    ]


# --- filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "total", "late", "overdue"),
    [
        ({"status": "submitted"}, 4, 2, 0),
        ({"category": "social_media_campaign"}, 6, 1, 1),
        ({"region_code": "36.01"}, 7, 1, 2),
        ({"region_code": "36.01.01"}, 1, 1, 0),
        ({"office": "bawaslu-36"}, 1, 0, 0),
        ({"since": "2024-11-01T00:00:00+07:00", "until": "2024-12-01T00:00:00+07:00"}, 6, 1, 0),
        ({"since": "2024-11-01T00:00:00"}, 6, 1, 0),  # no zone given: WIB
        ({"since": "2024-11-01T12:00:00+07:00"}, 5, 0, 0),
        ({"until": "2024-02-01T10:00:00+07:00"}, 1, 1, 0),  # r08 arrived exactly then
    ],
)
async def test_filters_narrow_every_count(province, as_office, params, total, late, overdue):
    body = await stats(province, as_office("bawaslu-36"), **params)

    assert (body["total"], body["late_reviews"], body["overdue_follow_ups"]) == (
        total,
        late,
        overdue,
    )
    assert body["groups"] == [{"count": total}]


async def test_a_filter_naming_no_known_code_is_refused(province, as_office):
    answer = await province.get(
        "/v1/stats",
        params={"category": "social_media", "status": "done", "region_code": "99.99"},
        headers=as_office("bawaslu-36"),
    )

    assert answer.status_code == 422
    assert [error["field"] for error in answer.json()["errors"]] == [
        "status",
        "category",
        "region_code",
    ]


# --- scope -----------------------------------------------------------------------------------


async def test_a_province_office_counts_only_its_own_province(province, as_office):
    banten = await stats(province, as_office("bawaslu-36"), group_by="region")
    jabar = await stats(province, as_office("bawaslu-32"), group_by="region")

    assert [group["region"] for group in banten["groups"]] == ["36.01", "36.02", "36.72", "36.74"]
    assert jabar == {
        "groups": [{"region": "32.01", "count": 1}, {"region": "32.73", "count": 2}],
        "total": 3,
        "late_reviews": 1,
        "overdue_follow_ups": 1,
        "as_of": T.isoformat(),
    }
    # Asking for another province's region does not widen the scope.
    other = await stats(province, as_office("bawaslu-36"), region_code="32")
    assert other["total"] == 0


async def test_a_regency_office_gets_no_totals(province, as_office):
    headers = as_office("bawaslu-36.01")

    for path in ("/v1/stats", "/v1/stats/vulnerability"):
        answer = await province.get(path, headers=headers)
        assert answer.status_code == 403
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["status"] == 403


async def test_totals_need_a_token(province):
    assert (await province.get("/v1/stats")).status_code == 401


async def test_the_national_office_at_the_national_service_counts_everything(national, as_office):
    body = await stats(national, as_office("bawaslu-ri"), group_by="region")

    assert body["total"] == 15
    assert (body["late_reviews"], body["overdue_follow_ups"]) == (3, 3)
    assert body["groups"] == [
        {"region": "32.01", "count": 1},
        {"region": "32.73", "count": 2},
        {"region": "36.01", "count": 7},
        {"region": "36.02", "count": 2},
        {"region": "36.72", "count": 2},
        {"region": "36.74", "count": 1},
    ]


# --- CSV -------------------------------------------------------------------------------------


async def test_csv_has_a_header_and_one_row_per_group(province, as_office):
    answer = await province.get(
        "/v1/stats",
        params={"group_by": "category"},
        headers=as_office("bawaslu-36", accept="text/csv"),
    )

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.text == (
        "category,count\r\n"
        "campaign_props,1\r\n"
        "declaration_attendance,1\r\n"
        "open_support,1\r\n"
        "partisan_activity,1\r\n"
        "partisan_photo,2\r\n"
        "social_media_campaign,6\r\n"
    )


async def test_csv_without_group_by_is_the_total(province, as_office):
    answer = await province.get("/v1/stats", headers=as_office("bawaslu-32", accept="text/csv"))

    assert answer.text == "count\r\n3\r\n"


async def test_csv_with_two_groupings(province, as_office):
    answer = await province.get(
        "/v1/stats",
        params={"group_by": "election,region", "region_code": "32"},
        headers=as_office("bawaslu-ri", accept="text/csv;q=0.9, application/json;q=0.5"),
    )

    assert answer.text == (
        "election,region,count\r\npemilu-2024,32.73,1\r\npilkada-2024,32.01,1\r\n"
        "pilkada-2024,32.73,1\r\n"
    )


async def test_json_is_answered_unless_csv_is_preferred(province, as_office):
    for accept in ("application/json", "*/*", "text/csv, application/json", "text/html"):
        answer = await province.get("/v1/stats", headers=as_office("bawaslu-36", accept=accept))
        assert answer.headers["content-type"] == "application/json", accept


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted():
    groupings = [totals.Grouping.office, totals.Grouping.category]
    groups = [
        {"office": '=HYPERLINK("http://x")', "category": "+1", "count": 1},
        {"office": "@SUM(A1)", "category": "-2", "count": 2},
        {"office": "bawaslu-36", "category": "other", "count": 3},
    ]

    assert totals.groups_csv(groupings, groups) == (
        "office,category,count\r\n"
        '"\'=HYPERLINK(""http://x"")",\'+1,1\r\n'
        "'@SUM(A1),'-2,2\r\n"
        "bawaslu-36,other,3\r\n"
    )


# --- the counts kept by trigger --------------------------------------------------------------

# Any time filter makes totals group the recommendations themselves; this one keeps them all.
ALL_TIME = "2000-01-01T00:00:00+07:00"
COUNTED_ASKS = [
    {},
    {"group_by": "region"},
    {"group_by": "office,category"},
    {"group_by": "status,election"},
    {"group_by": "region,status", "category": "social_media_campaign"},
    {"group_by": "category", "region_code": "36"},
    {"group_by": "election", "status": "submitted", "office": "bawaslu-36.01"},
]


async def assert_counts_agree_with_the_recommendations(client, headers) -> None:
    for params in COUNTED_ASKS:
        counted = await stats(client, headers, **params)
        from_rows = await stats(client, headers, **params, since=ALL_TIME)
        assert counted == from_rows, params
    for level in ("province", "regency"):
        counted = await client.get(
            "/v1/stats/vulnerability", params={"level": level}, headers=headers
        )
        from_rows = await client.get(
            "/v1/stats/vulnerability", params={"level": level, "since": ALL_TIME}, headers=headers
        )
        assert counted.json() == from_rows.json(), level


async def test_counted_totals_are_the_totals_of_the_recommendations(province, as_office):
    await assert_counts_agree_with_the_recommendations(province, as_office("bawaslu-ri"))
    await assert_counts_agree_with_the_recommendations(province, as_office("bawaslu-36"))


async def test_counts_follow_every_change_however_it_is_made(province, as_office):
    """Through the ORM, by a bulk UPDATE, by DELETE and by INSERT: the trigger sees them all."""
    with province.app.state.database.session() as session:
        r01 = session.exec(
            select(Recommendation).where(Recommendation.registration_number == "REG-r01")
        ).one()
        r01.status = "under_review"
        r01.category = "partisan_photo"
        session.add(r01)
        session.commit()
        session.exec(
            update(Recommendation)
            .where(Recommendation.status == "sanction_recommended")
            .values(status="overdue")
        )
        session.exec(delete(Recommendation).where(Recommendation.registration_number == "REG-r13"))
        session.exec(
            update(Recommendation)  # a change to no counted column counts nothing
            .where(Recommendation.registration_number == "REG-r02")
            .values(employment="pppk", version=Recommendation.version + 1)
        )
        session.commit()

    ri, banten = as_office("bawaslu-ri"), as_office("bawaslu-36")
    await assert_counts_agree_with_the_recommendations(province, ri)
    await assert_counts_agree_with_the_recommendations(province, banten)
    by_status = await stats(province, banten, group_by="status")
    assert {group["status"]: group["count"] for group in by_status["groups"]} == {
        "followed_up": 1,
        "not_proven": 1,
        "overdue": 3,  # r05, and r04 and r08 moved by the bulk UPDATE
        "returned": 1,
        "submitted": 3,  # r01 went under review
        "under_review": 2,
        "verified": 1,
    }
    # Jawa Barat's only submitted recommendation was deleted: its count is 0, and no group.
    jabar = await stats(province, ri, group_by="status", region_code="32")
    assert "submitted" not in {group["status"] for group in jabar["groups"]}


async def test_emptying_the_recommendations_empties_the_counts(province, as_office):
    with province.app.state.database.session() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.exec(text("TRUNCATE recommendations, status_history"))
        else:
            session.exec(delete(Recommendation))  # SQLite has no TRUNCATE
        session.commit()

    body = await stats(province, as_office("bawaslu-ri"), group_by="status")

    assert (body["groups"], body["total"]) == ([], 0)


# --- no personal data ------------------------------------------------------------------------


async def test_totals_never_read_the_document_so_the_reporter_never_appears(province, as_office):
    statements: list[str] = []
    engine = province.app.state.database.engine

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement.lower())

    event.listen(engine, "before_cursor_execute", record)
    try:
        answers = [
            await province.get(
                "/v1/stats",
                params={"group_by": ",".join(totals.Grouping)},
                headers=as_office("bawaslu-ri", accept=accept),
            )
            for accept in ("application/json", "text/csv")
        ]
        answers.append(
            await province.get("/v1/stats/vulnerability", headers=as_office("bawaslu-36"))
        )
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    for answer in answers:
        assert REPORTER not in answer.text
        assert REPORT["reporter"]["contact"] not in answer.text
        assert DOCUMENT_PAYLOAD not in answer.text
    assert statements
    for statement in statements:
        assert "document" not in statement and "envelope" not in statement, statement


# --- group_by errors -------------------------------------------------------------------------


async def test_an_unknown_grouping_is_refused_with_the_field_named(province, as_office):
    answer = await province.get(
        "/v1/stats", params={"group_by": "region,reporter"}, headers=as_office("bawaslu-36")
    )

    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["type"].endswith("/invalid-fields")
    assert body["errors"] == [
        {
            "field": "group_by",
            "message": "'reporter' is not one of region, office, category, status, "
            "position_class, employment, election",
            "type": "enum",
        }
    ]


# --- vulnerability ---------------------------------------------------------------------------


def _entries(*rows: tuple[str, int, int, str]) -> list[dict]:
    return [
        {
            "region_code": code,
            "name": regions.region(code).name,  # type: ignore[union-attr]
            "cases": cases,
            "score": score,
            "zone": zone,
        }
        for code, cases, score, zone in rows
    ]


async def test_a_province_sees_every_regency_of_its_province_scored_and_zoned(province, as_office):
    answer = await province.get("/v1/stats/vulnerability", headers=as_office("bawaslu-36"))

    assert answer.status_code == 200
    assert answer.json() == {
        "level": "regency",
        # 36.01 has seven recommendations, but the returned r06 is not a case.
        "regions": _entries(
            ("36.01", 6, 100, "red"),
            ("36.02", 2, 33, "yellow"),
            ("36.72", 2, 33, "yellow"),
            ("36.74", 1, 17, "yellow"),
            ("36.03", 0, 0, "green"),
            ("36.04", 0, 0, "green"),
            ("36.71", 0, 0, "green"),
            ("36.73", 0, 0, "green"),
        ),
        "thresholds": {"yellow_from": 1, "red_from": 5},
    }
    assert len(answer.json()["regions"]) == len(regions.regencies("36")) == 8


async def test_vulnerability_filters_by_category_and_time(province, as_office):
    headers = as_office("bawaslu-36")

    social = await province.get(
        "/v1/stats/vulnerability", params={"category": "social_media_campaign"}, headers=headers
    )
    late_2024 = await province.get(
        "/v1/stats/vulnerability",
        params={"since": "2024-11-01T00:00:00+07:00", "until": "2024-11-21T00:00:00+07:00"},
        headers=headers,
    )
    nothing = await province.get(
        "/v1/stats/vulnerability", params={"category": "other"}, headers=headers
    )

    assert social.json()["regions"][:4] == _entries(
        ("36.01", 3, 100, "yellow"),
        ("36.02", 1, 33, "yellow"),
        ("36.72", 1, 33, "yellow"),
        ("36.03", 0, 0, "green"),
    )
    assert late_2024.json()["regions"][:3] == _entries(
        ("36.01", 3, 100, "yellow"),  # r01, r02, r03
        ("36.72", 1, 33, "yellow"),  # r10
        ("36.02", 0, 0, "green"),
    )
    assert {(r["score"], r["zone"]) for r in nothing.json()["regions"]} == {(0, "green")}


async def test_national_sees_every_province(province, as_office):
    answer = await province.get("/v1/stats/vulnerability", headers=as_office("bawaslu-ri"))

    body = answer.json()
    others = sorted(r.code for r in regions.provinces() if r.code not in {"36", "32"})
    assert body["level"] == "province"
    assert len(body["regions"]) == len(regions.provinces()) == 38
    assert body["regions"][:3] == _entries(
        ("36", 11, 100, "red"), ("32", 3, 27, "yellow"), (others[0], 0, 0, "green")
    )
    assert [r["region_code"] for r in body["regions"][2:]] == others


async def test_national_per_regency_lists_the_regencies_of_the_provinces_held(
    province, national, as_office
):
    headers = as_office("bawaslu-ri")
    at_province = await province.get(
        "/v1/stats/vulnerability", params={"level": "regency"}, headers=headers
    )
    at_national = await national.get(
        "/v1/stats/vulnerability", params={"level": "regency"}, headers=headers
    )

    body = at_province.json()
    assert body["level"] == "regency"
    assert len(body["regions"]) == len(regions.regencies("36")) + len(regions.regencies("32"))
    assert body["regions"][:7] == _entries(
        ("36.01", 6, 100, "red"),
        ("32.73", 2, 33, "yellow"),
        ("36.02", 2, 33, "yellow"),
        ("36.72", 2, 33, "yellow"),
        ("32.01", 1, 17, "yellow"),
        ("36.74", 1, 17, "yellow"),
        ("32.02", 0, 0, "green"),
    )
    assert len(at_national.json()["regions"]) == 514


async def test_a_province_cannot_ask_for_the_province_level(province, as_office):
    answer = await province.get(
        "/v1/stats/vulnerability", params={"level": "province"}, headers=as_office("bawaslu-36")
    )

    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "level"


async def test_zones_follow_the_settings(tmp_path, identity_key, as_office):
    settings = recommendation_settings(tmp_path, "province", zone_yellow_from=2, zone_red_from=7)
    async with running(create_app(settings), "http://province") as client:
        seed(client.app)
        answer = await client.get("/v1/stats/vulnerability", headers=as_office("bawaslu-36"))

    body = answer.json()
    assert body["thresholds"] == {"yellow_from": 2, "red_from": 7}
    assert [(r["region_code"], r["zone"]) for r in body["regions"][:5]] == [
        ("36.01", "yellow"),
        ("36.02", "yellow"),
        ("36.72", "yellow"),
        ("36.74", "green"),
        ("36.03", "green"),
    ]


@pytest.mark.parametrize(
    ("cases", "most", "expected"),
    [(0, 0, 0), (0, 5, 0), (5, 5, 100), (1, 8, 13), (3, 8, 38), (1, 3, 33), (2, 3, 67)],
)
def test_the_score_is_proportional_to_the_most_vulnerable_and_rounds_half_up(cases, most, expected):
    assert totals.score(cases, most) == expected

"""Specification: each office reads what lies in its jurisdiction — and learns nothing else."""

import pytest
from sqlmodel import Session

from shared import audit
from tests.recommendation.conftest import eventually

pytestmark = pytest.mark.anyio


async def test_each_office_lists_only_what_lies_in_its_jurisdiction(system):
    pandeglang, lebak = await system.office("bawaslu-36.01"), await system.office("bawaslu-36.02")
    own = await system.submitted(pandeglang)
    lebak_payload = lebak.payload()
    lebak_payload["recommendation"]["region_code"] = "36.02"
    neighbour = await system.submitted(lebak, **{"recommendation": lebak_payload["recommendation"]})

    async def ids(office: str) -> set[str]:
        answer = await system.province.get("/v1/recommendations", headers=system.as_office(office))
        return {item["id"] for item in answer.json()["items"]}

    assert await ids("bawaslu-36.01") == {own}
    assert await ids("bawaslu-36.02") == {neighbour}
    assert await ids("bawaslu-36") == {own, neighbour}
    assert await ids("bawaslu-32") == set()
    outsider = await system.province.get(
        f"/v1/recommendations/{own}", headers=system.as_office("bawaslu-36.02")
    )
    assert outsider.status_code == 404
    unknown = await system.province.get(
        "/v1/recommendations/00000000-0000-4000-8000-000000000000",
        headers=system.as_office("bawaslu-36"),
    )
    assert outsider.json()["detail"].split()[0] == unknown.json()["detail"].split()[0]


async def test_pages_neither_repeat_nor_skip_while_rows_are_added(system):
    office = await system.office()
    first_batch = [await system.submitted(office) for _ in range(5)]
    headers = system.as_office("bawaslu-36")
    page_one = (await system.province.get("/v1/recommendations?limit=2", headers=headers)).json()
    later = [await system.submitted(office) for _ in range(2)]  # arrive mid-pagination

    seen = [item["id"] for item in page_one["items"]]
    cursor = page_one["next_cursor"]
    while cursor:
        page = (
            await system.province.get(
                f"/v1/recommendations?limit=2&cursor={cursor}", headers=headers
            )
        ).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]

    assert seen == list(reversed(first_batch))  # newest first, each once
    fresh = (await system.province.get("/v1/recommendations?limit=2", headers=headers)).json()
    assert [item["id"] for item in fresh["items"]] == list(reversed(later))


async def test_filters_narrow_the_list(system):
    office = await system.office()
    rec = await system.submitted(office)
    await system.act(system.province, "bawaslu-36", rec, "verify")
    other = await system.submitted(office)
    headers = system.as_office("bawaslu-36")

    async def listed(query: str) -> list[str]:
        answer = await system.province.get(f"/v1/recommendations?{query}", headers=headers)
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["items"]]

    assert await listed("status=verified") == [rec]
    assert await listed("status=submitted") == [other]
    assert await listed("category=social_media_campaign") == [other, rec]
    assert await listed("category=open_support") == []
    assert await listed("region_code=36") == [other, rec]
    assert await listed("region_code=36.02") == []
    assert await listed("office=bawaslu-36.01") == [other, rec]
    assert await listed("since=2100-01-01T00:00:00Z") == []
    bad = await system.province.get("/v1/recommendations?cursor=nonsense", headers=headers)
    assert bad.status_code == 422


async def test_the_history_names_who_did_what_and_when(system):
    rec = await system.submitted(await system.office())
    await system.act(system.province, "bawaslu-36", rec, "verify", note="Bukti cukup")

    detail = (
        await system.province.get(
            f"/v1/recommendations/{rec}", headers=system.as_office("bawaslu-36")
        )
    ).json()

    assert [(h["action"], h["to_status"], h["actor_office"]) for h in detail["history"]] == [
        ("submit", "submitted", "bawaslu-36.01"),
        ("verify", "verified", "bawaslu-36"),
    ]
    assert detail["history"][1]["note"] == "Bukti cukup"
    assert detail["history"][1]["actor_user"] == "bawaslu-36-user"
    assert detail["allowed_actions"] == ["forward"]


async def test_every_service_keeps_an_audit_chain_that_finds_a_modified_row(system):
    rec = await system.submitted(await system.office())
    await system.act(system.province, "bawaslu-36", rec, "verify")

    async def chained() -> bool:
        with Session(system.province.app.state.database.engine) as session:
            return audit.check_chain(session).entries >= 2

    await eventually(chained)
    engine = system.province.app.state.database.engine
    with Session(engine) as session:
        assert audit.verify_chain(session) is None
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE audit_log SET details = replace(details, 'verified', 'returned') WHERE id = 2"
        )
    with Session(engine) as session:
        broken = audit.verify_chain(session)

    assert broken is not None and broken.entry_id == 2


async def test_list_filters_name_known_codes_and_read_zoneless_times_as_wib(system):
    rec = await system.submitted(await system.office())
    headers = system.as_office("bawaslu-36")

    zoneless = await system.province.get(
        "/v1/recommendations?since=2024-11-01T00:00:00", headers=headers
    )
    unknown = await system.province.get("/v1/recommendations?category=bad_vibes", headers=headers)

    assert [item["id"] for item in zoneless.json()["items"]] == [rec]
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "category"

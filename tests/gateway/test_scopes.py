"""Specification: outside its jurisdiction a caller learns nothing, and roles bound what it does."""

import pytest

from tests.gateway.conftest import eventually
from tests.support.offices import OfficeSigner

pytestmark = pytest.mark.anyio

# Offices that must not see a recommendation of Kabupaten Pandeglang (36.01), by tier.
OUTSIDERS = {
    "another regency of the same province": "bawaslu-36.02",
    "a regency of another province": "bawaslu-32.01",
    "another province": "bawaslu-32",
}


@pytest.fixture
async def pandeglang_recommendation(front) -> str:
    rec = await front.submit_from("bawaslu-36.01")
    banten = await front.headers_for("bawaslu-36")

    async def held() -> bool:
        answer = await front.gateway.get(f"/v1/recommendations/{rec}", headers=banten)
        return answer.json().get("status") == "submitted"

    await eventually(held)
    return rec


@pytest.mark.parametrize("office", OUTSIDERS.values(), ids=OUTSIDERS.keys())
async def test_an_outsider_cannot_list_read_change_or_get_the_receipt(
    front, pandeglang_recommendation, office
):
    rec = pandeglang_recommendation
    headers = await front.headers_for(office)

    listed = await front.gateway.get("/v1/recommendations", headers=headers)
    read = await front.gateway.get(f"/v1/recommendations/{rec}", headers=headers)
    changed = await front.gateway.post(
        f"/v1/recommendations/{rec}/transitions",
        json={"action": "verify"},
        headers={**headers, "if-match": '"anything"'},
    )
    receipt = await front.gateway.get(f"/v1/receipts/{rec}", headers=headers)
    unknown = await front.gateway.get(
        "/v1/recommendations/00000000-0000-4000-8000-000000000000", headers=headers
    )

    assert rec not in {item["id"] for item in listed.json()["items"]}
    assert read.status_code == changed.status_code == receipt.status_code == 404
    assert read.json()["title"] == unknown.json()["title"]  # the same answer as for nothing


async def test_totals_are_for_provinces_and_national_and_never_cross_provinces(
    front, pandeglang_recommendation
):
    regency = await front.headers_for("bawaslu-36.01")
    other_province = await front.headers_for("bawaslu-32")
    own_province = await front.headers_for("bawaslu-36")

    assert (await front.gateway.get("/v1/stats", headers=regency)).status_code == 403
    assert (await front.gateway.get("/v1/stats", headers=other_province)).json()["total"] == 0
    assert (await front.gateway.get("/v1/stats", headers=own_province)).json()["total"] == 1
    whole_country = await front.gateway.get("/v1/stats?include=provinces", headers=own_province)
    assert whole_country.status_code == 403


async def test_the_tier_of_the_caller_decides_the_action(front, pandeglang_recommendation):
    rec = pandeglang_recommendation
    for office, expected in (("bawaslu-36.01", 409), ("bawaslu-ri", 404), ("bawaslu-36", 200)):
        headers = await front.headers_for(office)
        read = await front.gateway.get(f"/v1/recommendations/{rec}", headers=headers)
        answer = await front.gateway.post(
            f"/v1/recommendations/{rec}/transitions",
            json={"action": "verify"},
            headers={**headers, "if-match": read.headers.get("etag", '"x"')},
        )
        assert answer.status_code == expected, (office, answer.text)


async def test_a_viewer_reads_but_does_not_act(front, pandeglang_recommendation):
    headers = await front.headers_for("bawaslu-36", "viewer")
    read = await front.gateway.get(
        f"/v1/recommendations/{pandeglang_recommendation}", headers=headers
    )

    answer = await front.gateway.post(
        f"/v1/recommendations/{pandeglang_recommendation}/transitions",
        json={"action": "verify"},
        headers={**headers, "if-match": read.headers["etag"]},
    )

    assert read.status_code == 200
    assert answer.status_code == 403


async def test_only_an_admin_registers_office_keys(front):
    jwk = OfficeSigner("bawaslu-36.01").key.public_jwk
    for office in ("bawaslu-36.01", "bawaslu-36", "bawaslu-ri"):
        headers = await front.headers_for(office, "officer")
        answer = await front.gateway.post(
            "/v1/offices/bawaslu-36.01/keys", json={"jwk": jwk}, headers=headers
        )
        assert answer.status_code == 403, office


async def test_a_token_of_one_office_cannot_submit_another_offices_document(front):
    admin = await front.headers_for("bawaslu-ri", "admin")
    pandeglang = OfficeSigner("bawaslu-36.01")
    await front.gateway.post(
        "/v1/offices/bawaslu-36.01/keys", json={"jwk": pandeglang.key.public_jwk}, headers=admin
    )
    lebak = await front.headers_for("bawaslu-36.02")

    answer = await front.gateway.post(
        "/v1/recommendations",
        content=pandeglang.sign(),
        headers={**lebak, "content-type": "application/jose"},
    )

    assert answer.status_code == 403

"""Specification: the README's story, end to end through the gateway only."""

import pytest

from tests.gateway.conftest import eventually
from tests.support.offices import OfficeSigner

pytestmark = pytest.mark.anyio

SANCTION = {
    "sanction": {"kind": "discipline", "type": "allowance_cut_6m"},
    "ppk": {"title": "Bupati Pandeglang", "agency": "Pemerintah Kabupaten Pandeglang"},
}


async def act(front, headers, rec: str, action: str, details=None):
    read = await front.gateway.get(f"/v1/recommendations/{rec}", headers=headers)
    assert read.status_code == 200, read.text
    return await front.gateway.post(
        f"/v1/recommendations/{rec}/transitions",
        json={"action": action, "details": details},
        headers={**headers, "if-match": read.headers["etag"]},
    )


async def test_pandeglang_to_national_and_back_through_the_gateway(front):
    admin = await front.headers_for("bawaslu-ri", "admin")
    pandeglang = await front.headers_for("bawaslu-36.01", "officer")
    banten = await front.headers_for("bawaslu-36", "officer")
    national = await front.headers_for("bawaslu-ri", "officer")
    office = OfficeSigner("bawaslu-36.01")
    registered = await front.gateway.post(
        "/v1/offices/bawaslu-36.01/keys", json={"jwk": office.key.public_jwk}, headers=admin
    )
    assert registered.status_code == 201, registered.text

    submitted = await front.gateway.post(
        "/v1/recommendations",
        content=office.sign(),
        headers={**pandeglang, "content-type": "application/jose"},
    )
    assert submitted.status_code == 201, submitted.text
    rec = submitted.json()["document_id"]
    right_away = await front.gateway.get(f"/v1/recommendations/{rec}", headers=pandeglang)
    assert right_away.status_code == 200
    assert right_away.json()["status"] in ("received", "submitted")

    async def at_province() -> bool:
        answer = await front.gateway.get(f"/v1/recommendations/{rec}", headers=banten)
        return answer.json().get("status") == "submitted"

    await eventually(at_province)
    assert (await act(front, banten, rec, "verify")).status_code == 200
    assert (await act(front, banten, rec, "forward")).status_code == 200

    # National's own list, not a read: until national holds it, a national officer's read shows
    # Banten's copy (status `forwarded`, with Banten's etag), and acting on that is refused.
    async def at_national() -> bool:
        answer = await front.gateway.get(
            "/v1/recommendations", params={"status": "forwarded"}, headers=national
        )
        return rec in {item["id"] for item in answer.json()["items"]}

    await eventually(at_national)
    for action, details in (("send", None), ("review", None), ("recommend", SANCTION)):
        answer = await act(front, national, rec, action, details)
        assert answer.status_code == 200, answer.text

    async def pandeglang_sees_it() -> bool:
        answer = await front.gateway.get(f"/v1/recommendations/{rec}", headers=pandeglang)
        return answer.json()["status"] == "sanction_recommended"

    await eventually(pandeglang_sees_it)
    country = await front.gateway.get(
        "/v1/stats?group_by=status&include=provinces", headers=national
    )
    held_by_national = await front.gateway.get("/v1/stats?group_by=status", headers=national)
    vulnerability = await front.gateway.get("/v1/stats/vulnerability", headers=national)
    receipt = await front.gateway.get(f"/v1/receipts/{rec}", headers=pandeglang)

    assert country.json()["groups"] == [{"status": "sanction_recommended", "count": 1}]
    assert held_by_national.json()["total"] == 1
    banten_row = next(r for r in vulnerability.json()["regions"] if r["region_code"] == "36")
    assert banten_row["score"] == 100
    assert receipt.json()["receipt"] == submitted.json()["receipt"]


async def test_a_national_officer_reads_a_recommendation_the_province_has_not_forwarded(front):
    rec = await front.submit_from("bawaslu-36.01")
    national = await front.headers_for("bawaslu-ri")

    async def submitted_at_province() -> bool:
        answer = await front.gateway.get(f"/v1/recommendations/{rec}", headers=national)
        return answer.json().get("status") == "submitted"

    await eventually(submitted_at_province)

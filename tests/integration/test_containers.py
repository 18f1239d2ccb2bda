"""Specification: the exchange as deployed — every service of deploy/compose.yaml in its own
container on PostgreSQL, reached only over HTTPS through the gateway — tells the README's story
and survives its services and its database going away.

- The story: Pandeglang submits a recommendation signed with a key registered through the API,
  Banten verifies and forwards it, national sends, reviews and recommends a sanction, Pandeglang
  sees `sanction_recommended`, and national reads the country's totals and the vulnerability
  index. A Jawa Barat recommendation goes to the Jawa Barat service, not Banten's.
- National stopped while Banten forwards: once it is back, every recommendation arrives at
  national exactly once, and province and national agree on its status.
- Intake restarted in the middle of delivering a burst of submissions to a province that has not
  answered yet: every submission intake accepted reaches the province exactly once; none is lost.
- PostgreSQL stopped and started again: meanwhile the gateway says it is not ready and refuses
  requests rather than hanging; afterwards the services reconnect by themselves, without being
  restarted, and a new recommendation goes through end to end.
"""

import hashlib
import time

import pytest

from shared import regions
from shared.documents import RECEIPT_TYP
from shared.signing import verify
from tests.integration.exchange import Exchange, eventually
from tests.support.offices import OfficeSigner, example

pytestmark = pytest.mark.containers

SANCTION = {
    "sanction": {"kind": "discipline", "type": "allowance_cut_6m"},
    "ppk": {"title": "Bupati Pandeglang", "agency": "Pemerintah Kabupaten Pandeglang"},
}
# Long enough for the outbox's capped backoff (2 s here), for a service's restart, and for the
# 30 s lease a relay stopped mid-delivery leaves on its messages.
SETTLE_SECONDS = 60


def actions(detail: dict) -> list[str]:
    return [entry["action"] for entry in detail["history"]]


def signed(office: OfficeSigner) -> str:
    """The example recommendation, as the office would sign it about its own regency."""
    code = office.office_id.removeprefix("bawaslu-")
    recommendation = example()
    recommendation["region_code"] = code
    recommendation["subject"]["agency"] = f"Dinas Pendidikan {regions.region(code).name}"
    recommendation["subject"]["agency_region_code"] = code
    return office.sign(recommendation=recommendation)


def submitted(exchange: Exchange, compact: str, headers: dict[str, str]) -> str:
    answer = exchange.submit(compact, headers)
    assert answer.status_code == 201, answer.text
    return answer.json()["document_id"]


def outbox_pending(exchange: Exchange, service: str) -> int | None:
    """Messages the service's outbox still has to deliver, from its own /metrics."""
    answer = exchange.probe(service, "/metrics")
    if answer is None or answer[0] != 200:
        return None
    for line in str(answer[1]).splitlines():
        if line.startswith("siapnet_outbox_pending{"):
            return int(float(line.rsplit(" ", 1)[1]))
    return None


def reaches(exchange: Exchange, ids, headers: dict[str, str], status: str) -> None:
    """Wait until the caller's service holds every one of `ids` in `status`."""
    wanted = set(ids)

    def all_there() -> bool:
        listed = exchange.listed(headers, status=status)
        return listed is not None and wanted <= {item["id"] for item in listed}

    eventually(all_there, timeout=SETTLE_SECONDS, what=f"{len(wanted)} to be {status}")


def test_the_readme_story_over_https_through_the_gateway(exchange: Exchange):
    office = exchange.registered_office("bawaslu-36.01")
    pandeglang = exchange.headers_for("bawaslu-36.01")
    banten = exchange.headers_for("bawaslu-36")
    national = exchange.headers_for("bawaslu-ri")

    document = office.sign()  # docs/examples/recommendation-finding.json, as in the README
    submission = exchange.submit(document, pandeglang)
    assert submission.status_code == 201, submission.text
    rec = submission.json()["document_id"]
    again = exchange.submit(document, pandeglang)
    assert again.status_code == 200
    assert again.json()["receipt"] == submission.json()["receipt"]
    published = exchange.gateway.get("/.well-known/jwks.json").json()["keys"]
    receipt = verify(
        submission.json()["receipt"],
        typ=RECEIPT_TYP,
        key_for={key["kid"]: key for key in published}.get,
    ).payload
    assert receipt["document_sha256"] == hashlib.sha256(document.encode()).hexdigest()

    eventually(
        lambda: exchange.status(rec, banten) == "submitted",
        timeout=SETTLE_SECONDS,
        what="Banten to hold it",
    )
    for action in ("verify", "forward"):
        answer = exchange.act(rec, action, banten)
        assert answer.status_code == 200, answer.text
    # National's own list, not a read: until national holds it, a national officer's read shows
    # Banten's copy (status `forwarded`, no actions allowed), and acting on it would be a 404.
    reaches(exchange, [rec], national, "forwarded")
    for action, details in (("send", None), ("review", None), ("recommend", SANCTION)):
        answer = exchange.act(rec, action, national, details)
        assert answer.status_code == 200, answer.text
    eventually(
        lambda: exchange.status(rec, pandeglang) == "sanction_recommended",
        timeout=SETTLE_SECONDS,
        what="Pandeglang to see the sanction",
    )
    seen = exchange.read(rec, pandeglang).json()
    country = exchange.gateway.get(
        "/v1/stats", params={"group_by": "region,status", "include": "provinces"}, headers=national
    )
    vulnerability = exchange.gateway.get("/v1/stats/vulnerability", headers=national)

    assert actions(seen) == ["submit", "verify", "forward", "send", "review", "recommend"]
    assert {"region": "36.01", "status": "sanction_recommended", "count": 1} in country.json()[
        "groups"
    ]
    assert country.json()["sources"] == 2  # Banten's service and Jawa Barat's
    banten_row = next(r for r in vulnerability.json()["regions"] if r["region_code"] == "36")
    assert banten_row == {
        "region_code": "36",
        "name": "Banten",
        "cases": 1,
        "score": 100,
        "zone": "yellow",
    }
    # The image carries the API docs page whole: the containers reach no CDN.
    bundle = exchange.gateway.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text


def test_a_jawa_barat_recommendation_goes_to_the_jawa_barat_service(exchange: Exchange):
    bogor = exchange.registered_office("bawaslu-32.01")
    rec = submitted(exchange, signed(bogor), exchange.headers_for("bawaslu-32.01"))
    jawa_barat = exchange.headers_for("bawaslu-32")

    eventually(
        lambda: exchange.status(rec, jawa_barat) == "submitted",
        timeout=SETTLE_SECONDS,
        what="Jawa Barat to hold it",
    )
    national_token = exchange.token_for("bawaslu-ri")  # national may read any province's
    at_jabar = exchange.probe("jabar", f"/v1/recommendations/{rec}", national_token)
    at_banten = exchange.probe("banten", f"/v1/recommendations/{rec}", national_token)
    assert at_jabar is not None and at_jabar[0] == 200
    assert at_banten is not None and at_banten[0] == 404


def test_stopping_national_while_banten_forwards_delivers_each_recommendation_once(
    exchange: Exchange,
):
    office = exchange.registered_office("bawaslu-36.02")
    lebak = exchange.headers_for("bawaslu-36.02")
    banten = exchange.headers_for("bawaslu-36")
    ids = [submitted(exchange, signed(office), lebak) for _ in range(10)]
    reaches(exchange, ids, banten, "submitted")
    for rec in ids:
        assert exchange.act(rec, "verify", banten).status_code == 200

    exchange.stop("national")
    try:
        for rec in ids:
            answer = exchange.act(rec, "forward", banten)
            assert answer.status_code == 200, answer.text
        time.sleep(3)  # several delivery attempts fail meanwhile
    finally:
        exchange.start("national")

    national = exchange.headers_for("bawaslu-ri")
    reaches(exchange, ids, national, "forwarded")
    at_national = [item["id"] for item in exchange.listed(national) or [] if item["id"] in ids]
    assert sorted(at_national) == sorted(ids)  # each once
    for rec in ids:
        there, here = exchange.read(rec, national).json(), exchange.read(rec, banten).json()
        assert actions(there).count("forward") == 1, there["history"]
        assert there["status"] == here["status"] == "forwarded"


def test_restarting_intake_in_the_middle_of_deliveries_loses_none(exchange: Exchange):
    office = exchange.registered_office("bawaslu-36.03")
    tangerang = exchange.headers_for("bawaslu-36.03")
    # Banten frozen (docker pause): intake's deliveries are sent and still wait for an answer,
    # or wait their turn, when intake is restarted.
    exchange.pause("banten")
    try:
        ids = [submitted(exchange, signed(office), tangerang) for _ in range(20)]
        assert outbox_pending(exchange, "intake") == 20
        exchange.restart("intake")
    finally:
        exchange.unpause("banten")
    exchange.wait_ready("intake")

    banten = exchange.headers_for("bawaslu-36")
    reaches(exchange, ids, banten, "submitted")
    at_banten = [item["id"] for item in exchange.listed(banten) or [] if item["id"] in ids]
    assert sorted(at_banten) == sorted(ids)  # each once
    for rec in ids:
        assert actions(exchange.read(rec, banten).json()) == ["submit"]
    eventually(
        lambda: outbox_pending(exchange, "intake") == 0,
        timeout=SETTLE_SECONDS,
        what="intake's outbox to empty",
    )


def test_the_services_recover_by_themselves_when_postgresql_restarts(exchange: Exchange):
    office = exchange.registered_office("bawaslu-36.04")
    serang = exchange.headers_for("bawaslu-36.04")
    account = exchange.account("bawaslu-36.04")
    document = signed(office)
    restarts = exchange.restart_counts()

    exchange.stop("postgres")
    try:
        readiness = exchange.answer("GET", "/readyz")
        submission = exchange.submit(document, serang)
    finally:
        exchange.start("postgres")
    assert readiness.status_code == 503
    assert submission.status_code == 503, submission.text  # refused at once, not left hanging
    assert submission.headers["retry-after"]

    def accepted():
        # A fresh login each time: the gateway's own database has to be back as well.
        headers = exchange.login(*account)
        answer = None if headers is None else exchange.submit(document, headers)
        return answer if answer is not None and answer.status_code in (200, 201) else None

    rec = eventually(accepted, timeout=SETTLE_SECONDS, what="a submission to be accepted")
    rec = rec.json()["document_id"]
    banten = exchange.headers_for("bawaslu-36")
    reaches(exchange, [rec], banten, "submitted")
    for action in ("verify", "forward"):
        assert exchange.act(rec, action, banten).status_code == 200
    reaches(exchange, [rec], exchange.headers_for("bawaslu-ri"), "forwarded")
    assert exchange.restart_counts() == restarts, "a service exited and Docker restarted it"

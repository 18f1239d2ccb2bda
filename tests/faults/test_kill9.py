"""Specification: a service that is killed loses no document and applies nothing twice.

During a stream of 1,000 operations — Banten's regency offices submitting signed
recommendations, Banten verifying, forwarding and returning them, national sending, reviewing
and recommending sanctions — every service (gateway, intake, Banten, national) is killed with
SIGKILL at random moments, several times, and started again. Afterwards, once the outboxes have
drained:

- every submission an office saw accepted is at intake once (with the registration number the
  office was given), at the province once, and — when forwarded — at national once;
- every status change happened once; every status event national emitted was applied at the
  province exactly once, in order, so no late event overwrote a newer state;
- the province and national agree on every forwarded recommendation's status, through the
  database and through the gateway;
- no outbox message is left pending or failed;
- every service's audit chain verifies.

SIAPNET_FAULTS_OPERATIONS (default 1000) and SIAPNET_FAULTS_SEED (default 20241127) make a quick
local run or replay a failed one: the seed fixes the plan, the document ids and the order and
spacing of the kills; thread timing still varies from run to run.
"""

import os
import random
import signal
import statistics

import pytest

from shared import regions
from tests.faults import ledger
from tests.faults.exchange import SERVICES, ProcessExchange
from tests.faults.stream import Client, StreamRun, login, make_plan, run_stream

pytestmark = pytest.mark.faults

OPERATIONS = int(os.environ.get("SIAPNET_FAULTS_OPERATIONS", "1000"))
SEED = int(os.environ.get("SIAPNET_FAULTS_SEED", "20241127"))
STREAM_DEADLINE_SECONDS = 600
# Submissions are spread over this long (a minute for 1,000), so the kills fall among them.
SUBMISSION_SECONDS = 0.06 * OPERATIONS
# The outbox's 1 s backoff cap, a restart, and the 30 s lease a relay killed mid-delivery leaves.
SETTLE_SECONDS = 180


def statuses_through_gateway(exchange: ProcessExchange, office: str) -> dict[str, str]:
    """Every recommendation the office's list shows, with its status (all pages)."""
    client = Client(exchange, login(exchange, office))
    found: dict[str, str] = {}
    params = {"limit": "100"}
    try:
        while True:
            page = client.call("GET", "/v1/recommendations", params=params)
            assert page.status_code == 200, page.text
            found.update({item["id"]: item["status"] for item in page.json()["items"]})
            if page.json()["next_cursor"] is None:
                return found
            params["cursor"] = page.json()["next_cursor"]
    finally:
        client.close()


def stream_report(run: StreamRun) -> str:
    tally = run.tally
    accepted = tally.accepted.values()
    forwarded = [case for case in run.cases if case.forwarded and case.id in tally.accepted]
    restarts = tally.restart_seconds or [0.0]
    return "\n".join(
        [
            f"stream    {run.seconds:.1f} s, {tally.operations} operations done",
            f"          {len(tally.accepted)} submissions accepted"
            f" ({sum(a.status_code == 200 for a in accepted)} answered 200: an earlier attempt"
            f" had been stored), {len(forwarded)} forwarded,"
            f" {sum(len(case.national_steps) for case in forwarded)} national status changes",
            f"kills     {dict(sorted(tally.kills.items()))}, {sum(tally.kills.values())} in all"
            f" ({sum(tally.early_kills.values())} of them again just after a restart)",
            f"restarts  ready in {statistics.median(restarts):.1f} s median,"
            f" {max(restarts):.1f} s at most",
            f"driver    retried {dict(sorted(tally.retries.items()))};"
            f" {tally.conflicts} 409/412 read again; {tally.lost_answers} changes found already"
            f" taken after a lost answer; {tally.not_yet} steps waited for a delivery",
        ]
    )


def test_kill9_at_random_moments_loses_nothing_and_applies_nothing_twice(process_exchange):
    exchange = process_exchange
    cases = make_plan(exchange.offices, OPERATIONS, random.Random(SEED))
    print(f"\nfault suite: {OPERATIONS} operations, seed {SEED}, {exchange.databases['intake']}")

    run = run_stream(
        exchange,
        cases,
        seed=SEED,
        deadline_seconds=STREAM_DEADLINE_SECONDS,
        submission_seconds=SUBMISSION_SECONDS,
    )
    tally = run.tally
    print(stream_report(run))
    assert tally.chaos_failure is None, tally.chaos_failure
    assert tally.driver_failure is None, tally.driver_failure
    assert not tally.refusals, f"answers a correct client never gets: {tally.refusals[:5]}"
    assert run.finished, f"{tally.operations} of {OPERATIONS} done in {run.seconds:.0f} s"
    assert all(tally.kills[service] >= 3 for service in SERVICES), tally.kills

    engines = {
        service: ledger.read_only_engine(exchange.databases[service]) for service in ledger.AUDITED
    }
    try:
        settle_seconds, waiting = ledger.wait_settled(engines, cases, tally, timeout=SETTLE_SECONDS)
        held = ledger.read_all(engines)
        entries, chain_problems = ledger.check_chains(engines)
    finally:
        for engine in engines.values():
            engine.dispose()
    print(f"settle    {settle_seconds:.1f} s")
    print(f"audit     {entries} entries, {chain_problems or 'every chain intact'}")

    assert not waiting, f"not settled after {SETTLE_SECONDS} s: {waiting}"
    assert ledger.check_documents(held, cases, tally) == []
    assert ledger.check_statuses(held, cases, tally) == []
    assert ledger.check_outboxes(held, cases, tally) == []
    assert chain_problems == []
    # What the offices read through the gateway: the same, at both tiers.
    assert statuses_through_gateway(exchange, "bawaslu-36") == {
        case.id: case.final_status for case in cases
    }
    assert statuses_through_gateway(exchange, regions.NATIONAL_OFFICE) == {
        case.id: case.final_status for case in cases if case.forwarded
    }
    # And, after all of that, every service stops on its own when asked to: its requests and
    # its relay finished, and then (as uvicorn does) ended by the signal it was sent.
    assert exchange.stop_all() == dict.fromkeys(SERVICES, -signal.SIGTERM)
    for service in SERVICES:
        assert "Application shutdown complete" in exchange.tail(service, lines=5), service

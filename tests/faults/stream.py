"""The stream: offices submitting, Banten and national changing statuses, through the gateway,
while a chaos loop kills services with SIGKILL — and the tally of what the driver saw.

The driver behaves as a careful real client would. A submission that got no answer (connection
refused or cut, 5xx, 429) is sent again with the *same signed bytes*: intake is idempotent on the
document id, so a repeat answers 200 with the first receipt. A status change reads the
recommendation, takes the action with `If-Match`, and on a 409/412 or a lost answer reads again:
if the status already shows the action's effect, the earlier attempt went through.
"""

import heapq
import itertools
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import httpx

from shared import regions
from shared.codes import Category
from tests.faults.exchange import DEMO_PASSWORD, SERVICES, ProcessExchange, ServiceDidNotComeBack
from tests.support.offices import OfficeSigner, example

RETRYABLE = frozenset({429, 500, 502, 503, 504, 599})  # 599: no answer at all
SANCTION = {
    "sanction": {"kind": "discipline", "type": "allowance_cut_6m"},
    "ppk": {"title": "Bupati", "agency": "Pemerintah Kabupaten"},
}
# The main line of the lifecycle, in order; `received` is intake's answer before the province
# holds the recommendation.
MAIN_LINE = [
    "received",
    "submitted",
    "verified",
    "forwarded",
    "sent_to_ruling_body",
    "under_review",
    "sanction_recommended",
]


@dataclass(frozen=True)
class Step:
    action: str
    target: str
    details: dict[str, Any] | None = None

    def reached(self, status: str) -> bool:
        """Whether `status` already shows this step's effect (a lost answer's, say)."""
        if self.target not in MAIN_LINE or status not in MAIN_LINE:
            return status == self.target
        return MAIN_LINE.index(status) >= MAIN_LINE.index(self.target)


VERIFY = Step("verify", "verified")
FORWARD = Step("forward", "forwarded")
RETURN = Step("return", "returned", {"reason": "Bukti belum lengkap"})
NATIONAL_STEPS = (
    Step("send", "sent_to_ruling_body"),
    Step("review", "under_review"),
    Step("recommend", "sanction_recommended", SANCTION),
)


@dataclass
class Case:
    """One recommendation's planned life: its signed bytes and the status changes it gets."""

    id: str
    office: str
    compact: str
    province_steps: tuple[Step, ...] = ()
    national_steps: tuple[Step, ...] = ()
    province_done: int = 0
    national_done: int = 0

    @property
    def operations(self) -> int:
        return 1 + len(self.province_steps) + len(self.national_steps)

    @property
    def forwarded(self) -> bool:
        return FORWARD in self.province_steps

    @property
    def final_status(self) -> str:
        steps = self.province_steps + self.national_steps
        return steps[-1].target if steps else "submitted"


def make_plan(offices: dict[str, OfficeSigner], operations: int, rng: random.Random) -> list[Case]:
    """`operations` operations, about 60% submissions and the rest status changes: for one
    operation in ten a recommendation is verified and forwarded, and national takes 0-3 steps on
    it; one in forty is only verified, one in forty returned to its office. Every document is
    signed here, before the clock starts."""
    forwarded = max(4, operations // 10)
    returned = verified = max(1, operations // 40)
    national = [index % 4 for index in range(forwarded)]
    changes = 2 * forwarded + returned + verified + sum(national)
    submissions = operations - changes
    if submissions < forwarded + returned + verified:
        raise ValueError(f"{operations} operations are too few for a plan; use 60 or more")
    fates: list[tuple[tuple[Step, ...], tuple[Step, ...]]] = [
        *(((VERIFY, FORWARD), NATIONAL_STEPS[:steps]) for steps in national),
        *(((RETURN,), ()) for _ in range(returned)),
        *(((VERIFY,), ()) for _ in range(verified)),
    ]
    fates += [((), ())] * (submissions - len(fates))
    rng.shuffle(fates)
    regencies = sorted(office for office in offices if office.count(".") == 1)
    categories = list(Category)
    cases = []
    for index, (province_steps, national_steps) in enumerate(fates):
        signer = offices[regencies[index % len(regencies)]]
        document_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        cases.append(
            Case(
                id=document_id,
                office=signer.office_id,
                compact=signer.sign(
                    signer.payload(
                        recommendation=recommendation_of(signer.office_id, index, categories),
                        jti=document_id,
                    )
                ),
                province_steps=province_steps,
                national_steps=national_steps,
            )
        )
    assert sum(case.operations for case in cases) == operations
    return cases


def recommendation_of(office_id: str, index: int, categories: list[Category]) -> dict[str, Any]:
    """The example recommendation, about the office's own regency, one category after another."""
    code = office_id.removeprefix("bawaslu-")
    recommendation = example()
    recommendation["region_code"] = code
    recommendation["category"] = str(categories[index % len(categories)])
    recommendation["summary"] = f"Fault-suite recommendation number {index}."
    recommendation["subject"]["agency"] = f"Dinas Pendidikan {regions.region(code).name}"
    recommendation["subject"]["agency_region_code"] = code
    return recommendation


# --- what the driver saw --------------------------------------------------------------------


@dataclass(frozen=True)
class Acceptance:
    status_code: int  # 201 the first time, 200 when an earlier attempt had been stored
    registration_number: str
    receipt: str


@dataclass
class Tally:
    """Counters shared by the driver's threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    operations: int = 0
    accepted: dict[str, Acceptance] = field(default_factory=dict)
    retries: Counter = field(default_factory=Counter)  # by kind of request
    conflicts: int = 0  # 409/412 answers that made the driver read again
    lost_answers: int = 0  # a change the driver retried had already taken effect
    not_yet: int = 0  # a step waiting for a delivery (the province or national not holding it)
    refusals: list[str] = field(default_factory=list)  # answers a correct client never gets
    kills: Counter = field(default_factory=Counter)
    early_kills: Counter = field(default_factory=Counter)  # killed again just after a restart
    restart_seconds: list[float] = field(default_factory=list)
    chaos_failure: str | None = None
    driver_failure: str | None = None  # a driver thread that crashed (a bug in the suite)

    def add(self, name: str, amount: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + amount)

    def retry(self, kind: str) -> None:
        with self.lock:
            self.retries[kind] += 1

    def refused(self, what: str, answer: httpx.Response) -> None:
        with self.lock:
            self.refusals.append(f"{what}: {answer.status_code} {answer.text[:300]}")

    def accept(self, case: Case, answer: httpx.Response) -> None:
        body = answer.json()
        with self.lock:
            self.accepted[case.id] = Acceptance(
                answer.status_code, body["registration_number"], body["receipt"]
            )
            self.operations += 1


class Outcome(Enum):
    done = "done"
    not_yet = "not_yet"  # the recommendation is not where the step can be taken yet
    refused = "refused"


class Client:
    """One thread's HTTPS client of the gateway; no answer at all reads as a 599."""

    def __init__(self, exchange: ProcessExchange, headers: dict[str, str] | None = None) -> None:
        self.headers = headers or {}
        self.http = httpx.Client(
            base_url=exchange.gateway_url, verify=exchange.tls_context(), timeout=20
        )

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        try:
            return self.http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as error:
            return httpx.Response(599, text=f"{type(error).__name__}: {error}")

    def close(self) -> None:
        self.http.close()


def login(exchange: ProcessExchange, office: str) -> dict[str, str]:
    """The demo officer of `office` (the account is named by the office id)."""
    client = Client(exchange)
    try:
        answer = client.call(
            "POST",
            "/v1/auth/token",
            data={"grant_type": "password", "username": office, "password": DEMO_PASSWORD},
        )
    finally:
        client.close()
    assert answer.status_code == 200, answer.text
    return {"authorization": f"Bearer {answer.json()['access_token']}"}


def pause(attempt: int, rng: random.Random) -> None:
    """Capped exponential backoff with jitter, as the outbox does it."""
    ceiling = min(1.6, 0.1 * 2 ** min(attempt, 5))
    time.sleep(ceiling / 2 + rng.uniform(0, ceiling / 2))


# --- the driver's work ----------------------------------------------------------------------


class Agenda:
    """Cases waiting for their next step at one tier, each no earlier than its due time."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Case]] = []
        self._order = itertools.count()
        self._ready = threading.Condition()

    def put(self, case: Case, delay: float = 0.0) -> None:
        with self._ready:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._order), case))
            self._ready.notify()

    def take(self, stop: threading.Event) -> Case | None:
        with self._ready:
            while not stop.is_set():
                if self._heap and self._heap[0][0] <= time.monotonic():
                    return heapq.heappop(self._heap)[2]
                wait = self._heap[0][0] - time.monotonic() if self._heap else 0.2
                self._ready.wait(timeout=max(0.01, min(wait, 0.2)))
        return None


def submit_all(
    client: Client, cases: list[Case], tally: Tally, province: Agenda, stop, gap: float
) -> None:
    """One office sending its recommendations one after another, `gap` seconds apart on
    average, so that submissions go on while the services are being killed."""
    rng = random.Random(cases[0].id if cases else 0)
    for case in cases:
        if stop.wait(rng.uniform(0, 2 * gap)):
            return
        attempt = 0
        while not stop.is_set():
            answer = client.call(
                "POST",
                "/v1/recommendations",
                content=case.compact,
                headers={"content-type": "application/jose"},
            )
            if answer.status_code in (200, 201) and answer.json().get("document_id") == case.id:
                tally.accept(case, answer)
                if case.province_steps:
                    province.put(case)
                break
            if answer.status_code in RETRYABLE:
                tally.retry("submission")
                attempt += 1
                pause(attempt, rng)
                continue
            tally.refused(f"submission {case.id}", answer)
            break


def take_step(client: Client, case: Case, step: Step, tally: Tally, rng: random.Random) -> Outcome:
    """Read, act with If-Match, and read again after a conflict or a lost answer."""
    path = f"/v1/recommendations/{case.id}"
    for attempt in range(1, 60):
        read = client.call("GET", path)
        if read.status_code in RETRYABLE:
            tally.retry("read")
            pause(attempt, rng)
            continue
        if read.status_code == 404:
            return Outcome.not_yet
        if read.status_code != 200:
            tally.refused(f"read {case.id}", read)
            return Outcome.refused
        current = read.json()
        if step.reached(current["status"]):
            if attempt > 1:
                tally.add("lost_answers")
            return Outcome.done
        if step.action not in current["allowed_actions"]:
            return Outcome.not_yet
        answer = client.call(
            "POST",
            f"{path}/transitions",
            json={"action": step.action, "note": "fault suite", "details": step.details},
            headers={"if-match": read.headers["etag"]},
        )
        if answer.status_code == 200:
            assert answer.json()["status"] == step.target, answer.text
            return Outcome.done
        if answer.status_code in (409, 412):
            tally.add("conflicts")
            continue
        if answer.status_code == 404:
            return Outcome.not_yet
        if answer.status_code in RETRYABLE:
            tally.retry("transition")
            pause(attempt, rng)
            continue
        tally.refused(f"{step.action} {case.id}", answer)
        return Outcome.refused
    return Outcome.not_yet


def act_all(
    client: Client, tier: str, agenda: Agenda, national: Agenda | None, tally: Tally, stop
) -> None:
    """Take the tier's next step on whichever case is due; hand forwarded cases to national."""
    rng = random.Random(f"{tier}-{threading.get_ident()}")
    while (case := agenda.take(stop)) is not None:
        done = case.province_done if tier == "province" else case.national_done
        steps = case.province_steps if tier == "province" else case.national_steps
        outcome = take_step(client, case, steps[done], tally, rng)
        if outcome is Outcome.refused:
            continue
        if outcome is Outcome.not_yet:
            tally.add("not_yet")
            agenda.put(case, delay=0.3)
            continue
        tally.add("operations")
        done += 1
        if tier == "province":
            case.province_done = done
        else:
            case.national_done = done
        if done < len(steps):
            agenda.put(case)
        elif national is not None and case.national_steps:
            national.put(case)


# --- chaos ----------------------------------------------------------------------------------


def chaos(
    exchange: ProcessExchange,
    tally: Tally,
    rng: random.Random,
    stream_done: threading.Event,
    stop: threading.Event,
    *,
    minimum_rounds: int,
) -> None:
    """Kill a service with SIGKILL every 1-3 s, and start it again after a 0.1-1 s pause; one
    restart in five is killed again while it is still starting. Each round kills every service
    once, in a random order; it goes on until the stream is done and at least `minimum_rounds`
    rounds have passed (or until `stop`)."""
    rounds = 0
    while True:
        order = list(SERVICES)
        rng.shuffle(order)
        for name in order:
            if stop.wait(rng.uniform(1.0, 3.0)) or (
                stream_done.is_set() and rounds >= minimum_rounds
            ):
                return
            exchange.kill(name)
            tally.kills[name] += 1
            time.sleep(rng.uniform(0.1, 1.0))
            exchange.start(name)
            if rng.random() < 0.2:
                time.sleep(rng.uniform(0.2, 1.2))
                exchange.kill(name)
                tally.kills[name] += 1
                tally.early_kills[name] += 1
                exchange.start(name)
            try:
                tally.restart_seconds.append(exchange.wait_ready(name))
            except ServiceDidNotComeBack as failure:
                tally.chaos_failure = str(failure)
                return
        rounds += 1


# --- the whole stream -----------------------------------------------------------------------


@dataclass
class StreamRun:
    cases: list[Case]
    tally: Tally
    seconds: float
    finished: bool


def run_stream(
    exchange: ProcessExchange,
    cases: list[Case],
    *,
    seed: int,
    deadline_seconds: float,
    submission_seconds: float,
    minimum_rounds: int = 3,
) -> StreamRun:
    """Every office submitting (spread over about `submission_seconds`), two province and two
    national workers acting, the chaos loop killing; until every planned operation is done (or
    the deadline, or a service that does not come back). Chaos has stopped, and every service is
    up, when this returns."""
    tally = Tally()
    planned = sum(case.operations for case in cases)
    stop, stream_done = threading.Event(), threading.Event()
    province, national = Agenda(), Agenda()
    by_office: dict[str, list[Case]] = {}
    for case in cases:
        by_office.setdefault(case.office, []).append(case)
    clients: list[Client] = []

    def client_of(office: str) -> Client:
        clients.append(Client(exchange, login(exchange, office)))
        return clients[-1]

    def guarded(target):
        def run(*args, **kwargs) -> None:
            try:
                target(*args, **kwargs)
            except Exception as error:
                tally.driver_failure = f"{target.__name__}: {type(error).__name__}: {error}"
                raise

        return run

    workers = [
        threading.Thread(
            target=guarded(submit_all),
            args=(client_of(o), mine, tally, province, stop, submission_seconds / len(mine)),
        )
        for o, mine in by_office.items()
    ]
    for _ in range(2):
        workers.append(
            threading.Thread(
                target=guarded(act_all),
                args=(client_of("bawaslu-36"), "province", province, national, tally, stop),
            )
        )
        workers.append(
            threading.Thread(
                target=guarded(act_all),
                args=(client_of(regions.NATIONAL_OFFICE), "national", national, None, tally, stop),
            )
        )
    chaos_thread = threading.Thread(
        target=guarded(chaos),
        args=(exchange, tally, random.Random(seed), stream_done, stop),
        kwargs={"minimum_rounds": minimum_rounds},
    )
    started = time.monotonic()
    chaos_thread.start()
    for worker in workers:
        worker.start()
    # A refused operation is never done: stop waiting for it (the test reports it).
    while time.monotonic() - started < deadline_seconds:
        if tally.chaos_failure or tally.driver_failure:
            break
        if tally.operations + len(tally.refusals) >= planned:
            break
        time.sleep(0.2)
    seconds = time.monotonic() - started
    finished = tally.operations == planned
    stream_done.set()
    if not finished:
        stop.set()
    chaos_thread.join()
    stop.set()
    for worker in workers:
        worker.join(timeout=60)
    for client in clients:
        client.close()
    return StreamRun(cases=cases, tally=tally, seconds=seconds, finished=finished)

"""Prometheus metrics for one service: requests by route template and status, their latency, the
outbox's depth, read when /metrics is scraped, and how long the process stood still: its event
loop late on a timer, and its garbage collector's pauses.

Each app keeps its own registry on `app.state.metrics`, so several apps in one process (the tests,
the gateway beside a service) never mix their counts. Requests are labelled by the route template,
never the raw path: ids in a path would multiply the series and could carry data.
"""

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.exc import SQLAlchemyError
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

try:
    from fastapi.routing import iter_route_contexts
except ImportError:  # FastAPI < 0.137.2 copies included routes whole, prefixes and all

    def iter_route_contexts(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
        return iter(routes)


log = logging.getLogger("siapnet.metrics")

UNMATCHED = "unmatched"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# How often the event loop is asked to wake on time, and the lateness recorded: a service runs
# its SQLite work on the loop (shared.db), so a slow statement stalls every request it serves.
LOOP_CHECK_SECONDS = 0.1
STALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Any other method a client invents is counted as OTHER, so it cannot mint new series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def install_metrics(app: FastAPI, service: str) -> CollectorRegistry:
    """Give `app` its own registry, the request metrics middleware and the outbox gauges."""
    registry = CollectorRegistry()
    requests = Counter(
        "siapnet_http_requests",
        "HTTP requests answered, by route template and status.",
        ["service", "method", "route", "status"],
        registry=registry,
    )
    duration = Histogram(
        "siapnet_http_request_duration_seconds",
        "Time to answer an HTTP request, by route template.",
        ["service", "method", "route"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    loop_lag = Histogram(
        "siapnet_event_loop_lag_seconds",
        f"How late the event loop ran a timer due every {LOOP_CHECK_SECONDS:g} s: every request"
        " waiting on the loop waited as long.",
        ["service"],
        buckets=STALL_BUCKETS,
        registry=registry,
    ).labels(service)
    gc_pauses = Histogram(
        "siapnet_gc_pause_seconds",
        "Garbage collections of the process, by generation, and how long each held it.",
        ["service", "generation"],
        buckets=STALL_BUCKETS,
        registry=registry,
    )
    registry.register(OutboxDepth(app, service))
    app.state.metrics = registry
    app.state.loop_lateness = lateness = LoopLateness(loop_lag)
    app.add_middleware(
        RequestMetricsMiddleware, service=service, requests=requests, duration=duration, root=app
    )
    watch_while_running(app, lateness, GcPauses(gc_pauses, service))
    return registry


class LoopLateness:
    """How late the event loop runs a timer: every check goes to the histogram, and `recent`
    follows the last few (each check weighs half): a loop that is late check after check has
    more work queued than it can do. On intake under full load `recent` stays above 25 ms; at
    200 submissions a second nine checks in ten are under 8 ms (2026-12-06)."""

    def __init__(self, histogram: Any) -> None:
        self.histogram = histogram
        self.recent = 0.0

    def observe(self, seconds: float) -> None:
        self.histogram.observe(seconds)
        self.recent = (self.recent + seconds) / 2


def busy_when_late(app: FastAPI, seconds: float) -> Callable[[], bool] | None:
    """Whether `app`'s event loop has lately run `seconds` late or more: it is answering
    requests as fast as it can (the outbox relay then makes way). None for 0: never busy."""
    if seconds <= 0:
        return None
    lateness: LoopLateness = app.state.loop_lateness
    return lambda: lateness.recent >= seconds


def watch_while_running(app: FastAPI, loop_lag: LoopLateness, pauses: "GcPauses") -> None:
    """From the app's start to its end: time the event loop's lateness and the collector's
    pauses."""
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        watch = asyncio.create_task(watch_loop(loop_lag), name="event-loop-lag")
        gc.callbacks.append(pauses)
        try:
            async with started(app) as state:
                yield state
        finally:
            gc.callbacks.remove(pauses)
            watch.cancel()
            with suppress(asyncio.CancelledError):
                await watch

    app.router.lifespan_context = lifespan


async def watch_loop(lag: LoopLateness, every: float = LOOP_CHECK_SECONDS) -> None:
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + every
        await asyncio.sleep(every)
        lag.observe(max(0.0, loop.time() - due))


class GcPauses:
    """A `gc.callbacks` entry: each collection's duration, by generation."""

    def __init__(self, pauses: Histogram, service: str) -> None:
        self.series = [pauses.labels(service, str(generation)) for generation in range(3)]
        self.started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.series[info["generation"]].observe(time.perf_counter() - self.started)


class RouteTemplates:
    """The template of the route that answered, e.g. `/v1/documents/{document_id}`.

    FastAPI puts the route as declared in scope["route"], without its include_router prefixes;
    the app's route contexts carry the full template. They are indexed by route once (again
    whenever a route turns up that the index lacks), not walked and matched on every request:
    that walk was 3% of the gateway's time under load."""

    def __init__(self, root: FastAPI) -> None:
        self.root = root
        # id(route) -> (route, [(path regex, template), ...]); the route is kept so its id
        # cannot be reused by another object while it is indexed.
        self._index: dict[int, tuple[BaseRoute, list[tuple[Any, str]]]] = {}

    def of(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            return UNMATCHED
        entry = self._index.get(id(route))
        if entry is None or entry[0] is not route:
            self._index = self._build()
            # A route no context names (one of a mounted app's) is remembered as such.
            entry = self._index.setdefault(id(route), (route, []))
        templates = entry[1]
        if len(templates) == 1:
            return templates[0][1]
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        for regex, template in templates:
            if regex.match(path):
                return template
        return getattr(route, "path_format", UNMATCHED)

    def _build(self) -> dict[int, tuple[BaseRoute, list[tuple[Any, str]]]]:
        index: dict[int, tuple[BaseRoute, list[tuple[Any, str]]]] = {}
        for context in iter_route_contexts(self.root.routes):
            route = getattr(context, "original_route", context)
            if hasattr(context, "path_regex"):
                entry = index.setdefault(id(route), (route, []))
                entry[1].append((context.path_regex, context.path_format))
        return index


class RequestMetricsMiddleware:
    """Count and time every HTTP request, labelled by method, route template and status."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        requests: Counter,
        duration: Histogram,
        root: FastAPI,
    ) -> None:
        self.app = app
        self.service = service
        self.requests = requests
        self.duration = duration
        self.templates = RouteTemplates(root)
        # (method, route, status) -> the counter's and the histogram's series, looked up once.
        self._series: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            elapsed = time.perf_counter() - started
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            key = (method, self.templates.of(scope), str(status))
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = (
                    self.requests.labels(self.service, *key),
                    self.duration.labels(self.service, *key[:2]),
                )
            series[0].inc()
            series[1].observe(elapsed)


class OutboxDepth:
    """Pending and failed outbox messages, counted when /metrics is scraped."""

    def __init__(self, app: FastAPI, service: str) -> None:
        self.app = app
        self.service = service

    def describe(self) -> list[GaugeMetricFamily]:
        return self._families()

    def collect(self) -> list[GaugeMetricFamily]:
        pending, failed = families = self._families()
        relay = getattr(self.app.state, "relay", None)
        if relay is None:
            return families
        try:
            depth = relay.depth()
        except SQLAlchemyError as exc:
            # A scrape must still answer while the database is away; /readyz reports that.
            log.warning("outbox depth unavailable", extra={"error": type(exc).__name__})
            return families
        pending.add_metric([self.service], depth["pending"])
        failed.add_metric([self.service], depth["failed"])
        return families

    def _families(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "siapnet_outbox_pending",
                "Outbox messages waiting to be delivered.",
                labels=["service"],
            ),
            GaugeMetricFamily(
                "siapnet_outbox_failed", "Outbox messages given up on.", labels=["service"]
            ),
        ]

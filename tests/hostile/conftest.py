"""The whole exchange for hostile clients: every service in-process behind the gateway, running on
an event loop of its own so that synchronous fuzzers (schemathesis, hypothesis) can drive it."""

import io
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import urllib3
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import settings

from services.gateway.app import create_app as create_gateway
from services.gateway.ratelimit import RateLimiter
from services.intake.app import create_app as create_intake
from services.recommendation.app import create_app as create_recommendation
from tests.conftest import recommendation_settings, running
from tests.gateway.conftest import Front, front, gateway_settings, system  # noqa: F401
from tests.recommendation.conftest import FAST_OUTBOX, PEERS, _intake_settings
from tests.support.mesh import Mesh

GATEWAY = "https://gateway"
# A longer hunt than CI's: `SIAPNET_FUZZ_EXAMPLES=500 make test PYTEST_ARGS=tests/hostile` gives
# every fuzzer that many examples on fresh random seeds. CI's runs are derandomized, so a failure
# there repeats on every run.
DEEP_EXAMPLES = os.environ.get("SIAPNET_FUZZ_EXAMPLES")


def fuzz_settings(examples: int, **changes: Any) -> settings:
    """A fuzzer's hypothesis settings: `examples` derandomized, or a deep run's random ones."""
    return settings(
        max_examples=int(DEEP_EXAMPLES) if DEEP_EXAMPLES else examples,
        derandomize=not DEEP_EXAMPLES,
        deadline=None,
        database=None,
        **changes,
    )


@asynccontextmanager
async def exchange_in(tmp_path: Path) -> AsyncIterator[Front]:
    """The system of `tests.gateway.conftest.front`, built without pytest's fixtures."""
    mesh = Mesh()
    apps = {
        "intake": create_intake(_intake_settings(tmp_path), relay_transport=mesh),
        "province": create_recommendation(
            recommendation_settings(tmp_path, "province", peers=PEERS, **FAST_OUTBOX),
            peer_transport=mesh,
        ),
        "national": create_recommendation(
            recommendation_settings(
                tmp_path,
                "national",
                peers=PEERS,
                default_province_url="http://province",
                **FAST_OUTBOX,
            ),
            peer_transport=mesh,
        ),
        "gateway": create_gateway(gateway_settings(tmp_path), upstream_transport=mesh),
    }
    async with AsyncExitStack() as stack:
        for host, app in apps.items():
            mesh.add(host, app)
            await stack.enter_async_context(running(app, f"http://{host}"))
        gateway = apps["gateway"]
        # Fuzzers send thousands of requests a minute from one token: keep them off the limiter.
        gateway.state.rate_limiter = RateLimiter(10**9, 10**9)
        # A crash must reach the client as the 500 a real server would answer, not as an exception.
        transport = httpx.ASGITransport(app=gateway, raise_app_exceptions=False)
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url=GATEWAY)
        )
        client.app = gateway  # type: ignore[attr-defined]
        yield Front(system=None, gateway=client)  # type: ignore[arg-type]


@dataclass
class Exchange:
    """The exchange on its own event loop; `session` is a `requests` session that reaches it."""

    portal: BlockingPortal
    front: Front
    session: requests.Session

    def headers_for(self, office: str, *roles: str) -> dict[str, str]:
        return self.portal.call(self.front.headers_for, office, *roles)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.portal.call(lambda: self.front.gateway.request(method, url, **kwargs))


class InProcessAdapter(requests.adapters.HTTPAdapter):
    """Hands each `requests` request to the in-process gateway on the exchange's event loop, and
    its answer back as a `requests` response, exactly as the gateway sent it."""

    def __init__(self, portal: BlockingPortal, gateway: httpx.AsyncClient) -> None:
        super().__init__()
        self.portal = portal
        self.gateway = gateway

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any):
        body = request.body.encode() if isinstance(request.body, str) else request.body
        headers = list(request.headers.items())

        async def call() -> httpx.Response:
            return await self.gateway.request(
                str(request.method), str(request.url), headers=headers, content=body
            )

        answer = self.portal.call(call)
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(answer.content),
            headers=list(answer.headers.multi_items()),
            status=answer.status_code,
            reason=answer.reason_phrase,
            version=11,
            preload_content=False,
            decode_content=False,
            request_method=request.method,
        )
        return self.build_response(request, raw)


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    tmp_path = tmp_path_factory.mktemp("exchange")
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(exchange_in(tmp_path)) as front_,
        requests.Session() as session,
    ):
        adapter = InProcessAdapter(portal, front_.gateway)
        session.mount(GATEWAY, adapter)
        yield Exchange(portal, front_, session)

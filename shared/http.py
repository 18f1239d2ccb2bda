"""The HTTP client a service uses to call another: the gateway's hop and the outbox relays.

Calls go over aiohttp. Tests hand in an httpx transport instead (services in process, one
database each) and the same calls go through httpx's client. Either way the answer is an
`httpx.Response` with its body read, and a failure is one of httpx's exceptions, so callers
handle one kind of answer and one kind of error.

Why not httpx's client itself: with 32 calls in flight to a bare endpoint on this machine it
costs 314-348 µs of CPU per call even over aiohttp's wire, aiohttp alone 101-108 µs
(2026-11-22). Its own connection pool was worse: one core saturated at 175-224 requests/s.
Every submission makes up to three such calls: the gateway's hop and a delivery by each relay
(its own, or a share of a batch of envelopes).
"""

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx

# A gateway or relay talks to a handful of services; this many connections per process keeps
# every concurrent call on a warm one.
MAX_CONNECTIONS = 200
KEEPALIVE_SECONDS = 30


class ServiceClient:
    """Calls to other services, each bounded by `timeout` (connect, read, and the whole call
    within their sum). `transport` replaces the network, in tests."""

    def __init__(
        self,
        *,
        timeout: httpx.Timeout | float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        timeout = httpx.Timeout(timeout)
        self._in_process = (
            None if transport is None else httpx.AsyncClient(transport=transport, timeout=timeout)
        )
        self._timeout = aiohttp.ClientTimeout(
            total=(timeout.connect or 0) + (timeout.read or 0) or None,
            connect=timeout.pool,
            sock_connect=timeout.connect,
            sock_read=timeout.read,
        )
        self._session: aiohttp.ClientSession | None = None

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The answer, read whole; httpx.TransportError or TimeoutException when there is none."""
        if self._in_process is not None:
            return await self._in_process.request(
                method, url, content=content, params=params, headers=headers
            )
        if params:
            url += "?" + urlencode(_pairs(params))
        try:
            async with self._client().request(
                method,
                url,
                data=content,
                headers=headers,
                allow_redirects=False,
                auto_decompress=False,
            ) as answer:
                body = await answer.read()
        except TimeoutError as exc:
            raise httpx.TimeoutException(f"{method} {url}: no answer in time") from exc
        except aiohttp.InvalidURL as exc:
            raise httpx.UnsupportedProtocol(f"{method} {url}: {exc}") from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(f"{method} {url}: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise httpx.RemoteProtocolError(f"{method} {url}: {exc!r}") from exc
        return httpx.Response(answer.status, headers=answer.raw_headers, content=body)

    async def post(
        self, url: str, *, content: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        return await self.request("POST", url, content=content, headers=headers)

    async def aclose(self) -> None:
        if self._in_process is not None:
            await self._in_process.aclose()
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> "ServiceClient":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use: a session belongs to the event loop it was made in.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=MAX_CONNECTIONS,
                    keepalive_timeout=KEEPALIVE_SECONDS,
                    ssl=httpx.create_ssl_context(),
                ),
                timeout=self._timeout,
            )
        return self._session


def _pairs(params: Any) -> list[tuple[str, str]]:
    """A query as pairs, repeated names kept: Starlette's QueryParams, a mapping or pairs."""
    if hasattr(params, "multi_items"):
        return list(params.multi_items())
    if isinstance(params, Mapping):
        return list(params.items())
    return list(params)

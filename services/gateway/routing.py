"""Where each call goes, and the call itself.

Regency and province callers are served by the recommendation service of their province, national
callers by the national service; submissions, receipts and office keys go to intake. Every upstream
call has a timeout; an upstream that is down or too slow becomes a 503 with Retry-After at once,
never a hang. The caller's bearer token travels along: services check it themselves.
"""

import asyncio
from collections import Counter
from typing import Any

import httpx
from fastapi import Request, Response

from services.gateway.settings import GatewaySettings
from shared import regions
from shared.http import ServiceClient
from shared.identity import Caller
from shared.logs import REQUEST_ID_HEADER, request_id
from shared.problems import ServiceUnavailable

FORWARDED_REQUEST_HEADERS = ("authorization", "content-type", "if-match", "accept")
RELAYED_RESPONSE_HEADERS = ("content-type", "etag", "retry-after", "www-authenticate")
RETRY_AFTER_SECONDS = "5"


class Upstreams:
    def __init__(
        self, settings: GatewaySettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.client = ServiceClient(
            timeout=httpx.Timeout(settings.upstream_timeout_seconds, connect=2.0),
            transport=transport,
        )

    async def close(self) -> None:
        await self.client.aclose()

    def recommendations_for(self, caller: Caller) -> str:
        """The recommendation service holding the freshest copy for this caller."""
        if caller.office.tier is regions.Tier.national:
            return self.settings.national_url
        return self.settings.province_url(caller.office.province_code or "")

    async def call(
        self,
        method: str,
        base_url: str,
        path: str,
        request: Request,
        *,
        content: bytes | None = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        forwarded = {
            name: request.headers[name]
            for name in FORWARDED_REQUEST_HEADERS
            if name in request.headers
        }
        forwarded[REQUEST_ID_HEADER] = request_id.get() or ""
        forwarded.update(headers or {})
        try:
            response = await self.client.request(
                method,
                base_url.rstrip("/") + path,
                content=content,
                params=params,
                headers=forwarded,
            )
        except (httpx.TransportError, httpx.TimeoutException):
            raise ServiceUnavailable(
                "a service behind the gateway is not answering; try again shortly",
                headers={"retry-after": RETRY_AFTER_SECONDS},
            ) from None
        if response.status_code in (502, 503, 504):
            raise ServiceUnavailable(
                "a service behind the gateway is unavailable; try again shortly",
                headers={"retry-after": response.headers.get("retry-after", RETRY_AFTER_SECONDS)},
            )
        return response

    async def relay_read(self, caller: Caller, path: str, request: Request) -> Response:
        """A read answered by the recommendation service holding the caller's data, with the
        caller's query."""
        return relayed(
            await self.call(
                "GET",
                self.recommendations_for(caller),
                path,
                request,
                params=request.query_params,
            )
        )

    async def province_totals(self, request: Request, path: str, params: Any) -> list[dict]:
        """Every province service's own totals, for a whole-country view."""
        answers = await asyncio.gather(
            *(
                self.call(
                    "GET", url, path, request, params=params, headers={"accept": "application/json"}
                )
                for url in self.settings.province_urls()
            )
        )
        return [answer.json() for answer in answers if answer.is_success]


def relayed(response: httpx.Response) -> Response:
    """The upstream's answer as the gateway's, byte for byte."""
    headers = {
        name: response.headers[name]
        for name in RELAYED_RESPONSE_HEADERS
        if name in response.headers
    }
    return Response(content=response.content, status_code=response.status_code, headers=headers)


def merge_totals(provinces: list[dict]) -> dict:
    """The whole country: every province service's own totals added up. Each recommendation
    lives at its province service from arrival to the end (national's decisions come back down
    as status events), so the provinces together count each one exactly once."""
    counts: Counter[tuple] = Counter()
    keys: dict[tuple, dict] = {}
    for answer in provinces:
        for group in answer.get("groups", []):
            label = tuple(sorted((k, v) for k, v in group.items() if k != "count"))
            counts[label] += group["count"]
            keys[label] = {k: v for k, v in group.items() if k != "count"}
    as_of = max((answer["as_of"] for answer in provinces if "as_of" in answer), default=None)
    return {
        "groups": [{**keys[label], "count": counts[label]} for label in sorted(counts)],
        "total": sum(answer.get("total", 0) for answer in provinces),
        "late_reviews": sum(answer.get("late_reviews", 0) for answer in provinces),
        "overdue_follow_ups": sum(answer.get("overdue_follow_ups", 0) for answer in provinces),
        "as_of": as_of,
        "sources": len(provinces),
    }

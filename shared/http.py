"""The HTTP client every service uses to call another: httpx's interface over aiohttp's wire.

httpx's own connection pool costs milliseconds of CPU per request once a few dozen requests are
in flight (it checks every pooled connection on every request), which made the gateway's hop
the exchange's ceiling: one core saturated at about 175-224 requests/s. Over aiohttp's pool the
same hop carries 724/s (`make bench`, bare hop, 2026-11-22). Keeping httpx's interface keeps
every caller and test unchanged: tests hand in an ASGI transport instead, as before.
"""

import httpx
from httpx_aiohttp import AiohttpTransport

# One gateway or relay talks to a handful of services; this many idle connections per process
# is enough to keep every concurrent call on a warm connection.
LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=100, keepalive_expiry=30)


def service_client(
    *, timeout: httpx.Timeout | float, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """A client for calls between services; `transport` replaces the network (tests)."""
    return httpx.AsyncClient(
        transport=transport if transport is not None else AiohttpTransport(limits=LIMITS),
        timeout=timeout,
        limits=LIMITS,
    )

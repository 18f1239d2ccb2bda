"""The HTTP client every service uses to call another: httpx's interface over aiohttp's wire.

httpx's own connection pool costs milliseconds of CPU per request once a few dozen requests are
in flight (it checks every pooled connection on every request), which made the gateway's hop
the exchange's ceiling: about 175 submissions/s with one core saturated, where the same hop over
aiohttp's pool carries about 500/s (`make bench`, bare hop). Keeping httpx's interface keeps
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

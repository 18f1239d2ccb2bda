"""What `python -m services.<name>` does for every service: JSON logs, then either `migrate` (only
bring the database to head) or serve with uvicorn, configured the same way everywhere."""

import gc
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn

from shared.db import Database
from shared.logs import configure_logging
from shared.settings import ServiceSettings


def run(
    name: str,
    settings: ServiceSettings,
    create_app: Callable[[Any], Any],
    migrations: Path,
    **server: Any,
) -> None:
    configure_logging(name, settings.log_level)
    if sys.argv[1:] == ["migrate"]:
        Database(settings.database_url, migrations).upgrade()
        return
    uvicorn.run(
        frozen_after_startup(create_app(settings)),
        host=settings.host,
        port=settings.port,
        log_config=None,
        # Services are reached directly (or through our gateway): no proxy headers to trust.
        proxy_headers=False,
        server_header=False,
        **server,
    )


def frozen_after_startup(app: Any) -> Any:
    """Once the app has started, set everything it loaded (modules, schemas, mappers, keys:
    about 150,000 objects) aside from the garbage collector with `gc.freeze`. A full collection
    otherwise walks them all: national totals grouped by region and category took 100 ms longer
    whenever one fell inside a request (p95 229 ms → 125 ms over a million rows).

    Only for a process that serves one app for its life: frozen objects are never collected."""
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with started(app) as state:
            gc.collect()
            gc.freeze()
            yield state

    app.router.lifespan_context = lifespan
    return app

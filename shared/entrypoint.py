"""What `python -m services.<name>` does for every service: JSON logs, then either `migrate` (only
bring the database to head) or serve with uvicorn, configured the same way everywhere."""

import sys
from collections.abc import Callable
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
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        # Services are reached directly (or through our gateway): no proxy headers to trust.
        proxy_headers=False,
        server_header=False,
        **server,
    )

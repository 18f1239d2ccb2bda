"""`python -m services.intake` serves intake; `python -m services.intake migrate` only migrates."""

import sys

import uvicorn

from services.intake.app import MIGRATIONS, create_app
from services.intake.settings import IntakeSettings
from shared.db import Database
from shared.logs import configure_logging


def main() -> None:
    settings = IntakeSettings()
    configure_logging("intake", settings.log_level)
    if sys.argv[1:] == ["migrate"]:
        Database(settings.database_url, MIGRATIONS).upgrade()
        return
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()

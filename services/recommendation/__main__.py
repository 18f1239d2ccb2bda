"""`python -m services.recommendation` serves one tier (SIAPNET_RECOMMENDATION_TIER);
`python -m services.recommendation migrate` only migrates."""

import sys

import uvicorn

from services.recommendation.app import MIGRATIONS, create_app
from services.recommendation.settings import RecommendationSettings
from shared.db import Database
from shared.logs import configure_logging


def main() -> None:
    settings = RecommendationSettings()
    configure_logging(f"recommendation-{settings.tier}", settings.log_level)
    if sys.argv[1:] == ["migrate"]:
        Database(settings.database_url, MIGRATIONS).upgrade()
        return
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)


if __name__ == "__main__":
    main()

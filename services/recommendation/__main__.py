"""`python -m services.recommendation` serves one tier (SIAPNET_RECOMMENDATION_TIER);
`python -m services.recommendation migrate` only migrates."""

from services.recommendation.app import MIGRATIONS, create_app
from services.recommendation.settings import RecommendationSettings
from shared import entrypoint


def main() -> None:
    settings = RecommendationSettings()
    entrypoint.run(f"recommendation-{settings.tier}", settings, create_app, MIGRATIONS)


if __name__ == "__main__":
    main()

"""`python -m services.intake` serves intake; `python -m services.intake migrate` only migrates."""

from services.intake.app import MIGRATIONS, create_app
from services.intake.settings import IntakeSettings
from shared import entrypoint


def main() -> None:
    entrypoint.run("intake", IntakeSettings(), create_app, MIGRATIONS)


if __name__ == "__main__":
    main()

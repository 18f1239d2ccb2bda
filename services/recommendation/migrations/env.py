"""Alembic environment for recommendation (see shared.db.run_migrations)."""

from services.recommendation import models
from shared.db import run_migrations

run_migrations(models.TABLES)

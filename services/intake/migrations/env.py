"""Alembic environment for intake (see shared.db.run_migrations)."""

from services.intake import models
from shared.db import run_migrations

run_migrations(models.TABLES)

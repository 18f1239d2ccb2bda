"""Alembic environment for gateway (see shared.db.run_migrations)."""

from services.gateway import models
from shared.db import run_migrations

run_migrations(models.TABLES)

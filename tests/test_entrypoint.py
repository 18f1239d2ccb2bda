"""Specification: a served app sets what it loaded at startup aside from the garbage collector,
and its lifespan otherwise runs as written."""

import gc
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI

from shared.entrypoint import frozen_after_startup

pytestmark = pytest.mark.anyio


async def test_startup_runs_then_what_it_loaded_is_frozen_and_its_state_kept():
    steps: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        steps.append("started")
        yield {"greeting": "selamat pagi"}
        steps.append("stopped")

    app = frozen_after_startup(FastAPI(lifespan=lifespan))
    try:
        async with app.router.lifespan_context(app) as state:
            assert steps == ["started"]
            assert gc.get_freeze_count() > 0
            assert state == {"greeting": "selamat pagi"}
        assert steps == ["started", "stopped"]
    finally:
        gc.unfreeze()

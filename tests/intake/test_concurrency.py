"""Specification: registration numbers stay unique and gap-free under concurrent submissions."""

import asyncio

import httpx
import pytest

from services.intake.app import create_app
from tests.conftest import registered_office, submit

pytestmark = pytest.mark.anyio


async def test_fifty_concurrent_submissions_get_fifty_gap_free_numbers(
    intake_settings, database_url, admin_headers
):
    app = create_app(intake_settings.model_copy(update={"database_url": database_url}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as intake:
            office = await registered_office(intake, admin_headers, "bawaslu-36.01")
            bodies = [office.sign() for _ in range(50)]

            responses = await asyncio.gather(*(submit(intake, body) for body in bodies))

    assert [r.status_code for r in responses] == [201] * 50
    sequences = sorted(int(r.json()["registration_number"].rsplit("-", 1)[1]) for r in responses)
    assert sequences == list(range(1, 51))


async def test_the_same_document_submitted_concurrently_is_stored_once(
    intake_settings, database_url, admin_headers
):
    app = create_app(intake_settings.model_copy(update={"database_url": database_url}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as intake:
            office = await registered_office(intake, admin_headers, "bawaslu-36.01")
            body = office.sign()

            responses = await asyncio.gather(*(submit(intake, body) for body in [body] * 10))

    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({r.json()["receipt"] for r in responses}) == 1

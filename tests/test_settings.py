"""Specification: settings come from the environment and refuse placeholders in production."""

import pytest
from pydantic import ValidationError

from services.intake.settings import IntakeSettings


def test_settings_are_read_from_prefixed_environment_variables(monkeypatch):
    monkeypatch.setenv("SIAPNET_INTAKE_PORT", "9100")
    monkeypatch.setenv("SIAPNET_INTAKE_ROUTES", '{"32": "http://jabar:8000"}')

    settings = IntakeSettings()

    assert settings.port == 9100
    assert settings.route_for("32") == "http://jabar:8000"
    assert settings.route_for("36") == settings.default_route


def test_a_placeholder_database_password_stops_a_production_start():
    with pytest.raises(ValidationError, match="placeholder"):
        IntakeSettings(
            environment="production", database_url="postgresql://siapnet:changeme@db/intake"
        )


def test_development_accepts_the_embedded_defaults():
    assert IntakeSettings().database_url.startswith("sqlite:///")

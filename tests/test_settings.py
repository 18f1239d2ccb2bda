"""Specification: settings come from the environment and refuse placeholders in production."""

import pytest
from pydantic import ValidationError

from services.intake.settings import IntakeSettings
from services.recommendation.settings import RecommendationSettings
from shared.outbox import RetryPolicy


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


@pytest.mark.parametrize(
    ("settings_class", "prefix", "extra"),
    [
        (IntakeSettings, "SIAPNET_INTAKE_", {}),
        (RecommendationSettings, "SIAPNET_RECOMMENDATION_", {"tier": "national"}),
    ],
)
def test_the_outbox_is_tuned_under_each_relaying_service_s_prefix(
    monkeypatch, settings_class, prefix, extra
):
    monkeypatch.setenv(f"{prefix}OUTBOX_LEASE_SECONDS", "12")
    monkeypatch.setenv(f"{prefix}OUTBOX_MAX_ATTEMPTS", "7")

    policy = settings_class(**extra).retry_policy()

    assert (policy.lease_seconds, policy.max_attempts) == (12, 7)


def test_a_lease_no_longer_than_a_delivery_is_refused():
    """A lease that ran out mid-delivery would let a second relay send the same message."""
    with pytest.raises(ValidationError, match="outbox_lease_seconds"):
        IntakeSettings(outbox_lease_seconds=RetryPolicy.timeout_seconds)

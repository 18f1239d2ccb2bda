"""Specification: an office uses the `siapnet` CLI against a running gateway over real HTTP."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.gateway import accounts
from services.gateway.app import create_app as create_gateway
from services.intake.app import create_app as create_intake
from services.recommendation.app import create_app as create_recommendation
from shared.cli import app
from tests.conftest import recommendation_settings
from tests.gateway.conftest import PASSWORD, gateway_settings
from tests.support.servers import ThreadedServer

EXAMPLE = "docs/examples/recommendation-finding.json"


@pytest.fixture
def gateway_url(intake_settings, tmp_path, identity_key):
    intake = ThreadedServer(create_intake(intake_settings)).start()
    province = ThreadedServer(create_recommendation(recommendation_settings(tmp_path, "province")))
    province.start()
    identity_key.save(tmp_path / "keys" / "gateway" / "signing.pem")
    gateway_app = create_gateway(
        gateway_settings(tmp_path, intake_url=intake.url, default_province_url=province.url)
    )
    gateway = ThreadedServer(gateway_app).start()
    with gateway_app.state.database.session() as session:
        accounts.create_account(
            session, username="admin", office_id="bawaslu-ri", roles=["admin"], secret=PASSWORD
        )
        accounts.create_account(
            session,
            username="bawaslu-36.01",
            office_id="bawaslu-36.01",
            roles=["officer"],
            secret=PASSWORD,
        )
    yield gateway.url
    gateway.stop()
    province.stop()
    intake.stop()


@pytest.fixture
def run(tmp_path):
    def invoke(*args: str):
        env = {"SIAPNET_HOME": str(tmp_path / "session.json"), "SIAPNET_PASSWORD": PASSWORD}
        return CliRunner().invoke(app, list(args), env=env)

    return invoke


def test_an_office_makes_a_key_signs_submits_follows_and_verifies_its_receipt(
    gateway_url, run, tmp_path
):
    assert run("login", "--username", "admin", "--url", gateway_url).exit_code == 0
    assert run("keygen", "--office", "bawaslu-36.01", "--out", str(tmp_path)).exit_code == 0
    registered = run(
        "admin",
        "register-key",
        "--office",
        "bawaslu-36.01",
        "--jwk",
        str(tmp_path / "bawaslu-36.01.jwk.json"),
    )
    assert registered.exit_code == 0, registered.output
    logged_in = run("login", "--username", "bawaslu-36.01", "--url", gateway_url)
    assert "logged in as bawaslu-36.01 (Bawaslu Kabupaten Pandeglang, regency)" in logged_in.output
    signed = tmp_path / "rec.jws"
    signing = run(
        "sign",
        EXAMPLE,
        "--office",
        "bawaslu-36.01",
        "--key",
        str(tmp_path / "bawaslu-36.01.pem"),
        "--out",
        str(signed),
    )
    assert signing.exit_code == 0, signing.output
    receipt = tmp_path / "receipt.jws"

    submitted = run("submit", str(signed), "--receipt-out", str(receipt))
    verified = run("verify", str(receipt), "--original", str(signed))
    answer = json.loads(submitted.stdout[: submitted.stdout.rindex("}") + 1])
    status = run("status", answer["document_id"])

    assert submitted.exit_code == 0, submitted.output
    assert answer["registration_number"].endswith("-000001")
    assert verified.exit_code == 0, verified.output
    assert "verified: siapnet-receipt+jws" in verified.stdout
    assert "matches the original document" in verified.stdout
    assert status.exit_code == 0, status.output
    assert "received" in status.stdout  # no province service here: intake's copy answers


def test_verify_refuses_a_receipt_for_other_bytes(gateway_url, run, tmp_path):
    run("login", "--username", "admin", "--url", gateway_url)
    run("keygen", "--office", "bawaslu-36.01", "--out", str(tmp_path))
    run(
        "admin",
        "register-key",
        "--office",
        "bawaslu-36.01",
        "--jwk",
        str(tmp_path / "bawaslu-36.01.jwk.json"),
    )
    run("login", "--username", "bawaslu-36.01", "--url", gateway_url)
    key = str(tmp_path / "bawaslu-36.01.pem")
    first, second = tmp_path / "a.jws", tmp_path / "b.jws"
    run("sign", EXAMPLE, "--office", "bawaslu-36.01", "--key", key, "--out", str(first))
    run("sign", EXAMPLE, "--office", "bawaslu-36.01", "--key", key, "--out", str(second))
    receipt = tmp_path / "receipt.jws"
    run("submit", str(first), "--receipt-out", str(receipt))

    result = run("verify", str(receipt), "--original", str(second))

    assert result.exit_code == 1
    assert "NOT VERIFIED" in result.output


def test_logout_ends_the_session(gateway_url, run):
    run("login", "--username", "bawaslu-36.01", "--url", gateway_url)

    assert run("logout").exit_code == 0
    after = run("status", "00000000-0000-4000-8000-000000000000", "--url", gateway_url)

    assert after.exit_code == 1
    assert "log in first" in after.output


def test_sign_refuses_an_invalid_recommendation_before_anything_is_sent(run, tmp_path):
    run("keygen", "--office", "bawaslu-36.01", "--out", str(tmp_path))
    bad = tmp_path / "bad.json"
    recommendation = json.loads(Path(EXAMPLE).read_text())
    recommendation["subject"]["nip"] = "123"
    bad.write_text(json.dumps(recommendation))

    result = run(
        "sign", str(bad), "--office", "bawaslu-36.01", "--key", str(tmp_path / "bawaslu-36.01.pem")
    )

    assert result.exit_code == 1
    assert "recommendation.subject.nip" in result.output


def test_keygen_never_overwrites_an_office_key(run, tmp_path):
    assert run("keygen", "--office", "bawaslu-36.01", "--out", str(tmp_path)).exit_code == 0

    again = run("keygen", "--office", "bawaslu-36.01", "--out", str(tmp_path))

    assert again.exit_code == 1

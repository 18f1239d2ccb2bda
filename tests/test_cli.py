"""Specification: an office uses the `siapnet` CLI against a running intake over real HTTP."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.intake.app import create_app
from shared.cli import app
from tests.support.servers import ThreadedServer

EXAMPLE = "docs/examples/recommendation-finding.json"


@pytest.fixture
def running_intake(intake_settings):
    server = ThreadedServer(create_app(intake_settings)).start()
    yield server
    server.stop()


def run(*args: str, env: dict | None = None):
    result = CliRunner().invoke(app, list(args), env=env)
    return result


def test_an_office_makes_a_key_signs_submits_and_verifies_its_receipt(
    running_intake, token_for, tmp_path
):
    url = running_intake.url
    keygen = run("keygen", "--office", "bawaslu-36.01", "--out", str(tmp_path))
    assert keygen.exit_code == 0, keygen.output
    registered = run(
        "admin",
        "register-key",
        "--office",
        "bawaslu-36.01",
        "--jwk",
        str(tmp_path / "bawaslu-36.01.jwk.json"),
        "--url",
        url,
        "--token",
        token_for("bawaslu-ri", "admin"),
    )
    assert registered.exit_code == 0, registered.output
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

    submitted = run("submit", str(signed), "--url", url, "--receipt-out", str(receipt))
    verified = run(
        "verify", str(receipt), "--keys", f"{url}/.well-known/jwks.json", "--original", str(signed)
    )

    assert submitted.exit_code == 0, submitted.output
    answer = json.loads(submitted.stdout[: submitted.stdout.rindex("}") + 1])
    assert answer["registration_number"].endswith("-000001")
    assert verified.exit_code == 0, verified.output
    assert "verified: siapnet-receipt+jws" in verified.stdout
    assert "matches the original document" in verified.stdout


def test_verify_refuses_a_receipt_for_other_bytes(running_intake, token_for, tmp_path):
    run("keygen", "--office", "bawaslu-36.01", "--out", str(tmp_path))
    run(
        "admin",
        "register-key",
        "--office",
        "bawaslu-36.01",
        "--jwk",
        str(tmp_path / "bawaslu-36.01.jwk.json"),
        "--url",
        running_intake.url,
        "--token",
        token_for("bawaslu-ri", "admin"),
    )
    key = str(tmp_path / "bawaslu-36.01.pem")
    first, second = tmp_path / "a.jws", tmp_path / "b.jws"
    run("sign", EXAMPLE, "--office", "bawaslu-36.01", "--key", key, "--out", str(first))
    run("sign", EXAMPLE, "--office", "bawaslu-36.01", "--key", key, "--out", str(second))
    receipt = tmp_path / "receipt.jws"
    run("submit", str(first), "--url", running_intake.url, "--receipt-out", str(receipt))

    result = run(
        "verify",
        str(receipt),
        "--keys",
        f"{running_intake.url}/.well-known/jwks.json",
        "--original",
        str(second),
    )

    assert result.exit_code == 1
    assert "NOT VERIFIED" in result.output


def test_sign_refuses_an_invalid_recommendation_before_anything_is_sent(tmp_path):
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


def test_keygen_never_overwrites_an_office_key(tmp_path):
    assert run("keygen", "--office", "bawaslu-36.01", "--out", str(tmp_path)).exit_code == 0

    again = run("keygen", "--office", "bawaslu-36.01", "--out", str(tmp_path))

    assert again.exit_code == 1

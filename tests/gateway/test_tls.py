"""Specification: `make run` serves the gateway over HTTPS with a local CA clients can trust."""

import ssl
import stat

import httpx
from fastapi import FastAPI

from services.gateway.tls import ensure_local_tls
from tests.support.servers import ThreadedServer


def test_a_local_ca_signs_a_certificate_that_a_client_trusting_it_accepts(tmp_path):
    tls = ensure_local_tls(tmp_path / "tls")

    app = FastAPI()
    app.get("/")(lambda: "ok")
    server = ThreadedServer(app)
    server.config_overrides = {
        "ssl_certfile": str(tls.certificate),
        "ssl_keyfile": str(tls.private_key),
    }
    server.start()
    try:
        trusted = ssl.create_default_context(cafile=str(tls.ca_certificate))
        answer = httpx.get(f"https://127.0.0.1:{server.port}/", verify=trusted)
        untrusted = None
        try:
            httpx.get(f"https://localhost:{server.port}/", verify=ssl.create_default_context())
        except httpx.ConnectError as exc:
            untrusted = exc
    finally:
        server.stop()

    assert answer.json() == "ok"
    assert untrusted is not None  # the system's trust store does not know our CA
    assert stat.S_IMODE(tls.private_key.stat().st_mode) == 0o600


def test_a_second_run_reuses_the_authority_and_the_certificate(tmp_path):
    first = ensure_local_tls(tmp_path)
    ca, certificate = first.ca_certificate.read_bytes(), first.certificate.read_bytes()

    second = ensure_local_tls(tmp_path)

    assert second.ca_certificate.read_bytes() == ca
    assert second.certificate.read_bytes() == certificate

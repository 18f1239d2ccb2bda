"""How the CLI reaches the gateway: its URL, which certificate authority to trust, and the
session `siapnet login` keeps (mode 0600), refreshed when its access token has run out."""

import json
import os
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import httpx
import typer

DEFAULT_URL = "https://127.0.0.1:8443"
LOCAL_CA = Path("var/tls/ca.pem")  # made by `make run`

Url = Annotated[
    str | None,
    typer.Option(
        envvar="SIAPNET_URL", help=f"the gateway's URL [default: {DEFAULT_URL}]", show_default=False
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        envvar="SIAPNET_TOKEN",
        help="an access token (default: the login session)",
        show_default=False,
    ),
]
CA = Annotated[
    Path | None,
    typer.Option(
        envvar="SIAPNET_CA",
        help=f"CA certificate to trust [default: {LOCAL_CA} if present]",
        show_default=False,
    ),
]


def fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def session_path() -> Path:
    home = os.environ.get("SIAPNET_HOME")
    return Path(home) if home else Path.home() / ".config" / "siapnet" / "session.json"


def trust(ca: Path | None) -> ssl.SSLContext | bool:
    if ca is None and LOCAL_CA.exists():
        ca = LOCAL_CA
    if ca is None:
        return True
    return ssl.create_default_context(cafile=str(ca))


@dataclass
class Connection:
    url: str
    verify: ssl.SSLContext | bool
    token: str | None

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url.rstrip("/"), verify=self.verify, timeout=30)

    def headers(self) -> dict[str, str]:
        if not self.token:
            fail("log in first (siapnet login), or pass --token")
        return {"authorization": f"Bearer {self.token}"}


def save_session(url: str, username: str, answer: dict) -> None:
    path = session_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    session = {
        "url": url,
        "username": username,
        "access_token": answer["access_token"],
        "refresh_token": answer.get("refresh_token"),
        "expires_at": time.time() + answer["expires_in"] - 30,
    }
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(session, handle)


def load_session() -> dict | None:
    try:
        return json.loads(session_path().read_text())
    except (OSError, ValueError):
        return None


def connect(url: str | None, token: str | None, ca: Path | None) -> Connection:
    """The gateway and a token: the one given, or the login session's (refreshed if stale)."""
    verify = trust(ca)
    session = load_session()
    if token:
        return Connection(url or DEFAULT_URL, verify, token)
    if session is None:
        return Connection(url or DEFAULT_URL, verify, None)
    url = url or session["url"]
    if session["expires_at"] < time.time() and session.get("refresh_token"):
        with httpx.Client(base_url=url, verify=verify, timeout=30) as client:
            answer = client.post(
                "/v1/auth/token",
                data={"grant_type": "refresh_token", "refresh_token": session["refresh_token"]},
            )
        if not answer.is_success:
            fail("the login session has ended; log in again (siapnet login)")
        save_session(url, session["username"], answer.json())
        return Connection(url, verify, answer.json()["access_token"])
    return Connection(url, verify, session["access_token"])

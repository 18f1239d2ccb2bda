"""Operator commands: accounts, office keys, and the bootstrap identity key and token."""

import json
import uuid
from pathlib import Path
from typing import Annotated

import typer

from shared.cli.connection import CA, Token, Url, connect, fail
from shared.cli.office import known_office, show_answer
from shared.identity import mint_access_token
from shared.signing import KeyPair, jwks

app = typer.Typer(help="Operator commands: accounts, office keys, bootstrap.", no_args_is_help=True)
accounts = typer.Typer(help="Accounts at the gateway (admin role).", no_args_is_help=True)
app.add_typer(accounts, name="account")


@accounts.command("create")
def create_account(
    username: Annotated[str, typer.Option()],
    office: Annotated[str, typer.Option(help="the office the account belongs to")],
    role: Annotated[list[str], typer.Option(help="officer, supervisor, admin, viewer, liaison")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, envvar="SIAPNET_NEW_PASSWORD")
    ],
    client: Annotated[bool, typer.Option(help="a client system (client_credentials)")] = False,
    url: Url = None,
    token: Token = None,
    ca: CA = None,
) -> None:
    """Create an account bound to an office."""
    connection = connect(url, token, ca)
    body = {
        "username": username,
        "office": office,
        "roles": role,
        "password": password,
        "kind": "client" if client else "user",
    }
    with connection.client() as http:
        show_answer(http.post("/v1/accounts", json=body, headers=connection.headers()))


@accounts.command("list")
def list_accounts(
    office: Annotated[str | None, typer.Option()] = None,
    url: Url = None,
    token: Token = None,
    ca: CA = None,
) -> None:
    """List accounts, optionally of one office."""
    connection = connect(url, token, ca)
    with connection.client() as http:
        answer = http.get(
            "/v1/accounts",
            params={"office": office} if office else None,
            headers=connection.headers(),
        )
    if not answer.is_success:
        show_answer(answer)
    for account in answer.json():
        flags = " disabled" if account["disabled"] else (" locked" if account["locked"] else "")
        typer.echo(
            f"{account['username']:<24} {account['office']:<16} {','.join(account['roles'])}{flags}"
        )


@accounts.command("disable")
def disable_account(
    username: Annotated[str, typer.Argument()], url: Url = None, token: Token = None, ca: CA = None
) -> None:
    """Disable an account; its refresh tokens stop working at once."""
    connection = connect(url, token, ca)
    with connection.client() as http:
        show_answer(http.post(f"/v1/accounts/{username}/disable", headers=connection.headers()))


@app.command("register-key")
def register_key(
    office: Annotated[str, typer.Option(help="the office the key belongs to")],
    jwk: Annotated[Path, typer.Option(help="the office's public JWK file")],
    url: Url = None,
    token: Token = None,
    ca: CA = None,
) -> None:
    """Register an office's public key so intake accepts what it signs."""
    connection = connect(url, token, ca)
    with connection.client() as http:
        show_answer(
            http.post(
                f"/v1/offices/{office}/keys",
                json={"jwk": json.loads(jwk.read_text())},
                headers=connection.headers(),
            )
        )


@app.command("list-keys")
def list_keys(
    office: Annotated[str, typer.Option()], url: Url = None, token: Token = None, ca: CA = None
) -> None:
    """An office's registered keys, retired ones included."""
    connection = connect(url, token, ca)
    with connection.client() as http:
        show_answer(http.get(f"/v1/offices/{office}/keys", headers=connection.headers()))


@app.command("retire-key")
def retire_key(
    office: Annotated[str, typer.Option()],
    kid: Annotated[str, typer.Option()],
    url: Url = None,
    token: Token = None,
    ca: CA = None,
) -> None:
    """Retire an office key: it verifies only documents signed before now."""
    connection = connect(url, token, ca)
    with connection.client() as http:
        show_answer(
            http.post(f"/v1/offices/{office}/keys/{kid}/retire", headers=connection.headers())
        )


@app.command("identity-key")
def identity_key(
    directory: Annotated[Path, typer.Option("--dir", help="key directory")] = Path("var/keys"),
) -> None:
    """Make (once) the key access tokens are signed with, and the JWKS services trust."""
    private_path = directory / "identity" / "signing.pem"
    pair = KeyPair.load_or_create(private_path)
    (directory / "identity.jwks.json").write_text(json.dumps(jwks(pair.public_jwk), indent=2))
    typer.echo(f"identity key {pair.kid} at {private_path}")


@app.command("token")
def admin_token(
    office: Annotated[str, typer.Option(help="the office the token speaks for")] = "bawaslu-ri",
    role: Annotated[list[str], typer.Option(help="a role (repeatable)")] = ["admin"],  # noqa: B006
    subject: Annotated[str, typer.Option(help="who the token names")] = "admin",
    key: Annotated[Path, typer.Option(help="the identity signing key")] = Path(
        "var/keys/identity/signing.pem"
    ),
    minutes: Annotated[int, typer.Option(min=1, max=60)] = 15,
) -> None:
    """Mint a short-lived access token with the identity key (operator bootstrap, no gateway
    needed: whoever holds that key is trusted by every service)."""
    known_office(office)
    if not key.exists():
        fail(f"no identity key at {key}")
    typer.echo(
        mint_access_token(
            KeyPair.load(key),
            subject=subject,
            office=office,
            roles=role,
            lifetime_seconds=minutes * 60,
            token_id=str(uuid.uuid4()),
        )
    )

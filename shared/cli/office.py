"""What an office does with `siapnet`: make its key, log in, sign and submit recommendations,
follow them, take lifecycle actions, and verify any signed document."""

import getpass
import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Annotated

import httpx
import typer

from shared import documents, regions
from shared.cli.connection import (
    CA,
    Token,
    Url,
    connect,
    fail,
    save_session,
    session_path,
    trust,
)
from shared.signing import KeyPair, SignatureError, jwks, read_header, verify

app = typer.Typer(help="SIAPNET exchange client for Bawaslu offices.", no_args_is_help=True)

TYPES = (
    documents.RECOMMENDATION_TYP,
    documents.ENVELOPE_TYP,
    documents.STATUS_TYP,
    documents.RECEIPT_TYP,
)


def known_office(office: str) -> regions.Office:
    found = regions.office(office)
    if found is None:
        fail(f"{office!r} is not a Bawaslu office id (bawaslu-ri, bawaslu-36, bawaslu-36.01, ...)")
    return found  # type: ignore[return-value]


def show_answer(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        body = {"status": response.status_code, "body": response.text}
    typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
    if not response.is_success:
        raise typer.Exit(1)
    return body


@app.command()
def keygen(
    office: Annotated[str, typer.Option(help="the office id, e.g. bawaslu-36.01")],
    out: Annotated[Path, typer.Option(help="directory for the key files")] = Path("keys"),
) -> None:
    """Make an office key pair: OFFICE.pem (private, mode 0600) and OFFICE.jwk.json (public)."""
    known_office(office)
    private_path, public_path = out / f"{office}.pem", out / f"{office}.jwk.json"
    if private_path.exists():
        fail(f"{private_path} exists; refusing to overwrite an office key")
    pair = KeyPair.generate()
    pair.save(private_path)
    public_path.write_text(json.dumps(pair.public_jwk, indent=2) + "\n")
    typer.echo(f"private key: {private_path} (keep it secret, mode 0600)")
    typer.echo(f"public JWK:  {public_path} (give this to the SIAPNET administrator)")
    typer.echo(f"kid:         {pair.kid}")


@app.command()
def login(
    username: Annotated[str, typer.Option(help="your account, e.g. bawaslu-36.01")],
    password: Annotated[
        str | None,
        typer.Option(
            envvar="SIAPNET_PASSWORD", help="asked for when not given", show_default=False
        ),
    ] = None,
    url: Url = None,
    ca: CA = None,
) -> None:
    """Log in at the gateway; the session is kept for the commands that follow."""
    target = url or connect(None, None, ca).url
    secret = password or getpass.getpass(f"password for {username}: ")
    with httpx.Client(base_url=target, verify=trust(ca), timeout=30) as client:
        answer = client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": username, "password": secret},
        )
    if not answer.is_success:
        show_answer(answer)
    save_session(target, username, answer.json())
    me = connect(target, answer.json()["access_token"], ca)
    with me.client() as client:
        who = client.get("/v1/me", headers=me.headers()).json()
    typer.echo(f"logged in as {who['username']} ({who['office_name']}, {who['tier']})")


@app.command()
def logout(url: Url = None, ca: CA = None) -> None:
    """End the login session: its refresh token is revoked at the gateway."""
    connection = connect(url, None, ca)
    path = session_path()
    if path.exists():
        refresh = json.loads(path.read_text()).get("refresh_token")
        if refresh:
            with connection.client() as client:
                client.post("/v1/auth/revoke", data={"token": refresh})
        path.unlink()
    typer.echo("logged out")


@app.command()
def sign(
    recommendation: Annotated[Path, typer.Argument(help="the recommendation object as JSON")],
    office: Annotated[str, typer.Option(help="the signing office id")],
    key: Annotated[Path, typer.Option(help="the office's private key (PEM)")],
    supersedes: Annotated[
        str | None, typer.Option(help="id of a returned recommendation this corrects")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="write the JWS here instead of stdout")] = None,
) -> None:
    """Sign a recommendation as a siapnet-recommendation+jws with a new document id."""
    known_office(office)
    payload = {
        "jti": str(uuid.uuid4()),
        "iss": office,
        "aud": documents.INTAKE_AUDIENCE,
        "iat": int(time.time()),
        "recommendation": json.loads(recommendation.read_text()),
    }
    if supersedes:
        payload["supersedes"] = supersedes
    try:
        documents.check_recommendation(payload)
    except documents.DocumentRejected as exc:
        for error in exc.errors:
            typer.secho(f"{error['field']}: {error['message']}", fg=typer.colors.RED, err=True)
        fail("not signed: the recommendation is invalid")
    except documents.NotInJurisdiction as exc:
        fail(f"not signed: {exc}")
    compact = KeyPair.load(key).sign(payload, documents.RECOMMENDATION_TYP)
    if out is None:
        typer.echo(compact)
    else:
        out.write_text(compact + "\n")
        typer.echo(f"signed document {payload['jti']} -> {out}", err=True)


@app.command()
def submit(
    document: Annotated[Path, typer.Argument(help="a signed recommendation (compact JWS)")],
    receipt_out: Annotated[
        Path | None, typer.Option(help="save the signed receipt to this file")
    ] = None,
    url: Url = None,
    token: Token = None,
    ca: CA = None,
) -> None:
    """Submit a signed recommendation; prints the registration number and the receipt."""
    connection = connect(url, token, ca)
    with connection.client() as client:
        response = client.post(
            "/v1/recommendations",
            content=document.read_text().strip(),
            headers={**connection.headers(), "content-type": "application/jose"},
        )
    answer = show_answer(response)
    if receipt_out is not None:
        receipt_out.write_text(answer["receipt"] + "\n")
        typer.echo(f"receipt saved to {receipt_out}", err=True)


def _read(connection, recommendation_id: str) -> httpx.Response:
    with connection.client() as client:
        return client.get(f"/v1/recommendations/{recommendation_id}", headers=connection.headers())


@app.command()
def show(
    recommendation_id: Annotated[str, typer.Argument(help="the recommendation's document id")],
    url: Url = None,
    token: Token = None,
    ca: CA = None,
) -> None:
    """Print a recommendation as JSON: status, fields, history, the actions you may take."""
    show_answer(_read(connect(url, token, ca), recommendation_id))


@app.command()
def status(
    recommendation_id: Annotated[str, typer.Argument(help="the recommendation's document id")],
    url: Url = None,
    token: Token = None,
    ca: CA = None,
) -> None:
    """Where a recommendation stands: its status and history, one line per change."""
    response = _read(connect(url, token, ca), recommendation_id)
    if not response.is_success:
        show_answer(response)
    found = response.json()
    typer.echo(f"{found['id']}  {found.get('registration_number', '')}  {found['status']}")
    if found.get("ppk_due_on"):
        typer.echo(f"PPK follow-up due on {found['ppk_due_on']}")
    for change in found.get("history", []):
        by = change["actor_office"] + (f" ({change['actor_user']})" if change["actor_user"] else "")
        note = f"  {change['note']}" if change.get("note") else ""
        typer.echo(
            f"  {change['at'][:19]}  {change['action']:<16} {change['to_status']:<22} {by}{note}"
        )
    allowed = ", ".join(found.get("allowed_actions", [])) or "nothing"
    typer.echo(f"you may: {allowed}")


@app.command()
def act(
    recommendation_id: Annotated[str, typer.Argument(help="the recommendation's document id")],
    action: Annotated[str, typer.Argument(help="verify, return, forward, send, review, ...")],
    note: Annotated[str | None, typer.Option(help="a note for the history")] = None,
    details: Annotated[
        str | None, typer.Option(help='the action\'s details as JSON, e.g. \'{"reason": "..."}\'')
    ] = None,
    url: Url = None,
    token: Token = None,
    ca: CA = None,
) -> None:
    """Take a lifecycle action on the version you just read (If-Match with its ETag)."""
    connection = connect(url, token, ca)
    current = _read(connection, recommendation_id)
    if not current.is_success:
        show_answer(current)
    try:
        parsed = None if details is None else json.loads(details)
    except ValueError:
        fail("--details must be JSON")
    with connection.client() as client:
        response = client.post(
            f"/v1/recommendations/{recommendation_id}/transitions",
            json={"action": action, "note": note, "details": parsed},
            headers={**connection.headers(), "if-match": current.headers["etag"]},
        )
    answer = show_answer(response) if not response.is_success else response.json()
    typer.echo(
        f"{recommendation_id}: {answer['status']}"
        f" (next: {', '.join(answer['allowed_actions']) or 'nothing here'})"
    )


def load_keys(source: str, verify_tls) -> dict[str, dict]:
    if source.startswith(("http://", "https://")):
        document = httpx.get(source, timeout=30, verify=verify_tls).raise_for_status().json()
    else:
        document = json.loads(Path(source).read_text())
    if "keys" not in document:  # a single public JWK file
        document = jwks(document)
    return {key["kid"]: key for key in document["keys"]}


@app.command("verify")
def verify_command(
    document: Annotated[
        Path, typer.Argument(help="any SIAPNET document: receipt, recommendation…")
    ],
    keys: Annotated[
        str | None,
        typer.Option(
            help="JWKS URL, JWKS file or public JWK file [default: the gateway's JWKS]",
            show_default=False,
        ),
    ] = None,
    original: Annotated[
        Path | None, typer.Option(help="for a receipt: the document it acknowledges")
    ] = None,
    url: Url = None,
    ca: CA = None,
) -> None:
    """Verify a signed document's ES256 signature and show what it says."""
    compact = document.read_text().strip()
    source = keys or f"{connect(url, None, ca).url.rstrip('/')}/.well-known/jwks.json"
    try:
        typ = read_header(compact).get("typ")
        if typ not in TYPES:
            fail(f"typ {typ!r} is not a SIAPNET document type")
        known = load_keys(source, trust(ca))
        verified = verify(compact, typ=typ, key_for=known.get)
    except SignatureError as exc:
        fail(f"NOT VERIFIED: {exc.reason}")
    except (OSError, ValueError, httpx.HTTPError) as exc:
        fail(f"cannot read the keys: {exc}")
    payload = verified.payload
    if typ == documents.RECEIPT_TYP and original is not None:
        digest = hashlib.sha256(original.read_text().strip().encode()).hexdigest()
        if digest != payload.get("document_sha256"):
            fail("NOT VERIFIED: the receipt acknowledges other bytes than this document")
    shown = {k: v for k, v in payload.items() if k != "document"}
    typer.echo(json.dumps(shown, indent=2, ensure_ascii=False))
    matched = " and matches the original document" if original is not None else ""
    typer.secho(f"verified: {typ} signed by kid {verified.kid}{matched}", fg=typer.colors.GREEN)

"""`siapnet`: the office's command-line client — make a key, sign, submit, verify.

Operators find key registration and bootstrap tokens under `siapnet admin`.
"""

import hashlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Annotated

import httpx
import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from shared import audit as audit_log
from shared import documents, regions
from shared.db import make_engine, normalise_url
from shared.identity import mint_access_token
from shared.signing import KeyPair, SignatureError, jwks, read_header, verify

app = typer.Typer(help="SIAPNET exchange client for Bawaslu offices.", no_args_is_help=True)
admin = typer.Typer(
    help="Operator commands: office keys and bootstrap tokens.", no_args_is_help=True
)
app.add_typer(admin, name="admin")
audit = typer.Typer(help="Operator commands: a service's evidence log.", no_args_is_help=True)
app.add_typer(audit, name="audit")

DEFAULT_INTAKE = "http://127.0.0.1:8001"
TYPES = (
    documents.RECOMMENDATION_TYP,
    documents.ENVELOPE_TYP,
    documents.STATUS_TYP,
    documents.RECEIPT_TYP,
)

Url = Annotated[str, typer.Option(envvar="SIAPNET_URL", help="base URL of intake (or the gateway)")]
Token = Annotated[
    str | None, typer.Option(envvar="SIAPNET_TOKEN", help="bearer access token", show_default=False)
]


def fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def known_office(office: str) -> regions.Office:
    found = regions.office(office)
    if found is None:
        fail(f"{office!r} is not a Bawaslu office id (bawaslu-ri, bawaslu-36, bawaslu-36.01, ...)")
    return found


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
    url: Url = DEFAULT_INTAKE,
    token: Token = None,
    receipt_out: Annotated[
        Path | None, typer.Option(help="save the signed receipt to this file")
    ] = None,
) -> None:
    """Submit a signed recommendation; prints the registration number and the receipt."""
    headers = {"content-type": "application/jose"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    response = httpx.post(
        url.rstrip("/") + "/v1/documents",
        content=document.read_text().strip(),
        headers=headers,
        timeout=30,
    )
    answer = show_answer(response)
    if receipt_out is not None:
        receipt_out.write_text(answer["receipt"] + "\n")
        typer.echo(f"receipt saved to {receipt_out}", err=True)


DEFAULT_PROVINCE = "http://127.0.0.1:8002"
ServiceUrl = Annotated[
    str, typer.Option(envvar="SIAPNET_URL", help="base URL of the service holding it")
]


def bearer(token: str | None) -> dict[str, str]:
    if not token:
        fail("an access token is needed: --token or SIAPNET_TOKEN")
    return {"authorization": f"Bearer {token}"}


@app.command()
def show(
    recommendation_id: Annotated[str, typer.Argument(help="the recommendation's document id")],
    url: ServiceUrl = DEFAULT_PROVINCE,
    token: Token = None,
) -> None:
    """Show a recommendation: its status, fields, history and the actions you may take."""
    response = httpx.get(
        f"{url.rstrip('/')}/v1/recommendations/{recommendation_id}",
        headers=bearer(token),
        timeout=30,
    )
    show_answer(response)


@app.command()
def act(
    recommendation_id: Annotated[str, typer.Argument(help="the recommendation's document id")],
    action: Annotated[str, typer.Argument(help="verify, return, forward, send, review, ...")],
    note: Annotated[str | None, typer.Option(help="a note for the history")] = None,
    details: Annotated[
        str | None, typer.Option(help='the action\'s details as JSON, e.g. \'{"reason": "..."}\'')
    ] = None,
    url: ServiceUrl = DEFAULT_PROVINCE,
    token: Token = None,
) -> None:
    """Take a lifecycle action on the version you just read (If-Match with its ETag)."""
    headers = bearer(token)
    base = f"{url.rstrip('/')}/v1/recommendations/{recommendation_id}"
    current = httpx.get(base, headers=headers, timeout=30)
    if not current.is_success:
        show_answer(current)
    try:
        parsed = None if details is None else json.loads(details)
    except ValueError:
        fail("--details must be JSON")
    response = httpx.post(
        f"{base}/transitions",
        json={"action": action, "note": note, "details": parsed},
        headers={**headers, "if-match": current.headers["etag"]},
        timeout=30,
    )
    answer = show_answer(response) if not response.is_success else response.json()
    typer.echo(
        f"{recommendation_id}: {answer['status']}"
        f" (next: {', '.join(answer['allowed_actions']) or 'nothing here'})"
    )


def load_keys(source: str) -> dict[str, dict]:
    if source.startswith(("http://", "https://")):
        document = httpx.get(source, timeout=30).raise_for_status().json()
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
        str, typer.Option(help="JWKS URL, JWKS file or public JWK file of the signer")
    ] = f"{DEFAULT_INTAKE}/.well-known/jwks.json",
    original: Annotated[
        Path | None, typer.Option(help="for a receipt: the document it acknowledges")
    ] = None,
) -> None:
    """Verify a signed document's ES256 signature and show what it says."""
    compact = document.read_text().strip()
    try:
        typ = read_header(compact).get("typ")
        if typ not in TYPES:
            fail(f"typ {typ!r} is not a SIAPNET document type")
        known = load_keys(keys)
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


@admin.command("identity-key")
def identity_key(
    directory: Annotated[Path, typer.Option("--dir", help="key directory")] = Path("var/keys"),
) -> None:
    """Make (once) the key access tokens are signed with, and the JWKS services trust."""
    private_path = directory / "identity" / "signing.pem"
    pair = KeyPair.load_or_create(private_path)
    (directory / "identity.jwks.json").write_text(json.dumps(jwks(pair.public_jwk), indent=2))
    typer.echo(f"identity key {pair.kid} at {private_path}")


@admin.command("token")
def admin_token(
    office: Annotated[str, typer.Option(help="the office the token speaks for")] = "bawaslu-ri",
    role: Annotated[list[str], typer.Option(help="a role (repeatable)")] = ["admin"],  # noqa: B006
    subject: Annotated[str, typer.Option(help="who the token names")] = "admin",
    key: Annotated[Path, typer.Option(help="the identity signing key")] = Path(
        "var/keys/identity/signing.pem"
    ),
    minutes: Annotated[int, typer.Option(min=1, max=60)] = 15,
) -> None:
    """Mint a short-lived access token with the identity key (operator bootstrap)."""
    known_office(office)
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


@admin.command("register-key")
def register_key(
    office: Annotated[str, typer.Option(help="the office the key belongs to")],
    jwk: Annotated[Path, typer.Option(help="the office's public JWK file")],
    url: Url = DEFAULT_INTAKE,
    token: Token = None,
) -> None:
    """Register an office's public key so intake accepts what it signs."""
    if not token:
        fail("an admin token is needed: --token or SIAPNET_TOKEN")
    response = httpx.post(
        f"{url.rstrip('/')}/v1/offices/{office}/keys",
        json={"jwk": json.loads(jwk.read_text())},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    show_answer(response)


@admin.command("retire-key")
def retire_key(
    office: Annotated[str, typer.Option()],
    kid: Annotated[str, typer.Option()],
    url: Url = DEFAULT_INTAKE,
    token: Token = None,
) -> None:
    """Retire an office key: it verifies only documents signed before now."""
    if not token:
        fail("an admin token is needed: --token or SIAPNET_TOKEN")
    response = httpx.post(
        f"{url.rstrip('/')}/v1/offices/{office}/keys/{kid}/retire",
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    show_answer(response)


@audit.command("verify")
def audit_verify(
    database_url: Annotated[
        str,
        typer.Option(
            envvar="SIAPNET_AUDIT_DATABASE_URL",
            help="the service's database (sqlite:///… or postgresql://…)",
            show_default=False,
        ),
    ],
) -> None:
    """Check a service's hash-chained evidence log and name the first broken link."""
    url = make_url(normalise_url(database_url))
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        fail(f"no SQLite database at {url.database!r}")  # make_engine would create an empty one
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            check = audit_log.check_chain(session)
    except SQLAlchemyError as exc:
        fail(f"cannot read the audit log: {exc.args[0] if exc.args else type(exc).__name__}")
    else:
        if check.broken is not None:
            fail(f"audit chain broken at entry {check.broken.entry_id}: {check.broken.reason}")
        typer.secho(f"audit chain intact: {check.entries} entries", fg=typer.colors.GREEN)
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(app())

"""Operator commands: a service's hash-chained evidence log."""

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from shared import audit as audit_log
from shared.cli.connection import fail
from shared.db import make_engine, normalise_url

app = typer.Typer(help="Operator commands: a service's evidence log.", no_args_is_help=True)


@app.command("verify")
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

"""`siapnet`: the command-line client of the SIAPNET exchange.

`office` holds what an office does (keys, login, sign, submit, status, act, verify), `admin` the
operator's commands, `audit` the evidence-log check, and `connection` how all of them reach the
gateway.
"""

from shared.cli import admin, audit
from shared.cli.office import app

app.add_typer(admin.app, name="admin")
app.add_typer(audit.app, name="audit")

__all__ = ["app"]

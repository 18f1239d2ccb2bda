"""`python -m services.gateway` serves the gateway (HTTPS when a certificate is configured);
`python -m services.gateway migrate` only migrates; `python -m services.gateway create-admin
PASSWORD` makes the first administrator (`admin`, national office) of a fresh deployment."""

import sys

from services.gateway import accounts
from services.gateway.app import MIGRATIONS, create_app
from services.gateway.settings import GatewaySettings
from services.gateway.tls import ensure_local_tls
from shared import entrypoint, regions
from shared.db import Database


def main() -> None:
    settings = GatewaySettings()
    if sys.argv[1:2] == ["create-admin"] and len(sys.argv) == 3:
        database = Database(settings.database_url, MIGRATIONS)
        database.upgrade()
        with database.session() as session:
            accounts.create_account(
                session,
                username="admin",
                office_id=regions.NATIONAL_OFFICE,
                roles=["admin"],
                secret=sys.argv[2],
            )
        print("created the account admin (bawaslu-ri, admin)")
        return
    tls = {}
    migrating = sys.argv[1:] == ["migrate"]
    if settings.tls_local_ca_dir and not settings.tls_certificate and not migrating:
        local = ensure_local_tls(settings.tls_local_ca_dir, hostnames=tuple(settings.tls_hostnames))
        settings = settings.model_copy(
            update={"tls_certificate": local.certificate, "tls_private_key": local.private_key}
        )
    if settings.tls_certificate and settings.tls_private_key:
        tls = {
            "ssl_certfile": str(settings.tls_certificate),
            "ssl_keyfile": str(settings.tls_private_key),
        }
    entrypoint.run("gateway", settings, create_app, MIGRATIONS, **tls)


if __name__ == "__main__":
    main()

"""`python -m services.gateway` serves the gateway (HTTPS when a certificate is configured);
`python -m services.gateway migrate` only migrates."""

import sys

import uvicorn

from services.gateway.app import MIGRATIONS, create_app
from services.gateway.settings import GatewaySettings
from shared.db import Database
from shared.logs import configure_logging


def main() -> None:
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level)
    if sys.argv[1:] == ["migrate"]:
        Database(settings.database_url, MIGRATIONS).upgrade()
        return
    tls = {}
    if settings.tls_certificate and settings.tls_private_key:
        tls = {
            "ssl_certfile": str(settings.tls_certificate),
            "ssl_keyfile": str(settings.tls_private_key),
        }
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        server_header=False,
        **tls,
    )


if __name__ == "__main__":
    main()

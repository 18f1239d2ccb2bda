"""The container's health: the service answers /healthz on its own port (HTTPS for the gateway
when it has a certificate)."""

import os
import ssl
import sys
import urllib.request

service = os.environ.get("SERVICE", "")
prefix = f"SIAPNET_{service.upper()}_"
port = os.environ.get(prefix + "PORT", "8000")
secure = service == "gateway" and (
    os.environ.get(prefix + "TLS_CERTIFICATE") or os.environ.get(prefix + "TLS_LOCAL_CA_DIR")
)
url = f"{'https' if secure else 'http'}://127.0.0.1:{port}/healthz"
context = ssl._create_unverified_context() if secure else None  # our own loopback, by name
try:
    with urllib.request.urlopen(url, timeout=2, context=context) as answer:
        sys.exit(0 if answer.status == 200 else 1)
except OSError:
    sys.exit(1)

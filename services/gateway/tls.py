"""A local certificate authority and a server certificate for running the gateway over HTTPS on
one machine (`make run`). Deployments bring certificates of their own.

Made once and reused: the CA lives ten years, the server certificate one year (renewed here when
it has less than 30 days left), both P-256 keys written mode 0600.
"""

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shared.signing import write_secret

NAMES = ("localhost",)
ADDRESSES = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class LocalTLS:
    ca_certificate: Path
    certificate: Path
    private_key: Path


def ensure_local_tls(directory: Path, *, hostnames: tuple[str, ...] = NAMES) -> LocalTLS:
    directory.mkdir(parents=True, exist_ok=True)
    paths = LocalTLS(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    ca_key_path = directory / "ca-key.pem"
    if paths.ca_certificate.exists() and ca_key_path.exists():
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), None)
        ca = x509.load_pem_x509_certificate(paths.ca_certificate.read_bytes())
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _ca_certificate(ca_key)
        _write_key(ca_key_path, ca_key)
        paths.ca_certificate.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    if not _fresh(paths.certificate):
        server_key = ec.generate_private_key(ec.SECP256R1())
        certificate = _server_certificate(server_key, ca, ca_key, hostnames)  # type: ignore[arg-type]
        _write_key(paths.private_key, server_key)
        paths.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return paths


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _fresh(path: Path) -> bool:
    if not path.exists():
        return False
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    return certificate.not_valid_after_utc - _now() > datetime.timedelta(days=30)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_secret(path, pem)


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SIAPNET local development"),
            x509.NameAttribute(NameOID.COMMON_NAME, "SIAPNET local CA"),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _server_certificate(
    key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    hostnames: tuple[str, ...],
) -> x509.Certificate:
    alternative_names = [x509.DNSName(name) for name in hostnames] + [
        x509.IPAddress(ipaddress.ip_address(address)) for address in ADDRESSES
    ]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

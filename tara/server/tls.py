"""A self-signed certificate for LAN use: browsers give the microphone only to secure origins.

Made once with ``cryptography`` and kept in the data dir; made again when it is about to expire or
when this machine has an address the certificate does not name (a new Wi-Fi network).
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 825  # the longest validity Apple platforms accept for a TLS certificate
RENEW_BEFORE = datetime.timedelta(days=30)


def certificate_paths(data_dir: Path) -> tuple[Path, Path]:
    folder = data_dir / "tls"
    return folder / "cert.pem", folder / "key.pem"


def ensure_certificate(data_dir: Path, addresses: list[str]) -> tuple[Path, Path]:
    """Return (cert, key) paths, creating or renewing a self-signed pair that names ``addresses``."""
    cert_path, key_path = certificate_paths(data_dir)
    if cert_path.exists() and key_path.exists() and _still_good(cert_path, addresses):
        return cert_path, key_path
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.DNSName(socket.gethostname())]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in sorted({"127.0.0.1", *addresses})]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tara (self-signed)")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _still_good(cert_path: Path, addresses: list[str]) -> bool:
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        named = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    if certificate.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc) < RENEW_BEFORE:
        return False
    known = {str(ip) for ip in named.get_values_for_type(x509.IPAddress)}
    return set(addresses) <= known


def server_context(cert_path: str | Path, key_path: str | Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context

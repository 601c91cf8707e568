"""TLS material for the server: the self-signed certificate, fingerprints, context options.

On first start a server without an operator certificate makes an ECDSA P-256 key and a
self-signed certificate in its data dir (key mode 0600).  Clients pin its SHA-256
fingerprint on first use, so the fingerprint is logged at every start for users to compare.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import crypto
from twisted.internet import ssl
from twisted.internet.ssl import TLSVersion

from pychat.durable import write_atomic

#: Ten years: a self-signed certificate is trusted by pin, not by date, and every expiry
#: would make every client shout "certificate changed".
SELF_SIGNED_LIFETIME = datetime.timedelta(days=3650)

CERT_FILE = "tls-cert.pem"
KEY_FILE = "tls-key.pem"


class TLSConfigError(Exception):
    """The certificate or key cannot be used; the message names the file and the cause."""


@dataclass(frozen=True)
class ServerCredentials:
    """The server's certificate chain and key, in PEM, and where they came from."""

    cert_pem: bytes
    key_pem: bytes
    cert_path: Path
    generated: bool

    @property
    def fingerprint(self) -> str:
        """SHA-256 fingerprint of the leaf certificate (see :func:`certificate_fingerprint`)."""
        return certificate_fingerprint(self.cert_pem)


def certificate_fingerprint(cert_pem_or_der: bytes) -> str:
    """SHA-256 over the DER certificate, as colon-separated upper-case hex pairs.

    The same text ``openssl x509 -noout -fingerprint -sha256`` prints, so a user can check it
    with standard tools.
    """
    if cert_pem_or_der.lstrip().startswith(b"-----BEGIN"):
        cert = x509.load_pem_x509_certificate(cert_pem_or_der)
        der = cert.public_bytes(serialization.Encoding.DER)
    else:
        der = cert_pem_or_der
    digest = hashes.Hash(hashes.SHA256())
    digest.update(der)
    return ":".join(f"{b:02X}" for b in digest.finalize())


def make_self_signed(hostname: str | None = None) -> tuple[bytes, bytes]:
    """A new ECDSA P-256 key and a self-signed certificate for it, both PEM.

    The certificate names the host, ``localhost`` and the loopback addresses, so it also
    passes hostname checks for local use.
    """
    host = hostname or socket.gethostname() or "localhost"
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"pyChat server {host}"[:64])])
    now = datetime.datetime.now(datetime.UTC)
    dns_names = sorted({host, "localhost"})
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    alt_names += [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + SELF_SIGNED_LIFETIME)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TLSConfigError(f"cannot read TLS {what} {path}: {exc.strerror}") from None


def load_or_create_credentials(
    data_dir: Path, cert_path: Path | None = None, key_path: Path | None = None
) -> ServerCredentials:
    """The operator's certificate and key if given, else the self-signed pair in ``data_dir``.

    The self-signed pair is made on first use; an existing one is never replaced, because
    every client has pinned it.

    :raises TLSConfigError: a file is missing, unreadable or not a matching certificate/key.
    """
    generated = False
    if cert_path is None or key_path is None:
        cert_path, key_path = data_dir / CERT_FILE, data_dir / KEY_FILE
        if not cert_path.exists() and not key_path.exists():
            cert_pem, key_pem = make_self_signed()
            write_atomic(key_path, key_pem, mode=0o600)
            write_atomic(cert_path, cert_pem, mode=0o644)
            generated = True
    cert_pem = _read(cert_path, "certificate")
    key_pem = _read(key_path, "key")
    creds = ServerCredentials(cert_pem, key_pem, cert_path, generated)
    server_options(creds)  # fail now, with the file names, rather than at the first handshake
    return creds


def server_options(creds: ServerCredentials) -> ssl.CertificateOptions:
    """Twisted TLS options for serving with ``creds``: TLS 1.2 minimum, 1.3 preferred.

    :raises TLSConfigError: the PEM data does not load or the key does not match.
    """
    try:
        certs = x509.load_pem_x509_certificates(creds.cert_pem)
    except ValueError as exc:
        raise TLSConfigError(f"{creds.cert_path} is not a PEM certificate: {exc}") from None
    try:
        key = crypto.load_privatekey(crypto.FILETYPE_PEM, creds.key_pem)
    except crypto.Error as exc:
        raise TLSConfigError(f"the TLS key for {creds.cert_path} does not load: {exc}") from None
    leaf, *chain = (crypto.X509.from_cryptography(c) for c in certs)
    options = ssl.CertificateOptions(
        privateKey=key,
        certificate=leaf,
        extraCertChain=chain or None,
        raiseMinimumTo=TLSVersion.TLSv1_2,
    )
    try:
        options.getContext()  # checks that the key matches the certificate
    except Exception as exc:
        raise TLSConfigError(
            f"the TLS key does not match the certificate {creds.cert_path}: {exc}"
        ) from None
    return options

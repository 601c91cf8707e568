"""``--ca``: the client verifies the server against a CA (and its name) instead of pinning."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pychat.client.address import ServerAddress
from pychat.client.session import ChatClient, ClientError
from pychat.testing import start_server


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(tmp: Path, label: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"test CA {label}"))
        .issuer_name(_name(f"test CA {label}"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp / f"ca-{label}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


def _server_cert(
    tmp: Path, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, host: str
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "server.pem", tmp / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest_twisted.ensureDeferred
async def test_a_ca_signed_server_is_verified_and_nothing_is_pinned(tmp_path: Path) -> None:
    ca_key, ca_cert, ca_path = _ca(tmp_path, "good")
    _, _, other_ca = _ca(tmp_path, "other")
    cert, key = _server_cert(tmp_path, ca_key, ca_cert, "localhost")
    server = await start_server(tmp_path / "data", tls_cert=cert, tls_key=key)
    try:
        home = tmp_path / "home"
        good = ChatClient(ServerAddress("localhost", server.port), home, ca=ca_path)
        await good.connect()
        assert good.hello()["protocol"] == 1
        await good.close()
        assert not (home / "known_servers.json").exists()

        wrong_ca = ChatClient(ServerAddress("localhost", server.port), home, ca=other_ca)
        with pytest.raises(ClientError, match="cannot connect"):
            await wrong_ca.connect()
        wrong_name = ChatClient(ServerAddress("127.0.0.1", server.port), home, ca=ca_path)
        with pytest.raises(ClientError, match="cannot connect"):
            await wrong_name.connect()  # the certificate names localhost, not 127.0.0.1
    finally:
        await server.stop()

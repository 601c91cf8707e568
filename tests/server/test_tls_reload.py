"""SIGHUP makes a running server serve a renewed certificate to new connections, without
dropping the connections it has; a certificate that does not load leaves the old one."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from twisted.internet import reactor, task
from twisted.internet.endpoints import SSL4ClientEndpoint, connectProtocol
from twisted.internet.ssl import CertificateOptions

from pychat.client.protocol import ClientProtocol
from pychat.tls import make_self_signed
from tests.process_helpers import ServerProcess


async def _client(port: int) -> ClientProtocol:
    endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", port, CertificateOptions())
    proto: ClientProtocol = await connectProtocol(endpoint, ClientProtocol())
    await proto.request("hello", version=1)
    return proto


def _served(proto: ClientProtocol) -> bytes:
    """The DER of the certificate the server showed this connection."""
    peer = proto.transport.getPeerCertificate()  # type: ignore[union-attr]
    return peer.to_cryptography().public_bytes(Encoding.DER)  # type: ignore[no-any-return]


def _der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)


async def _log_says(server: ServerProcess, text: str) -> None:
    for _ in range(500):
        if text in server.log.read_text(errors="replace"):
            return
        await task.deferLater(reactor, 0.02, lambda: None)
    raise AssertionError(f"the server never logged {text!r}:\n{server.log.read_text()}")


@pytest_twisted.ensureDeferred
async def test_sighup_serves_a_renewed_certificate_and_keeps_open_connections(
    tmp_path: Path,
    processes: list[ServerProcess],
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    old_cert, old_key = make_self_signed("chat.example.org")
    cert.write_bytes(old_cert)
    key.write_bytes(old_key)
    server = ServerProcess(tmp_path / "data", "--tls-cert", str(cert), "--tls-key", str(key))
    processes.append(server)
    port = await server.started()
    before = await _client(port)
    assert _served(before) == _der(old_cert)

    new_cert, new_key = make_self_signed("chat.example.org")
    cert.write_bytes(new_cert)
    key.write_bytes(new_key)
    server.proc.send_signal(signal.SIGHUP)
    await _log_says(server, "reloaded the TLS certificate")
    after = await _client(port)
    assert _served(after) == _der(new_cert)  # a new connection sees the renewed certificate
    assert "time" in await before.request("ping")  # and the old connection is still up
    assert server.proc.poll() is None

    cert.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n")
    server.proc.send_signal(signal.SIGHUP)
    await _log_says(server, "the old one stays")
    again = await _client(port)
    assert _served(again) == _der(new_cert)  # a broken renewal changes nothing
    for proto in (before, after, again):
        proto.close()

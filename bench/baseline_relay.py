"""The yardstick for the relay benchmark: a bare Twisted TLS line relay, nothing more.

    python -m bench.baseline_relay CERT KEY PORTFILE

A client's first line is its name; every later line is ``TO SEQ PAYLOAD``: the relay writes
``SEQ PAYLOAD`` to the connection called ``TO`` and ``ack SEQ`` back to the sender.  No
accounts, no storage, no fsync, no JSON: what pyChat costs beyond this is what it does.
It listens on 127.0.0.1 on an ephemeral port and writes the port number to PORTFILE.
"""

from __future__ import annotations

import sys
from pathlib import Path

from twisted.internet import reactor, ssl
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver


class Relay(LineReceiver):
    delimiter = b"\n"
    MAX_LENGTH = 65536

    def __init__(self, peers: dict[bytes, Relay]) -> None:
        self.peers = peers
        self.name: bytes | None = None

    def connectionMade(self) -> None:
        self.transport.setTcpNoDelay(True)  # type: ignore[union-attr]

    def lineReceived(self, line: bytes) -> None:
        if self.name is None:
            self.name = line
            self.peers[line] = self
            return
        to, seq, payload = line.split(b" ", 2)
        target = self.peers.get(to)
        if target is not None:
            target.sendLine(seq + b" " + payload)
        self.sendLine(b"ack " + seq)

    def connectionLost(self, reason: object = None) -> None:
        if self.name is not None:
            self.peers.pop(self.name, None)


def main() -> None:
    cert_path, key_path, port_file = sys.argv[1:4]
    cert = ssl.PrivateCertificate.loadPEM(Path(cert_path).read_text() + Path(key_path).read_text())
    peers: dict[bytes, Relay] = {}
    factory = Factory.forProtocol(lambda: Relay(peers))
    port = reactor.listenSSL(0, factory, cert.options(), interface="127.0.0.1")  # type: ignore[attr-defined]
    Path(port_file).write_text(str(port.getHost().port))
    reactor.run()


if __name__ == "__main__":
    main()

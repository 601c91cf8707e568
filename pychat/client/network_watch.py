"""Noticing that the network changed, so reconnecting need not wait out its backoff.

The sign is the local address the kernel would send from to reach the server (a UDP socket's
``connect`` is a route lookup: nothing is sent): it changes when the machine joins another
network, gets a new address, or a VPN comes up, and the lookup fails while there is no route
at all.  The server's address is the one the last connection reached, so no name is resolved
(which could block while the network is down).
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address

#: What :meth:`RouteWatch.route` says while there is no route to the server.
NO_ROUTE = "no route"


def route_source(host: str, port: int) -> str:
    """The local address a packet to ``(host, port)`` would leave from, or :data:`NO_ROUTE`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((host, port))
            return str(probe.getsockname()[0])
    except OSError:
        return NO_ROUTE


class RouteWatch:
    """The route to the server the client last reached."""

    def __init__(self) -> None:
        self._peer: tuple[str, int] | None = None

    def remember(self, transport: Any) -> None:
        """Note the server's address from a connected transport (an in-memory one has none)."""
        peer = getattr(transport, "getPeer", lambda: None)()
        if isinstance(peer, IPv4Address | IPv6Address) and peer.type == "TCP":
            self._peer = (peer.host, peer.port)

    def route(self) -> str | None:
        """The current route's local address (None before any connection)."""
        return route_source(*self._peer) if self._peer is not None else None

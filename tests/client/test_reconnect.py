"""Reconnecting: the backoff, and starting it afresh when the network changes."""

from __future__ import annotations

from pathlib import Path

import pytest_twisted
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from pychat.client.network_watch import NO_ROUTE, RouteWatch, route_source
from pychat.client.reconnect import ROUTE_CHECK_INTERVAL
from pychat.crypto.kdf import minimum_params
from pychat.testing import MemoryServer
from tests.client_helpers import Outage


def test_the_route_to_a_loopback_server_leaves_from_loopback() -> None:
    assert route_source("127.0.0.1", 8765) == "127.0.0.1"
    assert route_source("not an address", 8765) == NO_ROUTE


def test_the_watch_remembers_the_server_a_tcp_connection_reached() -> None:
    watch = RouteWatch()
    assert watch.route() is None  # never connected: nothing to watch
    watch.remember(object())  # an in-memory connection has no address
    assert watch.route() is None
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 8765))
    watch.remember(transport)
    assert watch.route() == "127.0.0.1"


@pytest_twisted.ensureDeferred
async def test_a_network_change_ends_a_long_backoff_at_once(tmp_path: Path) -> None:
    memory = MemoryServer(tmp_path / "data")
    outage = Outage(memory)
    alice = outage.client(tmp_path / "alice")
    await alice.signup("alice", "pw", kdf=minimum_params())
    await alice.login("alice", "pw")
    route = ["192.0.2.10"]
    alice.connection.link.watch.route = lambda: route[0]  # type: ignore[method-assign]
    outage.go_down()
    for wait in (1, 2, 4, 8):  # four failed tries: the next one is 16 s away
        memory.advance(wait)
    assert alice.connection.state == "reconnecting"
    outage.down = False
    memory.advance(ROUTE_CHECK_INTERVAL)
    assert alice.connection.state == "reconnecting"  # the same network: the backoff goes on
    route[0] = "198.51.100.7"  # joined another network
    memory.advance(ROUTE_CHECK_INTERVAL)
    assert alice.connection.state == "online"  # long before the 16 s were up

"""Who is online, and telling conversation peers when that changes.

A user is online while at least one connection is logged in as them.  Their conversation
peers get ``presence`` pushes when the first connection opens and when the last one closes,
unless the user has turned sharing off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from twisted.logger import Logger

from pychat.server.ops import OpContext
from pychat.wire.envelope import encode_event
from pychat.wire.shapes import PresencePush

log = Logger(namespace="pychat.presence")


class Presence:
    """The logged-in connections of every user, and the pushes that follow from them.

    :param peers_of: the usernames that share a conversation with a user.
    :param shares: whether a user shares their presence.
    """

    def __init__(
        self, peers_of: Callable[[str], Iterable[str]], shares: Callable[[str], bool]
    ) -> None:
        self._peers_of = peers_of
        self._shares = shares
        self.connections: dict[str, set[OpContext]] = {}

    def is_online(self, username: str) -> bool:
        """Whether the user has a logged-in connection (regardless of sharing)."""
        return bool(self.connections.get(username))

    def visible_online(self, username: str) -> bool | None:
        """What peers may see: online or not, or None when the user does not share it."""
        if not self._shares(username):
            return None
        return self.is_online(username)

    def push_to_user(
        self,
        username: str,
        event: str,
        payload: Mapping[str, Any],
        *,
        skip: OpContext | None = None,
    ) -> int:
        """Push to every connection of ``username`` except ``skip``; return how many."""
        return self.push_to_users((username,), event, payload, skip=skip)

    def push_to_users(
        self,
        usernames: Iterable[str],
        event: str,
        payload: Mapping[str, Any],
        *,
        skip: OpContext | None = None,
    ) -> int:
        """Push to every connection of each of ``usernames`` except ``skip``, encoding the
        push once however many connections it goes to (none if nobody is there); return
        how many."""
        targets = self._connections_of(usernames, skip)
        if targets:
            line = encode_event(event, payload)
            for conn in targets:
                conn.push_line(line)
        return len(targets)

    def push_line_to_users(
        self, usernames: Iterable[str], line: bytes, *, skip: OpContext | None = None
    ) -> int:
        """Push the encoded ``line`` to every connection of each of ``usernames`` except
        ``skip``; return how many."""
        targets = self._connections_of(usernames, skip)
        for conn in targets:
            conn.push_line(line)
        return len(targets)

    def _connections_of(self, usernames: Iterable[str], skip: OpContext | None) -> list[OpContext]:
        """Every connection of ``usernames`` but ``skip``, listed before any is pushed to (a
        push may close one)."""
        return [
            conn
            for username in usernames
            for conn in self.connections.get(username, ())
            if conn is not skip
        ]

    def announce(self, username: str, online: bool) -> None:
        """Tell ``username``'s peers that they came or went (if they share presence)."""
        if not self._shares(username):
            return
        for peer in self._peers_of(username):
            event: PresencePush = {"user": username, "online": online}
            self.push_to_user(peer, "presence", event)

    def logged_in(self, conn: OpContext, username: str) -> None:
        """``conn`` is now logged in as ``username``."""
        first = not self.connections.get(username)
        self.connections.setdefault(username, set()).add(conn)
        if first:
            self.announce(username, True)

    def logged_out(self, conn: OpContext, username: str) -> None:
        """``conn`` is no longer logged in as ``username``."""
        conns = self.connections.get(username)
        if conns is None or conn not in conns:
            return
        conns.discard(conn)
        if not conns:
            del self.connections[username]
            self.announce(username, False)

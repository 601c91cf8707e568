"""Who is online, and telling conversation peers when that changes.

A user is online while at least one connection is logged in as them, on this node or on
another sharing the database.  Their conversation peers get ``presence`` pushes when the first
connection opens and when the last one closes, unless the user has turned sharing off.

With other nodes (:mod:`pychat.server.cluster`), pushes go to them too (``publish``), and what
they say of their own logins comes in through :meth:`Presence.node_says`; each node tells its
own connections when a user's presence changes.
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
        #: Username -> the other nodes where they are logged in.
        self._elsewhere: dict[str, set[str]] = {}
        #: Node -> the users logged in there.
        self._by_node: dict[str, set[str]] = {}
        #: Tells the other nodes an event (set when the server shares a database with them).
        self.publish: Callable[[dict[str, Any]], None] | None = None

    def is_online(self, username: str) -> bool:
        """Whether the user has a logged-in connection here or on another node (regardless
        of sharing)."""
        return bool(self.connections.get(username)) or bool(self._elsewhere.get(username))

    def here(self) -> list[str]:
        """The users logged in on this node."""
        return sorted(self.connections)

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
        """Push to every connection of each of ``usernames`` except ``skip``, here and on the
        other nodes; return how many here."""
        usernames = list(usernames)
        if self.publish is not None:
            self.publish({"k": "push", "to": usernames, "event": event, "payload": payload})
        return self.push_here(usernames, event, payload, skip=skip)

    def push_here(
        self,
        usernames: Iterable[str],
        event: str,
        payload: Mapping[str, Any],
        *,
        skip: OpContext | None = None,
    ) -> int:
        """Push to every connection of each of ``usernames`` on this node except ``skip``,
        encoding the push once however many connections it goes to (none if nobody is
        there); return how many."""
        targets = self._connections_of(usernames, skip)
        if targets:
            line = encode_event(event, payload)
            for conn in targets:
                conn.push_line(line)
        return len(targets)

    def push_line_to_users(
        self, usernames: Iterable[str], line: bytes, *, skip: OpContext | None = None
    ) -> int:
        """Push the encoded ``line`` to every connection of each of ``usernames`` on this
        node except ``skip``; return how many."""
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

    def announce(self, username: str, online: bool, *, everywhere: bool = False) -> None:
        """Tell ``username``'s peers on this node (on every node with ``everywhere``) that
        they came or went (if they share presence)."""
        if not self._shares(username):
            return
        event: PresencePush = {"user": username, "online": online}
        for peer in self._peers_of(username):
            if everywhere:
                self.push_to_user(peer, "presence", event)
            else:
                self.push_here((peer,), "presence", event)

    def logged_in(self, conn: OpContext, username: str) -> None:
        """``conn`` is now logged in as ``username``."""
        was_online = self.is_online(username)
        first_here = not self.connections.get(username)
        self.connections.setdefault(username, set()).add(conn)
        if first_here and self.publish is not None:
            self.publish({"k": "online", "user": username, "online": True})
        if not was_online:
            self.announce(username, True)

    def logged_out(self, conn: OpContext, username: str) -> None:
        """``conn`` is no longer logged in as ``username``."""
        conns = self.connections.get(username)
        if conns is None or conn not in conns:
            return
        conns.discard(conn)
        if not conns:
            del self.connections[username]
            if self.publish is not None:
                self.publish({"k": "online", "user": username, "online": False})
            if not self.is_online(username):
                self.announce(username, False)

    # -- what the other nodes say --------------------------------------------------------------

    def node_says(self, node: str, username: str, online: bool) -> None:
        """Another node says ``username`` logged in there (their first connection) or out
        (their last); peers here hear of it when the user's presence changed."""
        was_online = self.is_online(username)
        users = self._by_node.setdefault(node, set())
        nodes = self._elsewhere.setdefault(username, set())
        if online:
            users.add(username)
            nodes.add(node)
        else:
            users.discard(username)
            nodes.discard(node)
            if not nodes:
                del self._elsewhere[username]
        if self.is_online(username) != was_online:
            self.announce(username, not was_online)

    def node_has(self, node: str, usernames: set[str]) -> None:
        """Another node says exactly these users are logged in there (an empty set: the
        node has stopped or is silent)."""
        for username in self._by_node.get(node, set()) | usernames:
            self.node_says(node, username, username in usernames)
        if not usernames:
            self._by_node.pop(node, None)

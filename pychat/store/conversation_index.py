"""The conversations a store holds in memory, found by id, by pair and by member; and one
creation at a time per pair (two asked at once make one conversation).  What every backend
shares.  A group is found by id and by member (its members change: :meth:`regroup`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Generic, TypeVar

from twisted.internet import defer
from twisted.python.failure import Failure

from pychat.store.conversation import Conversation, pair

C = TypeVar("C", bound=Conversation)


class ConversationIndex(Generic[C]):
    """Conversations by id, pair and member."""

    def __init__(self) -> None:
        self._by_id: dict[str, C] = {}
        self._by_pair: dict[tuple[str, str], C] = {}
        self._by_user: dict[str, set[str]] = {}
        self._creating: dict[tuple[str, str], defer.Deferred[C]] = {}

    def add(self, conv: C) -> None:
        """Hold ``conv``."""
        self._by_id[conv.id] = conv
        if conv.group is None:
            self._by_pair[pair(*conv.members)] = conv
        for member in conv.members:
            self._by_user.setdefault(member, set()).add(conv.id)

    def remove(self, conv: Conversation) -> None:
        """Forget ``conv``."""
        self._by_id.pop(conv.id, None)
        if conv.group is None:
            self._by_pair.pop(pair(*conv.members), None)
        for member in conv.members:
            self._by_user.get(member, set()).discard(conv.id)

    def regroup(self, conv: Conversation, members: tuple[str, ...]) -> None:
        """A group's members are now ``members`` (found by their names from now on)."""
        for gone in set(conv.members) - set(members):
            self._by_user.get(gone, set()).discard(conv.id)
        conv.members = members
        for member in members:
            self._by_user.setdefault(member, set()).add(conv.id)

    def clear(self) -> None:
        """Forget every conversation."""
        self._by_id.clear()
        self._by_pair.clear()
        self._by_user.clear()

    def get(self, conversation_id: str) -> C | None:
        """The conversation with this id, or None."""
        return self._by_id.get(conversation_id)

    def find(self, a: str, b: str) -> C | None:
        """The conversation of the pair, or None."""
        return self._by_pair.get(pair(a, b))

    def for_user(self, username: str) -> list[C]:
        """The user's conversations, most recently active first."""
        convs = [self._by_id[i] for i in self._by_user.get(username, ())]
        return sorted(convs, key=lambda c: c.last_activity, reverse=True)

    def __iter__(self) -> Iterator[C]:
        return iter(list(self._by_id.values()))

    async def create_once(self, members: tuple[str, str], make: Callable[[], Awaitable[C]]) -> C:
        """``make()`` the pair's conversation, or wait for the one already being made.

        :raises ValueError: the pair has one already.
        """
        if members in self._by_pair:
            raise ValueError("conversation exists")
        if members in self._creating:  # the same pair, asked twice at once: one conversation
            return await _shared(self._creating[members])
        creating: defer.Deferred[C] = defer.ensureDeferred(_awaited(make()))
        self._creating[members] = creating
        try:
            return await _shared(creating)
        finally:
            self._creating.pop(members, None)
            creating.addErrback(lambda _: None)  # every waiter was told: handled


async def _awaited(work: Awaitable[C]) -> C:
    return await work


async def _shared(d: defer.Deferred[C]) -> C:
    """Await ``d`` without taking its result from its other waiters."""
    waiter: defer.Deferred[C] = defer.Deferred()

    def pass_on(result: C | Failure) -> C | Failure:
        if isinstance(result, Failure):
            waiter.errback(result)
        else:
            waiter.callback(result)
        return result  # for the next waiter

    d.addBoth(pass_on)
    return await waiter

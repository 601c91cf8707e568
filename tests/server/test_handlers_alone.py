"""Handlers are plain functions of (deps, ctx, params): each is called here alone, with fakes
for the parts of the server it uses, no connection and no reactor."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from pychat.server.handlers import conversation_ops, key_ops, session_ops
from pychat.server.handlers.common import HandlerDeps, NoParams
from pychat.server.session import Session
from pychat.store.conversation import Conversation
from pychat.wire.errors import ProtocolError


@dataclass
class FakeCtx:
    session: Session
    pushed: list[tuple[str, Any]] = field(default_factory=list)

    def push(self, event: str, payload: Any) -> None:
        self.pushed.append((event, payload))

    def push_line(self, line: bytes) -> None:
        message = json.loads(line)
        self.pushed.append((message.pop("event"), message))

    def close_after_reply(self) -> None: ...


class FakePresence:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    def push_to_user(self, user: str, event: str, payload: Any, skip: Any = None) -> None:
        self.sent.append((user, event, payload))

    def push_to_users(self, users: Any, event: str, payload: Any, skip: Any = None) -> None:
        for user in users:
            self.sent.append((user, event, payload))

    def visible_online(self, user: str) -> bool | None:
        return None


class FakeConversations:
    def __init__(self, convs: list[Conversation]) -> None:
        self.convs = convs

    def for_user(self, user: str) -> list[Conversation]:
        return [c for c in self.convs if user in c.members]

    def get(self, conv_id: str) -> Conversation | None:
        return next((c for c in self.convs if c.id == conv_id), None)


def deps(**parts: Any) -> HandlerDeps:
    defaults: dict[str, Any] = {
        "config": None, "clock": Clock(), "accounts": {}, "conversations": FakeConversations([]),
        "account_service": None, "presence": FakePresence(), "logged_in": None,
        "logged_out": None, "hello_fields": dict, "signup_gate": None, "recent_log": None,
        "files": None, "signal_limits": None, "ephemeral": None,
    }  # fmt: skip
    return HandlerDeps(**(defaults | parts))


def result(answer: Any) -> Any:
    """What a handler answered: at once (a plain handler) or from its coroutine."""
    if not inspect.iscoroutine(answer):
        return answer
    out: list[Any] = []
    defer.ensureDeferred(answer).addBoth(out.append)
    if isinstance(out[0], Failure):
        out[0].raiseException()
    return out[0]


def alice() -> FakeCtx:
    return FakeCtx(Session(peer="x", host="x", username="alice"))


def test_conversations_lists_only_the_callers_own() -> None:
    mine = Conversation("c1", ("alice", "bob"), 1.0)
    theirs = Conversation("c2", ("bob", "carol"), 1.0)
    reply = result(
        conversation_ops.conversations(
            deps(conversations=FakeConversations([mine, theirs])), alice(), NoParams()
        )
    )
    assert [c["peer"] for c in reply["conversations"]] == ["bob"]


def test_epochs_of_someone_elses_conversation_do_not_exist() -> None:
    theirs = Conversation("c2", ("bob", "carol"), 1.0)
    params = conversation_ops.ConversationParams(conversation="c2")
    with pytest.raises(ProtocolError) as info:
        result(
            conversation_ops.epochs(
                deps(conversations=FakeConversations([theirs])), alice(), params
            )
        )
    assert info.value.code == "unknown_conversation"


def test_get_keys_of_an_unknown_user() -> None:
    with pytest.raises(ProtocolError) as info:
        result(key_ops.get_keys(deps(), alice(), key_ops.UserParams(username="nobody")))
    assert info.value.code == "unknown_user"


def test_ping_reads_the_clock_it_is_given() -> None:
    clock = Clock()
    clock.advance(42)
    assert result(session_ops.ping(deps(clock=clock), alice(), session_ops.PingParams())) == {
        "time": 42
    }

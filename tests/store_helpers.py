"""Helpers for tests that drive the store directly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from pychat.server.chat import ChatServer
from pychat.server.config import ServerConfig
from pychat.store.accounts import Account
from pychat.store.blocking import inline_runner
from pychat.store.conversation import NewMessage
from pychat.store.conversation_files import LoggedConversation
from pychat.store.conversations import ConversationStore
from pychat.store.server_store import ServerStore
from pychat.wire.shapes import StoredMessage
from tests.accounts_helpers import login_sync, signup_fields
from tests.chat_helpers import envelope
from tests.helpers import FakeConn, connect

T = TypeVar("T")


def appended(
    conversations: Any,
    conv: Any,
    sender: str,
    epoch: int,
    ciphertext: str,
    client_id: str,
    now: float,
    extra: dict[str, Any] | None = None,
) -> Deferred[StoredMessage]:
    """Append a message through the store's one append call; fires with its record once it
    is durable (or fails if it never will be)."""
    durable: Deferred[StoredMessage] = Deferred()

    def landed(record: StoredMessage, error: BaseException | None) -> None:
        if error is None:
            durable.callback(record)
        else:
            durable.errback(error)

    message = NewMessage(sender, epoch, ciphertext, client_id, now, extra)
    conversations.append_message(conv, message, landed)
    return durable


def done(d: Deferred[T]) -> T:
    """The result of a Deferred that has already fired (the inline runner's work), or what
    it failed with, raised."""
    results: list[Any] = []

    def keep(result: Any) -> Any:
        results.append(result)
        return result

    d.addBoth(keep)  # the result stays for whoever else waits on ``d``
    assert results, "the Deferred has not fired"
    if isinstance(results[0], Failure):
        d.addErrback(lambda _: None)  # raised here: handled
        results[0].raiseException()
    result: T = results[0]
    return result


class HeldRunner:
    """A blocking runner that holds every job until the test releases it."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Callable[..., Any], tuple[Any, ...], defer.Deferred[Any]]] = []

    def __call__(self, f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.jobs.append((f, args, d))
        return d

    def release_one(self) -> None:
        f, args, d = self.jobs.pop(0)
        try:
            d.callback(f(*args))
        except Exception as exc:
            d.errback(exc)

    def release(self) -> None:
        while self.jobs:
            f, args, d = self.jobs.pop(0)
            try:
                d.callback(f(*args))
            except Exception as exc:
                d.errback(exc)


def server_on(data: Path, runner: Any = inline_runner) -> ChatServer:
    config = ServerConfig(data_dir=data)
    store = ServerStore.open(data, config.store_key_path, runner)
    return ChatServer(config, MemoryReactorClock(), store)


def logged_in(server: ChatServer, name: str, port: int) -> FakeConn:
    conn = connect(server, port=port)
    assert conn.request("hello", version=1)["ok"]
    assert conn.request("signup", **signup_fields(name, "pw"))["ok"]
    assert login_sync(conn, name, "pw")["ok"]
    return conn


def pair(server: ChatServer) -> tuple[FakeConn, FakeConn, str]:
    alice, bob = logged_in(server, "alice", 40001), logged_in(server, "bob", 40002)
    reply = alice.request("open_conversation", peer="bob", envelope=envelope())
    assert reply["ok"], reply
    return alice, bob, reply["conversation"]


def send(conn: FakeConn, conv: str, text: str, client_id: str) -> dict[str, Any]:
    return conn.request("send", conversation=conv, epoch=1, ciphertext=text, client_id=client_id)


def crash_and_reopen(server: ChatServer, data: Path) -> list[str]:
    """Drop the server without a clean stop (the files are as a SIGKILL leaves them), start
    a new one on the same data dir, and return the stored ciphertexts in order."""
    for conv in server.store.logs:
        conv.messages.close()
        conv.control.close()
    again = server_on(data)
    (conv,) = list(again.store.logs)
    records = conv.messages.read_range(0, conv.last_seq)
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    return [r["ciphertext"] for r in records]


def account_named(name: str = "alice") -> Account:
    return Account(
        username=name,
        salt="c2FsdHNhbHRzYWx0c2FsdA==",
        verifier="AQID",
        kdf={"name": "argon2id", "time_cost": 2, "memory_kib": 19456, "parallelism": 1},
        public_keys={"encryption": "x", "signing": "y"},
        created=1.0,
        updated=1.0,
    )


def held_store(data: Path) -> tuple[ConversationStore, HeldRunner, LoggedConversation]:
    """A store whose blocking work waits for the test, with alice and bob's conversation."""
    runner = HeldRunner()
    conversations = ServerStore.open(data, data / "store.key", runner).conversations
    assert isinstance(conversations, ConversationStore)
    store = conversations
    created = defer.ensureDeferred(store.create("alice", "bob", envelope(), 1.0))
    runner.release()
    return store, runner, done(created)

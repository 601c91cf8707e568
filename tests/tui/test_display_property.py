"""Property: whatever a peer or server sends, the client shows it without raising, hanging,
or letting a raw control character reach the terminal.

Bodies are signed and sealed the way a hostile peer could (any code point, lone surrogates
too), then go through the client core's checks, the CLI's ``read`` output, and the TUI's
renderer and curses view; arbitrary push events go through the client's push handling.
"""

from __future__ import annotations

import base64
import itertools
import json
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import defer
from twisted.python.failure import Failure

from pychat.client.address import ServerAddress
from pychat.client.cli import format_message
from pychat.client.keystore import KeystoreData
from pychat.client.protocol import ConnectionClosed
from pychat.client.session import ChatClient, ChatMessage
from pychat.crypto.identity import IdentityKeyPair
from pychat.text.safe import json_line
from pychat.tui.model import ChatModel, MessageItem
from pychat.tui.render import render_main
from pychat.tui.view import CursesView
from pychat.wire.ids import conversation_id

CONV = conversation_id("dave", "erin")
KEY = Fernet.generate_key()
_sequence = itertools.count(1)
# Terminal-active characters other than the newline the client writes itself.
RAW = {chr(c) for c in range(0x20) if c != 0x0A} | {chr(c) for c in range(0x7F, 0xA0)}
RAW |= {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"}


@cache
def keys() -> tuple[IdentityKeyPair, IdentityKeyPair]:
    return IdentityKeyPair.generate(), IdentityKeyPair.generate()


def client() -> ChatClient:
    dave, erin = keys()
    c = ChatClient(ServerAddress("127.0.0.1", 1), Path("/nonexistent"))
    fp = dave.public().fingerprint()
    c.username = "erin"
    c.data = KeystoreData(
        server="127.0.0.1:1",
        username="erin",
        identities=[erin],
        conversation_keys={CONV: {"1": KEY.decode()}},
        pins={
            "dave": {
                "fingerprint": fp,
                "key_version": 1,
                "verified": False,
                "accepted": {fp: dave.public().to_json()},
                "pending": None,
            }
        },
    )
    return c


def hostile_ciphertext(body: str, when: Any) -> str:
    """What a modified client could send: JSON may carry lone surrogates as escapes."""
    dave, _ = keys()
    inner = {
        "v": 1,
        "sender": "dave",
        "device": "d1",
        "recipient": "erin",
        "conversation": CONV,
        "epoch": 1,
        "counter": next(_sequence),
        "time": when,
        "body": body,
    }
    signed = json.dumps(inner, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    sig = dave.signing.sign(signed.encode("utf-8", "surrogatepass"))
    outer = {"m": inner, "sig": base64.b64encode(sig).decode()}
    return Fernet(KEY).encrypt(json.dumps(outer).encode()).decode()


def run_now(coro: Any) -> Any:
    """Run a coroutine that must finish without the network; a pending one is a hang."""
    results: list[Any] = []
    defer.ensureDeferred(coro).addBoth(results.append)
    assert results, "the client waited for something: a hang"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


class RecordingScreen:
    """Stands in for a curses window and checks what would be written to the terminal."""

    def __init__(self) -> None:
        self.written: list[str] = []

    def erase(self) -> None: ...
    def refresh(self) -> None: ...
    def move(self, y: int, x: int) -> None: ...
    def getmaxyx(self) -> tuple[int, int]:
        return 24, 80

    def addstr(self, y: int, x: int, text: str, attr: int) -> None:
        assert "\x00" not in text
        self.written.append(text)


any_char = st.characters(exclude_categories=())
bodies = st.one_of(
    st.text(any_char, max_size=200),
    st.builds(lambda s, n: s * n, st.text(any_char, min_size=1, max_size=8), st.integers(0, 3000)),
    st.sampled_from(["", "\x00", "\x1b[2J\x1b]0;x\x07", "a\nb\r\nc", "\ud800", "\u202e"]),
)
times = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70), st.text()
)


def _shown(message: ChatMessage) -> None:
    line = format_message(message)
    assert not RAW & set(line), repr(line)
    line.encode("utf-8")  # nothing unencodable reaches stdout
    exact = json_line(message.to_json())
    assert not RAW & set(exact)
    assert json.loads(exact) == message.to_json()
    model = ChatModel()
    model.me = "erin"
    model.add_message(
        "dave",
        MessageItem(
            message.seq, message.sender, message.time, message.status, message.text, message.reason
        ),
        on_screen=True,
    )
    model.select("dave")
    for width, height in ((80, 24), (41, 9)):
        frame = render_main(model, width, height, now=0.0)
        assert not RAW & set(frame.text())
    screen = RecordingScreen()
    CursesView(screen, colours=False).draw(render_main(model, 80, 24, now=0.0))  # type: ignore[arg-type]
    assert not RAW & set("".join(screen.written))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, when=times)
def test_any_message_body_is_checked_and_shown_safely(body: str, when: Any) -> None:
    c = client()
    seq = next(_sequence)
    message = {
        "conversation": CONV,
        "seq": seq,
        "sender": "dave",
        "time": 1.0,
        "epoch": 1,
        "ciphertext": hostile_ciphertext(body, when),
    }
    shown = run_now(c.messaging.decrypt("dave", message))
    valid_time = isinstance(when, int | float) and 0 <= when <= 253402300799
    if not any("\ud800" <= ch <= "\udfff" for ch in body) and valid_time:
        assert shown.status == "verified" and shown.text == body
    else:
        assert shown.status == "rejected"
    _shown(shown)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(any_char, max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
events = st.fixed_dictionaries(
    {
        "event": st.one_of(
            st.sampled_from(["message", "keys_changed", "presence", "read", "closing"]),
            json_values,
        )
    },
    optional={
        k: json_values
        for k in ("sender", "conversation", "seq", "time", "epoch", "ciphertext", "user")
    },
)


@settings(max_examples=80, deadline=None)
@given(event=events)
def test_any_push_event_is_handled_without_an_escaping_exception(event: dict[str, Any]) -> None:
    c = client()
    seen: list[Any] = []
    c.listeners.append(seen.append)
    try:
        run_now(c.pushes.handle(event))
    except ConnectionClosed:
        pass  # it needed the server (a key lookup); with no connection that is the answer
    for e in seen:
        if e.message is not None:
            _shown(e.message)


@settings(max_examples=60, deadline=None)
@given(peer=st.text(any_char, min_size=1, max_size=40), notice=st.text(any_char, max_size=80))
def test_names_and_notices_from_the_server_are_drawn_safely(peer: str, notice: str) -> None:
    """A hostile server names peers in the conversation list and words error notices."""
    model = ChatModel()
    model.me, model.server = "erin", "127.0.0.1:1"
    model.conversation(peer)
    model.conversation("dave")
    model.select("dave")
    model.tell(notice, error=True)
    frame = render_main(model, 100, 30, now=0.0)
    assert not RAW & set(frame.text()), repr(frame.text())

"""``whatdoyouknow``: the server reports what it holds about the logged-in user, and only
about them; the client shows the report safely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytest_twisted

from pychat.client.report import report_lines
from pychat.testing import RunningServer
from tests.client_helpers import signed_up


@pytest.fixture
def server(server_on_each_backend: RunningServer) -> RunningServer:
    """The report is the same on both backends."""
    return server_on_each_backend


@pytest_twisted.ensureDeferred
async def test_the_report_holds_the_account_keys_conversations_sessions_and_log(
    server: RunningServer, tmp_path: Path
) -> None:
    alice = await signed_up(server, tmp_path / "alice", "alice")
    bob = await signed_up(server, tmp_path / "bob", "bob")
    carol = await signed_up(server, tmp_path / "carol", "carol")
    await alice.send("bob", "hello")
    await alice.send("bob", "again")
    await bob.send("carol", "alice does not see this conversation")
    await alice.rotate_identity()
    report = await alice.request("whatdoyouknow")

    account = report["account"]
    assert account["username"] == "alice" and account["key_version"] == 2
    stored = server.chat.store.accounts.get("alice")
    assert stored is not None
    assert stored.verifier not in json.dumps(report)  # the verifier itself is never shown
    assert account["srp_verifier"].endswith("bits (not shown)")
    assert [k["key_version"] for k in report["key_history"]] == [1, 2]
    assert report["key_history"][1]["signed_by_previous"] is True
    (conv,) = report["conversations"]  # bob and carol's conversation is not alice's business
    assert conv["peer"] == "bob" and conv["messages"] == 2 and conv["stored_bytes"] > 0
    (session,) = report["sessions"]
    assert session["this_one"] is True and session["client"] == "pychat"
    texts = [line["text"] for line in report["log"]]
    me = report["log_name"]
    assert me.startswith("user-") and "alice" not in me
    assert any(me in t and "logged in" in t for t in texts), texts
    assert all(me in t for t in texts)  # only lines about alice
    carol_in_log = server.chat.account_service.log_name("carol")
    assert not any(carol_in_log in t for t in texts)

    lines = report_lines(report, "127.0.0.1")
    assert lines[0].startswith("What 127.0.0.1 knows about alice")
    assert "Conversations (1)" in lines
    # A group: the server knows its members, admins, name and changes, and says so.
    group = await bob.groups.create("Book club", ["alice", "carol"])
    await carol.groups.send(group, "hi")
    report = await alice.request("whatdoyouknow")
    (told,) = [c for c in report["conversations"] if c.get("group")]
    assert (told["members"], told["admins"], told["group_name"]) == (
        ["alice", "bob", "carol"],
        ["bob"],
        "Book club",
    )
    assert told["messages"] == 1 and told["statements"] == 1
    lines = report_lines(report, "127.0.0.1")
    assert any("group Book club (3 members" in line for line in lines)
    for c in (alice, bob, carol):
        await c.close()


def test_a_hostile_report_is_shown_as_data() -> None:
    report = {
        "account": {"username": "\x1b[2Jmallory", "kdf": {"\x07": "\x1b]0;x\x07"}},
        "key_history": "not a list",
        "conversations": [{"peer": "bob\u202egnp", "messages": {"no": 1}}, 7],
        "log": [{"time": "yesterday", "text": "\x1b[31mred"}],
        "server_time": float("inf"),
        "not_kept": ["\r\x1b[1Aover the line above"],
    }
    text = "\n".join(report_lines(report, "evil"))
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text and "\r" not in text
    assert "^[[2Jmallory" in text and "bob<U+202E>gnp: ? messages" in text

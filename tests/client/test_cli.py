"""The ``pychat`` command as a subprocess against a real server on an ephemeral port."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import pytest_twisted

from pychat.testing import RunningServer, start_server
from pychat.tls import CERT_FILE, KEY_FILE
from tests.cli_helpers import Cli, lines_out, listening
from tests.client_helpers import client_for

pytestmark = pytest.mark.usefixtures("cheap_kdf")


@pytest_twisted.ensureDeferred
async def test_signup_send_read_and_reply(server: RunningServer, tmp_path: Path) -> None:
    alice = Cli(server, tmp_path / "alice", "alice", "alice-pw")
    bob = Cli(server, tmp_path / "bob", "bob", "bob-pw")
    for who in (alice, bob):
        r = await who.run("signup")
        assert r.code == 0, r.err
        assert "created account" in r.out and "fingerprint" in r.out
        assert "pinned the certificate" in r.err  # the fingerprint given was checked, pinned
    empty = [
        await alice.run(*args) for args in (("conversations",), ("group", "list"), ("outbox",))
    ]
    assert "no conversations yet: start one with  pychat send NAME" in empty[0].out
    assert "no groups yet" in empty[1].out and "the outbox is empty" in empty[2].out
    assert (await alice.run("conversations", "--json")).out == ""  # for scripts: nothing

    r = await alice.run("send", "bob", "hello bob, from the command line ✓")
    assert r.code == 0 and r.out.strip() == "sent #1", r.err
    r = await bob.run("read", "alice", "--json")
    assert r.code == 0, r.err
    (line,) = r.out.splitlines()
    message = json.loads(line)
    assert message["text"] == "hello bob, from the command line ✓"
    assert message["status"] == "verified" and message["sender"] == "alice" and message["seq"] == 1

    r = await bob.run("send", "alice", "-", stdin=b"a reply\nover two lines\n")
    assert r.code == 0, r.err
    r = await alice.run("read", "bob", "--since", "1")
    assert r.code == 0
    assert "bob: a reply\n    │ over two lines" in r.out
    r = await alice.run("send", "bob", "--me", "waves")
    assert r.code == 0, r.err
    r = await bob.run("read", "alice", "--since", "2")
    assert r.code == 0 and r.out.rstrip().endswith("#3 * alice waves"), r.out

    r = await alice.run("conversations", "--json")
    (conv,) = [json.loads(x) for x in r.out.splitlines()]
    assert conv["peer"] == "bob" and conv["last_seq"] == 3

    va = await alice.run("verify", "bob")
    vb = await bob.run("verify", "alice")
    assert va.code == vb.code == 0
    assert va.out.splitlines()[1:3] == vb.out.splitlines()[1:3]  # the same safety number
    r = await alice.run("trust", "bob")
    assert r.code == 0 and "bob is not verified" in r.out  # trust alone never verifies
    r = await alice.run("verify", "bob", "--mark")
    assert r.code == 0 and "now marked verified" in r.out
    assert "is marked verified" in (await alice.run("verify", "bob")).out
    r = await alice.run("fingerprint")
    assert r.code == 0 and r.out.startswith("alice: ")
    r = await alice.run("rotate", "bob")
    assert r.code == 0 and "epoch 2" in r.out
    await alice.run("send", "bob", "after rotation")
    r = await bob.run("read", "alice", "--json")
    assert [json.loads(x)["text"] for x in r.out.splitlines()] == [
        "hello bob, from the command line ✓", "a reply\nover two lines", "waves", "after rotation"
    ]  # fmt: skip
    assert [json.loads(x)["action"] for x in r.out.splitlines()] == [False, False, True, False]

    r = await alice.run("passwd", PYCHAT_NEW_PASSWORD="alice-new")
    assert r.code == 0, r.err
    assert (await alice.run("login")).code == 3  # the old password no longer works
    alice.password = "alice-new"
    assert (await alice.run("login")).code == 0


@pytest_twisted.ensureDeferred
async def test_errors_have_their_exit_codes(server: RunningServer, tmp_path: Path) -> None:
    alice = Cli(server, tmp_path / "alice", "alice", "pw")
    assert (await alice.run("signup")).code == 0
    wrong = Cli(server, tmp_path / "alice", "alice", "not-pw")
    r = await wrong.run("login")
    assert r.code == 3 and "wrong username or password" in r.err
    r = await alice.run("send", "nobody-here", "hi")
    assert r.code == 1 and "no user called" in r.err
    r = await alice.run("send")
    assert r.code == 2  # argparse: missing arguments
    nowhere = Cli(None, tmp_path / "x", "alice", "pw", port=1)
    r = await nowhere.run("login")
    assert r.code == 5 and "cannot connect" in r.err
    r = await alice.run("accept-server", "127.0.0.1:1", "not-a-fingerprint")
    assert r.code == 2


@pytest_twisted.ensureDeferred
async def test_changed_certificate_exits_4_until_accepted(tmp_path: Path) -> None:
    first = await start_server(tmp_path / "data")
    port = first.port
    alice = Cli(first, tmp_path / "alice", "alice", "pw")
    assert (await alice.run("signup")).code == 0
    await first.stop()
    (tmp_path / "data" / CERT_FILE).unlink()
    (tmp_path / "data" / KEY_FILE).unlink()
    second = await start_server(tmp_path / "data", listen=(f"ssl:{port}:interface=127.0.0.1",))
    try:
        r = await alice.run("login")
        assert r.code == 4
        assert "CHANGED" in r.err and "pychat accept-server" in r.err
        command_line = next(line for line in r.err.splitlines() if "pychat accept-server" in line)
        r = await alice.run(*command_line.split()[1:])
        assert r.code == 0, r.err
        assert (await alice.run("login")).code == 0
    finally:
        await second.stop()


@pytest_twisted.ensureDeferred
async def test_react_and_reply_from_the_command_line(server: RunningServer, tmp_path: Path) -> None:
    alice = Cli(server, tmp_path / "alice", "alice", "alice-pw")
    bob = Cli(server, tmp_path / "bob", "bob", "bob-pw")
    for who in (alice, bob):
        assert (await who.run("signup")).code == 0
    assert (await alice.run("send", "bob", "lunch at one?")).code == 0
    r = await bob.run("react", "alice", "1", "👍")
    assert r.code == 0 and r.out.strip() == "sent #2", r.err
    r = await bob.run("send", "alice", "sure", "--reply-to", "1")
    assert r.code == 0, r.err
    r = await bob.run("react", "alice", "1", "yes")
    assert r.code == 1 and "one emoji" in r.err
    r = await alice.run("read", "bob")
    lines = r.out.splitlines()
    assert lines[1].endswith("#2 bob reacted 👍 to #1"), r.out
    assert lines[2].endswith('#3 bob: (re #1 "lunch at one?") sure'), r.out
    r = await alice.run("read", "bob", "--json")
    reply = json.loads(r.out.splitlines()[2])
    assert reply["kind"] == "reply" and reply["reference"]["seq"] == 1
    live_bob = client_for(server, tmp_path / "bob")
    await live_bob.login("bob", "bob-pw")  # bob's client is up: it answers by itself
    r = await alice.run("roll", "bob", "3d6", "--wait", "20")
    assert r.code == 0 and r.out.startswith("🎲 ") and "— fair" in r.out, r.err
    await live_bob.close()
    r = await alice.run("flip", "bob", "--wait", "0.5")  # nobody answers now
    assert r.code == 5 and "did not answer" in r.err
    r = await alice.run("roll", "bob", "7d1")
    assert r.code == 1 and "NdM" in r.err
    doc = tmp_path / "menu.txt"
    doc.write_text("soup, then fish\n")
    r = await alice.run("send-file", "bob", str(doc))
    assert r.code == 0 and r.out.startswith("sent #"), r.err
    assert "queued message" not in r.err  # said once, by the command itself
    file_seq = r.out.split("#")[1].strip()
    r = await bob.run("get-file", "alice", file_seq, "--dir", str(tmp_path / "got"))
    assert r.code == 0 and (tmp_path / "got" / "menu.txt").read_text() == "soup, then fish\n"
    r = await alice.run("send-file", "bob", str(tmp_path / "missing"))
    assert r.code == 2 and "no file" in r.err
    r = await alice.run("whatdoyouknow")
    assert r.code == 0 and "knows about alice" in r.out and "  bob: " in r.out, r.err
    r = await alice.run("whatdoyouknow", "--json")
    assert json.loads(r.out)["account"]["username"] == "alice"


@pytest_twisted.ensureDeferred
async def test_send_queue_keeps_the_message_while_the_server_is_away(tmp_path: Path) -> None:
    first = await start_server(tmp_path / "data")
    port = first.port
    alice = Cli(first, tmp_path / "alice", "alice", "alice-pw")
    bob = Cli(first, tmp_path / "bob", "bob", "bob-pw")
    for who in (alice, bob):
        assert (await who.run("signup")).code == 0
    assert (await alice.run("send", "bob", "before")).code == 0
    await first.stop()
    r = await alice.run("send", "bob", "no queue, no server")
    assert r.code == 5, r.err
    r = await alice.run("send", "bob", "--queue", "written while the server was away")
    assert r.code == 0 and r.out.startswith("queued:"), r.err
    assert "working offline" in r.err
    r = await alice.run("outbox")
    assert r.code == 0 and "to bob … written while the server was away" in r.out, r.err
    wrong = Cli(None, tmp_path / "alice", "alice", "not-the-pw", port=port)
    r = await wrong.run("outbox")
    assert r.code == 1 and "wrong password" in r.err
    second = await start_server(tmp_path / "data", listen=(f"ssl:{port}:interface=127.0.0.1",))
    try:
        r = await alice.run("outbox", "--json")  # logging in sends it first
        assert r.code == 0 and r.out == "", r.out
        assert "queued message to bob sent (#2)" in r.err
        r = await bob.run("read", "alice", "--json")
        texts = [json.loads(x)["text"] for x in r.out.splitlines()]
        assert texts == ["before", "written while the server was away"]
    finally:
        await second.stop()


@pytest_twisted.ensureDeferred
async def test_listen_streams_messages_until_interrupted(
    server: RunningServer, tmp_path: Path
) -> None:
    alice = Cli(server, tmp_path / "alice", "alice", "pw")
    bob = Cli(server, tmp_path / "bob", "bob", "pw")
    for who in (alice, bob):
        assert (await who.run("signup")).code == 0
    proc, transport = await listening(bob)
    assert (await alice.run("send", "bob", "are you there?")).code == 0
    await lines_out(proc, 1)
    transport.signalProcess(signal.SIGINT)
    code = await proc.done
    (line,) = proc.out.decode().splitlines()
    assert json.loads(line)["text"] == "are you there?"
    assert code == 0


@pytest_twisted.ensureDeferred
async def test_tui_without_a_terminal_says_so(server: RunningServer, tmp_path: Path) -> None:
    alice = Cli(server, tmp_path / "alice", "alice", "pw")
    r = await alice.run("tui")
    assert r.code == 2 and "needs a terminal" in r.err


@pytest_twisted.ensureDeferred
async def test_unsigned_key_change_in_the_cli_own_terms(
    server: RunningServer, tmp_path: Path
) -> None:
    from tests.trust_helpers import reregister

    alice = Cli(server, tmp_path / "alice", "alice", "pw")
    bob = Cli(server, tmp_path / "bob", "bob", "pw")
    for who in (alice, bob):
        assert (await who.run("signup")).code == 0
    assert (await alice.run("send", "bob", "before")).code == 0
    await reregister(server, "bob", "pw")
    r = await alice.run("send", "bob", "blocked?")
    assert r.code == 4 and "pychat verify bob" in r.err and "pychat trust bob" in r.err
    r = await alice.run("verify", "bob")
    assert r.code == 0 and "CHANGED" in r.out and "with the key you had" in r.out
    assert (await alice.run("verify", "bob", "--mark")).code == 4  # not while pending
    r = await alice.run("trust", "bob")
    assert r.code == 0 and "bob is not verified" in r.out
    assert (await alice.run("send", "bob", "after")).code == 0
    new_bob = Cli(server, tmp_path / "bob-new", "bob", "pw")
    r = await new_bob.run("read", "alice", "--json")
    lines = [json.loads(x) for x in r.out.splitlines()]
    assert lines[0]["status"] == "rejected" and "before bob's key change" in lines[0]["reason"]
    assert (lines[-1]["text"], lines[-1]["status"]) == ("after", "verified")
    r = await alice.run("rotate-identity")
    assert r.code == 0 and "signed by your old ones" in r.out

"""The real TUI in a pseudo-terminal against a real server; every test reads the screen.

Every test starts from :func:`tests.tui_scenes.alice_in_tui` (or, for the form itself,
:func:`tests.tui_scenes.tui`): the accounts, what was said before, alice's TUI logged in.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from pychat.testing import RunningServer, start_server
from pychat.wire.ids import conversation_id
from tests.client_helpers import client_for, collect, signed_up
from tests.trust_helpers import new_machine, reregister
from tests.tui_scenes import ALICE_PW, accept_first_contact, alice_in_tui, history, log_in, tui
from tests.tui_terminal import SYNC_BEGIN, SYNC_END


def _screenshot(name: str, screen: str) -> None:
    """Keep ``screen`` as ``$PYCHAT_TUI_SCREENSHOTS/name.txt`` (docs/features.md's come from
    here)."""
    if os.environ.get("PYCHAT_TUI_SCREENSHOTS"):
        (Path(os.environ["PYCHAT_TUI_SCREENSHOTS"]) / f"{name}.txt").write_text(screen.rstrip())


@pytest_twisted.ensureDeferred
async def test_tui_signup_open_send_and_see_the_reply_live(
    server: RunningServer, tmp_path: Path
) -> None:
    async with alice_in_tui(server, tmp_path, sign_up_in_tui=True) as scene:
        term, bob = scene.term, scene.bob
        term.type("/new bob")
        term.press("enter")
        await term.wait_for("conversation with bob open")
        term.type("hello from the tui")
        term.press("enter")
        await term.wait_for("✓ alice: hello from the tui")  # acknowledged: stored
        (received,) = await bob.read("alice")
        assert received.text == "hello from the tui" and received.status == "verified"
        await bob.send("alice", "bob answers live")
        screen = await term.wait_for("bob: bob answers live")
        assert "✓ alice: hello from the tui" in screen
        assert "[online] bob" in screen
        if os.environ.get("PYCHAT_TUI_SCREENSHOT"):  # docs/tui.md's screenshot comes from here
            Path(os.environ["PYCHAT_TUI_SCREENSHOT"]).write_text(screen.rstrip() + "\n")


@pytest_twisted.ensureDeferred
async def test_tui_scrolls_back_into_history_fetched_on_demand(
    server: RunningServer, tmp_path: Path
) -> None:
    async with alice_in_tui(server, tmp_path, said=history(130)) as scene:
        term = scene.term
        screen = term.text()
        assert "history line 001" not in screen
        assert "new messages" in screen or "history line 081" not in screen
        for _ in range(60):
            term.press("pgup")
            if "history line 001" in term.text():
                break
            await task.deferLater(reactor, 0.1, lambda: None)
        screen = await term.wait_for("history line 001")
        assert "loaded" in screen or "history line 002" in screen
        term.press("pgdn", "pgdn", "pgdn", "pgdn", "pgdn", "pgdn", "pgdn", "pgdn", "pgdn", "pgdn")
        await term.wait_for("history line 130")


@pytest_twisted.ensureDeferred
async def test_tui_resizes_from_120x40_to_80x24_and_back(
    server: RunningServer, tmp_path: Path
) -> None:
    said = [("bob", "alice", "a message that must survive every resize")]
    async with alice_in_tui(server, tmp_path, said=said, cols=120, rows=40) as scene:
        term = scene.term
        term.type("draft text kept")
        await term.wait_for("bob> draft text kept")
        assert " Conversations" in term.text() and len(term.screen.display) == 40

        term.resize(80, 24)
        screen = await term.wait_until(
            lambda t: "[online] bob" in t.line(22) and t.line(0).startswith(" pyChat")
        )
        assert len(term.screen.display) == 24 and "bob> draft text kept" in term.line(23)
        assert " Conversations" in screen and "must survive every resize" in screen
        assert term.line(0).startswith(" pyChat")
        assert "[online] bob" in term.line(22)

        term.resize(120, 40)
        screen = await term.wait_until(
            lambda t: "[online] bob" in t.line(38) and t.line(0).startswith(" pyChat")
        )
        assert "must survive every resize" in screen and "bob> draft text kept" in term.line(39)

        term.resize(60, 15)  # below 80x24: the list goes, the conversation stays
        screen = await term.wait_until(
            lambda t: "[online] bob" in t.line(13) and t.line(0).startswith(" pyChat")
        )
        assert " Conversations" not in screen and "must survive every resize" in screen
        assert "bob> draft text kept" in term.line(14)


@pytest_twisted.ensureDeferred
async def test_tui_edits_a_line_with_emoji_and_cjk(server: RunningServer, tmp_path: Path) -> None:
    async with alice_in_tui(server, tmp_path, sign_up_in_tui=True) as scene:
        term = scene.term
        term.type("/new bob")
        term.press("enter")
        await term.wait_for("conversation with bob open")
        term.type("héllo 🙂 世界 end")
        await term.wait_for("bob> héllo 🙂 世界 end")
        term.press("left", "left", "left", "backspace")  # delete the space before "end"
        await term.wait_for("bob> héllo 🙂 世界end")
        term.press("ctrl-w")  # delete the word before the cursor: 世界
        await term.wait_for("bob> héllo 🙂 end")
        term.press("ctrl-a")
        term.type("¡")
        term.press("ctrl-e")
        term.type("!")
        await term.wait_for("bob> ¡héllo 🙂 end!")
        # the cursor sits right after the text, measured in cells (the emoji takes two)
        y, x = term.cursor()
        assert y == 29 and x == len("bob> ¡héllo ") + 2 + len(" end!")
        term.type("🇯🇵")  # a flag is two code points: Backspace removes both
        await term.wait_until(lambda t: "🇯" in t.line(29) or "🇵" in t.line(29))
        term.press("backspace")
        term.press("alt-enter")
        term.type("second line")
        # (pyte and curses disagree on where a lone regional indicator leaves the cursor, so
        # the input line's cells are not the proof here: the text bob receives is, below.)
        await term.wait_for("↵second line")
        term.press("enter")
        screen = await term.wait_for("✓ alice: ¡héllo 🙂 end!")  # stored (… while it waits)
        (sent,) = await scene.bob.read("alice")
        assert sent.text == "¡héllo 🙂 end!\nsecond line"  # no half of the flag went along
        lines = screen.splitlines()
        at = next(i for i, line in enumerate(lines) if "alice: ¡héllo 🙂 end!" in line)
        assert lines[at + 1].strip().endswith("second line")  # the second line of the message
        assert "↵" not in term.line(29)  # the input line is empty again


@pytest_twisted.ensureDeferred
async def test_tui_shows_a_signed_rotation_as_a_notice_and_keeps_sending(
    server: RunningServer, tmp_path: Path
) -> None:
    said = [("alice", "bob", "before the change")]
    async with alice_in_tui(server, tmp_path, said=said) as scene:
        term, bob = scene.term, scene.bob
        # bob publishes a new identity, properly signed by his old key (what /rekey does)
        await bob.rotate_identity()
        screen = await term.wait_for("bob rotated keys (signed by the old ones)")
        assert "KEY CHANGED" not in screen
        term.type("still there?")
        term.press("enter")
        await term.wait_for("✓ alice: still there?")
        assert [m.text for m in await bob.read("alice")][-1] == "still there?"


@pytest_twisted.ensureDeferred
async def test_tui_unsigned_key_change_warns_then_trust_recovers_both_sides(
    server: RunningServer, tmp_path: Path
) -> None:
    said = [("alice", "bob", "before the change"), ("bob", "alice", "hello alice")]
    async with alice_in_tui(server, tmp_path, said=said) as scene:
        term = scene.term
        await scene.bob.close()
        await reregister(server, "bob", "pw")
        # warned at once, without sending anything, with both safety numbers
        screen = await term.wait_for("BOB'S KEY CHANGED")
        numbers = await (await new_machine(server, tmp_path / "bob-new", "bob")).safety_numbers(
            "alice"
        )
        new_groups = numbers.current.split()
        assert " ".join(new_groups[:6]) in screen and "Safety number with the key you had" in screen
        assert "/trust accepts the new key" in screen and "pychat trust" not in screen
        term.type("x")
        screen = await term.wait_gone("Safety number with the key you had")
        assert "●!bob" in screen  # the list marks the changed key
        term.type("/verify")
        term.press("enter")
        await term.wait_for("Safety number with the key you had")  # /verify shows both
        term.type("x")
        await term.wait_gone("Safety number with the key you had")
        term.type("/trust")
        term.press("enter")
        await term.wait_for("not verified: /verify to compare")
        term.type("welcome back")
        term.press("enter")
        await term.wait_for("✓ alice: welcome back")
        new_bob = await new_machine(server, tmp_path / "bob-new2", "bob")
        seen = await new_bob.read("alice")
        assert (seen[-1].text, seen[-1].status) == ("welcome back", "verified")
        await new_bob.send("alice", "new phone, same bob")
        await term.wait_for("bob: new phone, same bob")
        await new_bob.close()


@pytest_twisted.ensureDeferred
async def test_tui_restores_the_terminal_on_sigterm(server: RunningServer, tmp_path: Path) -> None:
    async with tui(server, tmp_path / "alice") as term:
        await term.wait_for("Log in")
        term.transport.signalProcess("TERM")
        code = await term.proto.ended
        raw = bytes(term.proto.raw)
        assert code == 0
        assert raw.rfind(b"\x1b[?2004l") > raw.rfind(b"\x1b[?2004h")  # bracketed paste off
        assert raw.rfind(b"\x1b[?1049l") > raw.rfind(b"\x1b[?1049h")  # alternate screen left
        # every frame is one synchronized update (a terminal never shows half of one)
        assert raw.count(SYNC_BEGIN) == raw.count(SYNC_END) == term.proto.frames >= 1


@pytest_twisted.ensureDeferred
async def test_tui_notifies_and_reorders_for_a_message_off_screen(
    server: RunningServer, tmp_path: Path
) -> None:
    said = [("carol", "alice", "an old one from carol"), ("bob", "alice", "bob is on screen")]
    async with alice_in_tui(server, tmp_path, peers=("bob", "carol"), said=said) as scene:
        term, carol = scene.term, scene.peers["carol"]
        assert term.line(2).startswith("1") and "bob" in term.line(2)  # most recent first
        before = len(term.proto.raw)
        await carol.send("alice", "carol again, off screen")
        # carol moves to the top with two unread (the old one and the new one)
        await term.wait_until(
            lambda t: "carol" in t.line(2) and t.line(2)[:22].rstrip().endswith("2")
        )
        raw = bytes(term.proto.raw[before:])
        assert b"\x07" in raw and b"\x1b]9;pyChat: message from carol" in raw
        assert b"\x1b]777;notify;pyChat;message from carol" in raw
        assert "bob is on screen" in term.text()  # the screen stayed on bob
        term.press("tab")  # back to the top of the list: carol
        # the divider and the message may land in different frames: wait for both together
        await term.wait_until(
            lambda t: "carol again, off screen" in t.text() and "new messages" in t.text()
        )


@pytest_twisted.ensureDeferred
async def test_tui_rekey_is_a_signed_rotation_the_peer_accepts_without_a_block(
    server: RunningServer, tmp_path: Path
) -> None:
    async with alice_in_tui(server, tmp_path, said=[("alice", "bob", "before the rekey")]) as s:
        term, bob = s.term, s.bob
        await bob.mark_verified("alice")
        events = collect(bob)
        term.type("/rekey")
        term.press("enter")
        await term.wait_for("signed by the old ones", timeout=60)
        term.type("after the rekey")
        term.press("enter")
        await term.wait_for("✓ alice: after the rekey")  # stored (… while it waits)
        await bob.send("alice", "still talking")  # no block on bob's side
        await term.wait_for("bob: still talking")
        assert any(e.kind == "keys_rotated" and e.data["verified"] for e in events)
        assert bob.peer_trust("alice") == (True, False)
        texts = [(m.text, m.status) for m in await bob.read("alice")]
        assert ("before the rekey", "verified") in texts
        assert ("after the rekey", "verified") in texts


@pytest_twisted.ensureDeferred
async def test_escape_then_a_command_within_50_ms_runs_the_command(
    server: RunningServer, tmp_path: Path
) -> None:
    async with alice_in_tui(server, tmp_path, sign_up_in_tui=True) as scene:
        term = scene.term
        term.press("escape")
        await task.deferLater(reactor, 0.05, lambda: None)
        term.type("/new bob")
        term.press("enter")
        await term.wait_for("conversation with bob open")  # the "/" was not swallowed


@pytest_twisted.ensureDeferred
async def test_a_wrong_then_right_password_logs_in(server: RunningServer, tmp_path: Path) -> None:
    alice = await signed_up(server, tmp_path / "alice", "alice", ALICE_PW)
    await alice.close()
    async with tui(server, tmp_path / "alice") as term:
        await term.wait_for("Log in")
        term.type("not-it")
        screen = await term.wait_for("••••••")  # typing shows, masked
        assert "not-it" not in screen
        term.press("enter")
        screen = await term.wait_for("wrong username or password")
        assert "•" not in screen  # the failed password was cleared
        term.type(ALICE_PW)
        term.press("enter")
        await term.wait_for("No conversation open")


@pytest_twisted.ensureDeferred
async def test_the_form_refuses_a_changed_certificate_before_the_password_is_typed(
    server: RunningServer, tmp_path: Path
) -> None:
    alice = await signed_up(server, tmp_path / "alice", "alice", ALICE_PW)
    await alice.close()
    pins = tmp_path / "alice" / "known_servers.json"
    pinned = json.loads(pins.read_text())
    for entry in pinned.values():
        entry["fingerprint"] = "00" * 32  # as if the server's certificate had been replaced
    pins.write_text(json.dumps(pinned))
    async with tui(server, tmp_path / "alice") as term:
        screen = await term.wait_for("SERVER CERTIFICATE CHANGED")  # nothing typed yet
        assert "•" not in screen


@pytest_twisted.ensureDeferred
async def test_tui_input_history_survives_a_restart(server: RunningServer, tmp_path: Path) -> None:
    said = [("bob", "alice", "a line from bob, never kept in alice's history")]
    async with alice_in_tui(server, tmp_path, said=said) as scene:
        term = scene.term
        term.type("something alice typed")
        term.press("enter")
        await term.wait_for("alice: something alice typed")
        await term.quit()
        (saved,) = (tmp_path / "alice" / "keystores").glob("*/alice.history.json")
        assert saved.stat().st_mode & 0o777 == 0o600
        assert "bob" not in saved.read_text()
        async with tui(server, tmp_path / "alice") as again:
            await log_in(again, ALICE_PW, "something alice typed")
            again.press("up")
            await again.wait_for("bob> something alice typed")


@pytest_twisted.ensureDeferred
async def test_tui_signs_up_on_an_invite_only_server_with_the_code_in_the_form(
    tmp_path: Path,
) -> None:
    server = await start_server(tmp_path / "data", signup="invite")
    code, _ = await server.chat.signup_gate.create(0.0, 24 * 365 * 60)
    try:
        async with tui(server, tmp_path / "alice") as term:
            await term.wait_for("Log in")
            await accept_first_contact(term)  # the server is checked before the password
            term.press("f2")
            await term.wait_for("Invite (if the server asks)")
            term.type("alice-password")
            term.press("enter")
            term.type("alice-password")
            term.press("enter")  # submits: the invite is optional in the form ...
            await term.wait_for("ask its operator for an invite")  # ... and this server does
            term.type("alice-password")  # the failed try cleared the passwords
            term.press("enter")
            term.type("alice-password")
            term.press("tab")  # Confirm -> Invite
            term.type(code)
            term.press("enter")
            await term.wait_for("No conversation open")
    finally:
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_tui_passwd_changes_the_password_after_a_wrong_current_one(
    server: RunningServer, tmp_path: Path
) -> None:
    new = "correct horse battery staple 42"
    async with alice_in_tui(server, tmp_path, peers=()) as scene:
        term = scene.term
        term.type("/passwd")
        term.press("enter")
        await term.wait_for("Change your password")
        for text in ("not-my-password", new, new):
            term.type(text)
            term.press("enter")
        screen = await term.wait_for("the current password is wrong")
        assert "not-my-password" not in screen and new not in screen  # masked
        for text in (ALICE_PW, new, new):
            term.type(text)
            term.press("enter")
        await term.wait_for("password changed")
    again = client_for(server, tmp_path / "alice-elsewhere")
    await again.login("alice", new)  # the server takes the new password
    await again.close()


@pytest_twisted.ensureDeferred
async def test_tui_search_steps_to_older_matches_loading_older_pages(
    server: RunningServer, tmp_path: Path
) -> None:
    said = history(130, marked=(5, 60, 125))
    async with alice_in_tui(server, tmp_path, said=said) as scene:
        term = scene.term
        term.type("/search needle")
        term.press("enter")
        await term.wait_for("'needle': #125, match 1 of 1")  # the only one loaded (last 50)
        term.type("n")
        screen = await term.wait_for("'needle': #60")  # an older page loaded to find it
        assert "history line 060 needle" in screen
        term.type("n")
        screen = await term.wait_for("'needle': #5,")
        assert "history line 005 needle" in screen
        term.type("n")
        await term.wait_for("no older message holds 'needle'")
        term.type("N")
        await term.wait_for("'needle': #60")
        term.press("escape")
        await term.wait_for("search done")


@pytest_twisted.ensureDeferred
async def test_tui_a_message_typed_while_the_server_is_down_arrives_once_after_it_is_back(
    tmp_path: Path,
) -> None:
    server = await start_server(tmp_path / "data")
    port = server.port
    said = [("bob", "alice", "hello before the outage")]
    try:
        async with alice_in_tui(server, tmp_path, said=said) as scene:
            term = scene.term
            await scene.bob.close()
            await server.stop()
            await term.wait_for("[reconnecting")
            term.type("typed while the server was down")
            term.press("enter")
            await term.wait_for("… alice: typed while the server was down")
            screen = await term.wait_for("waits in the outbox")
            if os.environ.get("PYCHAT_TUI_SCREENSHOT_OUTBOX"):  # docs/tui.md, "the outbox"
                Path(os.environ["PYCHAT_TUI_SCREENSHOT_OUTBOX"]).write_text(screen.rstrip() + "\n")
            listen = (f"ssl:{port}:interface=127.0.0.1",)
            server = await start_server(tmp_path / "data", listen=listen)
            term.press("ctrl-r")  # retry now rather than wait out the backoff
            await term.wait_for("✓ alice: typed while the server was down")
            bob = client_for(server, tmp_path / "bob")
            await bob.login("bob", "pw")
            texts = [m.text for m in await bob.read("alice")]
            assert texts == ["hello before the outage", "typed while the server was down"]
            await bob.close()
    finally:
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_tui_numbers_stay_put_and_presence_shows_for_conversations_others_opened(
    server: RunningServer, tmp_path: Path
) -> None:
    """alice opens nothing: bob, then carol, open conversations with her while she watches.
    Each shows its peer's presence at once; bob keeps number 1 when carol's activity puts
    carol on top, Alt-2 is still carol after bob writes again, and bob leaving shows ○."""
    async with alice_in_tui(server, tmp_path, peers=("bob", "carol")) as scene:
        term, bob, carol = scene.term, scene.bob, scene.peers["carol"]
        await bob.send("alice", "bob opens it")
        await term.wait_until(lambda t: t.line(2).startswith("1● bob"))
        await carol.send("alice", "carol opens hers")
        await term.wait_until(lambda t: t.line(2).startswith("2● carol"))
        assert term.line(3).startswith("1● bob")  # carol is on top, and bob is still 1
        term.press("alt-2")
        await term.wait_for("carol opens hers")  # (her message is in: it cannot reorder later)
        await bob.send("alice", "bob again")
        await term.wait_until(lambda t: t.line(2).startswith("1● bob"))
        assert term.line(3).startswith("2● carol")
        term.press("alt-1")
        await term.wait_for("bob again")
        term.press("alt-2")
        await term.wait_for("carol opens hers")
        await bob.close()
        await term.wait_until(lambda t: "1○ bob" in t.text())


@pytest_twisted.ensureDeferred
async def test_tui_reacts_and_replies_and_shows_reactions_under_their_message(
    server: RunningServer, tmp_path: Path
) -> None:
    said = [("alice", "bob", "the first thing alice said"), ("bob", "alice", "dinner at eight?")]
    async with alice_in_tui(server, tmp_path, said=said) as scene:
        term, bob = scene.term, scene.bob
        term.type("/react 👍")
        term.press("enter")
        await term.wait_for("↳ 👍 alice")
        term.type("/reply yes, eight is fine")
        term.press("enter")
        # ✓: stored (shown with … while it waits for the server), so bob's reaction is after it.
        screen = await term.wait_for("✓ alice: yes, eight is fine")
        assert "↪ re #2: dinner at eight?" in screen
        await bob.react("alice", 1, "🎉")  # (pyte drops what follows U+FE0F: no ❤️ here)
        _screenshot("reactions", await term.wait_for("↳ 🎉 bob"))
        received = await bob.read("alice", since=2)
        assert [(m.kind, m.text, m.reference.seq if m.reference else None) for m in received] == [
            ("reaction", "👍", 2),
            ("reply", "yes, eight is fine", 2),
            ("reaction", "🎉", 1),
        ]
        term.type("/whatdoyouknow")
        term.press("enter")
        screen = await term.wait_for("What the server knows about you")
        assert "bob: 5 messages" in screen and "Log lines about you" in screen
        _screenshot("whatdoyouknow", screen)


@pytest_twisted.ensureDeferred
async def test_tui_flips_a_coin_with_a_peer_and_both_see_the_fair_result(
    server: RunningServer, tmp_path: Path
) -> None:
    async with alice_in_tui(server, tmp_path, said=[("bob", "alice", "heads I win")]) as scene:
        term, bob = scene.term, scene.bob
        results: list[str] = []
        bob.listeners.append(lambda e: results.append(e.data["text"]) if e.kind == "game" else None)
        term.type("/flip")
        term.press("enter")
        await term.wait_for("— fair (alice and bob both chose)")
        # pyte sometimes misplaces rows when curses scrolls a region holding 🪙 (the model is
        # right: it was checked); a full redraw (Ctrl-L) shows what a real terminal shows
        term.press("ctrl-l")
        screen = await term.wait_until(
            lambda t: (
                "✓ 🪙 alice flips a coin" in t.text()
                and "bob answered alice's flip" in t.text()
                and ("✓ 🪙 heads — fair" in t.text() or "✓ 🪙 tails — fair" in t.text())
            )  # the line and status
        )
        _screenshot("flip", screen)
        for _ in range(50):
            if results:
                break
            await task.deferLater(reactor, 0.1, lambda: None)
        (bobs,) = results
        assert bobs in screen  # the same result on both sides


@pytest_twisted.ensureDeferred
async def test_tui_typing_and_read_signals_when_both_sides_turn_them_on(
    server: RunningServer, tmp_path: Path
) -> None:
    async with alice_in_tui(server, tmp_path, said=[("bob", "alice", "are you there?")]) as s:
        term, bob = s.term, s.bob
        bob.signals.enabled = True
        heard = collect(bob)
        term.type("/signals on")
        term.press("enter")
        await term.wait_for("typing and read signals on")
        await bob.signals.send("alice", "typing")
        await term.wait_for("bob is typing…")
        term.type("yes")
        term.press("enter")
        await term.wait_for("✓ alice: yes")
        (mine,) = [m for m in await bob.read("alice", since=1)]
        await bob.signals.send("alice", "read", mine.seq)
        _screenshot("signals", await term.wait_for("✓✓ read by bob"))
        kinds = [e.data["kind"] for e in heard if e.kind == "signal"]
        assert "typing" in kinds  # alice's typing reached bob


@pytest_twisted.ensureDeferred
async def test_tui_sends_and_fetches_files(server: RunningServer, tmp_path: Path) -> None:
    plan = tmp_path / "plan.txt"
    plan.write_bytes(b"step one, step two\n" * 3000)
    async with alice_in_tui(server, tmp_path, said=[("bob", "alice", "send me the plan")]) as s:
        term, bob = s.term, s.bob
        term.type(f"/send-file {plan}")
        term.press("enter")
        await term.wait_for("sent plan.txt to bob")
        (offer,) = [m for m in await bob.read("alice") if m.kind == "file"]
        got = await bob.files.fetch("alice", offer.seq, tmp_path / "bob-downloads")
        assert got.read_bytes() == plan.read_bytes()
        reply = tmp_path / "answer.bin"
        reply.write_bytes(os.urandom(70_000))
        await bob.files.send("alice", reply)
        await term.wait_for("📎 bob sent answer.bin (70.0 KB)")
        term.type("/get-file")
        term.press("enter")
        _screenshot("files", await term.wait_for("saved "))
        saved = tmp_path / "alice" / "downloads" / "answer.bin"
        assert saved.read_bytes() == reply.read_bytes()


@pytest_twisted.ensureDeferred
async def test_tui_disappearing_messages_show_the_timer_and_leave_the_screen(
    server: RunningServer, tmp_path: Path
) -> None:
    async with alice_in_tui(server, tmp_path, said=[("bob", "alice", "shall we whisper?")]) as s:
        term, bob = s.term, s.bob
        term.type("/disappear 5m")
        term.press("enter")
        await term.wait_for("⏱ alice set disappearing messages to 5m")
        screen = await term.wait_for("⏱ 5m │")
        assert "now disappear after 5m" in screen
        assert "bob: messages disappear after 5m" in term.line(0)  # in the title too
        await bob.read("alice")
        assert bob.disappearing.timer("alice") == 300
        _, data = bob.require_login()
        data.timers[conversation_id("alice", "bob")][1] = 3  # 3 s instead of 5 min, for the test
        await bob.send("alice", "gone in three seconds")
        _screenshot("disappearing", await term.wait_for("gone in three seconds"))
        await term.wait_gone("gone in three seconds", timeout=10)


@pytest.mark.parametrize("in_tmux", [False, True])
@pytest_twisted.ensureDeferred
async def test_tui_draws_links_as_hyperlinks_to_themselves_and_copies_with_osc_52(
    in_tmux: bool, server: RunningServer, tmp_path: Path
) -> None:
    said = [("bob", "alice", "the menu is at https://example.org/menu, see you")]
    async with alice_in_tui(server, tmp_path, said=said, tmux=in_tmux) as scene:
        term = scene.term
        link = b"\x1b]8;;https://example.org/menu\x1b\\https://example.org/menu\x1b]8;;\x1b\\"
        if term.tmux is None:  # tmux passes hyperlinks on from 3.4, with its hyperlinks feature
            await term.wait_until(lambda t: link in bytes(t.proto.raw))
        assert "the menu is at https://example.org/menu, see you" in term.text()  # drawn once
        before = len(term.proto.raw)
        term.type("/copy")
        term.press("enter")
        await term.wait_for("is on your clipboard")
        copied = base64.b64encode(b"the menu is at https://example.org/menu, see you")
        # tmux (set-clipboard on) hands the same text on to the terminal it runs in
        await term.wait_until(lambda t: b";" + copied + b"\x07" in bytes(t.proto.raw[before:]))
        assert b"\x1b]52;" in bytes(term.proto.raw[before:])


@pytest_twisted.ensureDeferred
async def test_tui_composes_in_the_editor_and_sends_several_lines_as_one_message(
    server: RunningServer, tmp_path: Path
) -> None:
    notes = tmp_path / "editor-notes"
    editor = tmp_path / "fake-editor"
    editor.write_text(
        "#!/bin/sh\n"
        f'stat -c "%a $1" "$1" > {notes}\n'
        'printf "%s\\nsecond line\\nthird line\\n" "$(cat "$1")" > "$1"\n'
    )
    editor.chmod(0o700)
    said = [("bob", "alice", "write me a poem")]
    env = {"EDITOR": str(editor)}
    async with alice_in_tui(server, tmp_path, said=said, env=env, tmux=True) as scene:
        term, bob = scene.term, scene.bob
        term.type("first line")
        term.press("ctrl-x", "ctrl-e")
        await term.wait_for("Send these 3 lines to bob as one message?")
        term.type("y")
        await term.wait_for("✓ alice: first line")  # acknowledged: stored
        mode, path = notes.read_text().split()
        assert mode == "600" and not Path(path).exists()  # private while it lived, then gone
        received = [m for m in await bob.read("alice") if m.sender == "alice"]
        assert received[-1].text == "first line\nsecond line\nthird line"


@pytest_twisted.ensureDeferred
async def test_tui_mouse_when_asked_for_a_click_picks_a_conversation_the_wheel_scrolls(
    server: RunningServer, tmp_path: Path
) -> None:
    folder = tmp_path / "alice" / "config" / "pychat"
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text("mouse = true\n")
    said = [("carol", "alice", "carol was first"), *history(60)]
    peers = ("bob", "carol")
    async with alice_in_tui(server, tmp_path, peers=peers, said=said, tmux=True) as scene:
        term = scene.term  # inside tmux, which passes the reports on to the TUI that asked
        raw = bytes(term.proto.raw)
        assert b"\x1b[?1000h" in raw and b"\x1b[?1006h" in raw  # reporting asked for
        assert "history line 060" in term.text() and "history line 030" not in term.text()
        term.type("\x1b[<64;50;10M")  # the wheel, up: older messages come into view
        await term.wait_for("history line 040")
        term.type("\x1b[<0;4;4M\x1b[<0;4;4m")  # a click on the second conversation: carol
        await term.wait_for("carol was first")
        assert "carol ·" in term.line(term.screen.lines - 2)
    (folder / "config.toml").write_text("")
    async with tui(server, tmp_path / "alice") as term:
        await log_in(term, ALICE_PW, "history line 060")
        assert b"\x1b[?1000h" not in bytes(term.proto.raw)  # off unless asked for

"""``pychat-admin`` against data dirs made by a real ``twistd pychat``: a backup taken while
messages are being sent, restored into a fresh data dir and served, holds every message
acknowledged before it began; ``check`` passes on it and finds damage; ``stats`` works with
the server running or stopped; nothing unsafe runs beside a running server."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task, threads
from twisted.internet.endpoints import SSL4ClientEndpoint, connectProtocol
from twisted.internet.ssl import CertificateOptions
from twisted.internet.utils import getProcessOutputAndValue

from pychat.admin.cli import main as admin
from pychat.client import auth
from pychat.client.protocol import ClientProtocol, ConnectionClosed, RemoteError
from tests.accounts_helpers import KDF, public_keys
from tests.chat_helpers import envelope
from tests.process_helpers import ROOT, ServerProcess, connect_srp, history_of, logged_in
from tests.store_helpers import done


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: the control socket's path must fit a sockaddr_un."""
    path = Path(tempfile.mkdtemp(prefix="pca", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


Serve = Callable[..., Awaitable[tuple[ServerProcess, int]]]


@pytest.fixture
def serve(processes: list[ServerProcess]) -> Serve:
    """Start ``twistd pychat`` on a data dir (killed after the test); its process and port."""

    async def start(data: Path, *extra: str) -> tuple[ServerProcess, int]:
        server = ServerProcess(data, *extra)
        processes.append(server)
        return server, await server.started()

    return start


async def _admin(*argv: str) -> tuple[str, int]:
    """Run pychat-admin in a thread (so the reactor here goes on, and no interpreter starts);
    return what it printed and its exit status."""

    def run() -> tuple[str, int]:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            code = admin(list(argv))
        return printed.getvalue(), code

    result: tuple[str, int] = await threads.deferToThread(run)
    return result


async def _admin_process(*argv: str) -> tuple[str, int]:
    """Run pychat-admin as its own process, as an operator does."""
    out, err, code = await getProcessOutputAndValue(
        sys.executable, ["-m", "pychat.admin.cli", *argv], env=dict(os.environ), path=str(ROOT)
    )
    return (out + err).decode(), code


async def _two_users(port: int) -> tuple[ClientProtocol, str]:
    for name in ("alice", "bob"):
        proto, params = await connect_srp(port)
        await auth.signup(proto, params, name, "pw", public_keys(name), kdf=KDF)
        proto.close()
    proto = await logged_in(port, "alice")
    reply = await proto.request("open_conversation", peer="bob", envelope=envelope())
    return proto, reply["conversation"]


@pytest_twisted.ensureDeferred
async def test_a_backup_while_messages_flow_restores_every_acknowledged_message(
    short_dir: Path, serve: Serve
) -> None:
    data = short_dir / "data"
    server, port = await serve(data)
    alice, conv = await _two_users(port)
    acked: dict[str, int] = {}
    sending = [True]

    async def pump() -> None:
        n = 0
        while sending[0] and n < 5000:
            wave = []
            for _ in range(10):
                cid = f"m{n}"
                n += 1
                d = alice.request("send", conversation=conv, epoch=1, ciphertext=cid, client_id=cid)
                d.addCallback(_acked, acked, cid)
                wave.append(d)
            try:
                await defer.gatherResults(wave, consumeErrors=True)
            except (defer.FirstError, ConnectionClosed, RemoteError):
                return

    pumping = defer.ensureDeferred(pump())
    for _ in range(500):
        if len(acked) >= 200:
            break
        await task.deferLater(reactor, 0.01, lambda: None)
    before = dict(acked)  # acknowledged before the backup began
    output, code = await _admin_process("--data-dir", str(data), "backup", str(short_dir / "b"))
    after_backup = len(acked)
    sending[0] = False
    await pumping
    assert code == 0, output
    assert after_backup > len(before), "messages kept flowing while the backup ran"

    output, code = await _admin("--data-dir", str(data), "stats")  # the running server answers
    assert code == 0 and f"messages       {len(acked)}" in output, output
    output, code = await _admin("--data-dir", str(data), "check")
    assert code == 1 and "stop it first" in output  # never beside a running server

    restored = short_dir / "restored"
    output, code = await _admin("--data-dir", str(restored), "restore", str(short_dir / "b"))
    assert code == 0, output
    shutil.copy2(data / "store.key", restored / "store.key")  # kept apart from backups
    output, code = await _admin("--data-dir", str(restored), "check")
    assert code == 0 and "ok: every file decrypts and parses" in output, output

    alice.close()
    await server.stop()
    again, port = await serve(restored)
    bob = await logged_in(port, "bob")
    by_id = {m["client_id"]: m["seq"] for m in await history_of(bob, conv)}
    missing = [cid for cid, seq in before.items() if by_id.get(cid) != seq]
    assert not missing, f"{len(missing)} acknowledged messages are not in the backup"
    bob.close()
    await again.stop()


@pytest_twisted.ensureDeferred
async def test_check_finds_damage_and_stats_works_on_a_stopped_server(
    short_dir: Path, serve: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    data = short_dir / "data"
    server, port = await serve(data)
    alice, conv = await _two_users(port)
    for i in range(5):
        await alice.request(
            "send", conversation=conv, epoch=1, ciphertext=f"c{i}", client_id=f"{i}"
        )
    alice.close()
    await server.stop()

    assert admin(["--data-dir", str(data), "stats"]) == 0
    out = capsys.readouterr().out
    assert "messages       5" in out and int(out.split("bytes")[1].split()[0]) > 1000
    assert admin(["--data-dir", str(data), "check"]) == 0
    assert "ok: every file decrypts and parses" in capsys.readouterr().out
    (log_file,) = (data / "conversations").glob("*.msg")
    raw = bytearray(log_file.read_bytes())
    raw[20] = ord("A") if raw[20] != ord("A") else ord("B")
    log_file.write_bytes(bytes(raw))
    assert admin(["--data-dir", str(data), "check"]) == 1
    out = capsys.readouterr().out
    assert "problem:" in out and "record 0 is damaged" in out
    assert log_file.read_bytes() == bytes(raw)  # reported, never modified
    (data / "invites.json").write_text("{not json")
    assert admin(["--data-dir", str(data), "check"]) == 1
    assert "invites file is unreadable" in capsys.readouterr().out


def test_restore_refuses_a_non_empty_data_dir_and_an_altered_backup(
    short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = short_dir / "data"
    (data / "accounts").mkdir(parents=True)
    assert (
        admin(["--data-dir", str(short_dir / "k"), "make-store-key", str(data / "store.key")]) == 0
    )
    assert admin(["--data-dir", str(data), "backup", str(short_dir / "b")]) == 0
    assert admin(["--data-dir", str(data), "restore", str(short_dir / "b")]) == 1
    assert "not empty" in capsys.readouterr().err
    manifest = short_dir / "b" / "pychat-backup.json"
    (short_dir / "b" / "accounts" / "stray.json").write_text("{}")
    listed = json.loads(manifest.read_text())
    listed["files"]["accounts/stray.json"] = {"size": 2, "sha256": "00"}  # it was altered
    manifest.write_text(json.dumps(listed))
    assert admin(["--data-dir", str(short_dir / "fresh"), "restore", str(short_dir / "b")]) == 1
    assert "does not match the manifest" in capsys.readouterr().err
    assert not (short_dir / "fresh").exists()


@pytest_twisted.ensureDeferred
async def test_a_disabled_user_is_refused_at_login_and_their_open_session_is_closed(
    short_dir: Path, serve: Serve
) -> None:
    data = short_dir / "data"
    server, port = await serve(data)
    alice, _conv = await _two_users(port)
    pushed: list[dict[str, Any]] = []
    alice.on_event = pushed.append
    output, code = await _admin("--data-dir", str(data), "disable", "Alice")
    assert code == 0 and "alice is disabled" in output, output
    await alice.closed_d.addTimeout(10, reactor)  # the open session is closed at once ...
    assert {"event": "closing", "reason": "account_disabled"}.items() <= pushed[-1].items()
    proto, params = await connect_srp(port)
    with pytest.raises(RemoteError) as refused:  # ... and a new login is refused
        await auth.login(proto, params, "alice", "pw")
    assert refused.value.code == "account_disabled"
    output, code = await _admin("--data-dir", str(data), "users")
    assert code == 0 and "alice" in output.split("disabled")[0], output
    output, code = await _admin("--data-dir", str(data), "enable", "alice")
    assert code == 0, output
    again = await logged_in(port, "alice")
    again.close()
    proto.close()
    await server.stop()
    # with the server stopped, pychat-admin changes the account itself
    output, code = await _admin("--data-dir", str(data), "disable", "bob")
    assert code == 0, output
    output, code = await _admin("--data-dir", str(data), "users")
    lines = {line.split()[0]: line for line in output.splitlines()[1:]}
    assert "disabled" in lines["bob"] and "active" in lines["alice"], output
    assert lines["alice"].split()[-1] == "1"  # alice's one conversation


@pytest_twisted.ensureDeferred
async def test_a_reset_account_can_sign_up_again_and_its_peers_see_new_keys(
    short_dir: Path, serve: Serve
) -> None:
    data = short_dir / "data"
    server, port = await serve(data)
    alice, conv = await _two_users(port)
    output, code = await _admin("--data-dir", str(data), "reset", "alice")
    assert code == 1 and "--yes" in output  # no terminal: it asks for --yes
    output, code = await _admin("--data-dir", str(data), "reset", "alice", "--yes")
    assert code == 0, output
    await alice.closed_d.addTimeout(10, reactor)  # her session is closed
    proto, params = await connect_srp(port)
    fresh = public_keys("alice-again")
    await auth.signup(proto, params, "alice", "new pw", fresh, kdf=KDF)
    proto.close()
    bob = await logged_in(port, "bob")
    keys = await bob.request("get_keys", username="alice")
    assert keys["public_keys"] == fresh  # bob's client sees a different key: a key change
    assert [c["conversation"] for c in (await bob.request("conversations"))["conversations"]] == [
        conv
    ]  # the conversation is still there
    bob.close()
    await server.stop()


@pytest_twisted.ensureDeferred
async def test_invites_are_single_use_and_a_closed_server_takes_no_signup(
    short_dir: Path, serve: Serve
) -> None:
    data = short_dir / "data"
    server, port = await serve(data, "--signup", "invite")
    output, code = await _admin("--data-dir", str(data), "invite", "--hours", "1")
    assert code == 0, output
    invite = output.split("invite: ", 1)[1].split()[0]
    assert invite not in (data / "invites.json").read_text()  # only its hash is kept

    async def signup(name: str, code: str | None) -> str:
        proto, params = await connect_srp(port)
        assert params is not None
        try:
            await auth.signup(
                proto,
                params,
                name,
                "pw",
                public_keys(name),
                kdf=KDF,
                invite=code,
            )
        except RemoteError as exc:
            return exc.code
        finally:
            proto.close()
        return "ok"

    endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", port, CertificateOptions())
    raw: ClientProtocol = await connectProtocol(endpoint, ClientProtocol())
    assert (await raw.request("hello", version=1))["signup"] == "invite"  # announced
    raw.close()
    assert await signup("alice", None) == "invite_required"
    assert await signup("alice", "not-a-code") == "bad_invite"
    assert await signup("alice", invite) == "ok"
    assert await signup("bob", invite) == "bad_invite"  # single use
    await server.stop()

    closed, port = await serve(data, "--signup", "closed")
    assert await signup("carol", None) == "signup_closed"
    await closed.stop()


@pytest_twisted.ensureDeferred
async def test_a_deleted_account_takes_its_conversations_and_stays_gone_after_a_crash(
    short_dir: Path, serve: Serve
) -> None:
    data = short_dir / "data"
    server, port = await serve(data)
    alice, conv = await _two_users(port)
    await alice.request("send", conversation=conv, epoch=1, ciphertext="bye", client_id="c1")
    output, code = await _admin("--data-dir", str(data), "delete", "alice", "--yes")
    assert code == 0 and "with 1 conversation" in output, output
    await alice.closed_d.addTimeout(10, reactor)
    assert not list((data / "conversations").glob("*.msg"))  # the files are gone
    bob = await logged_in(port, "bob")
    assert (await bob.request("conversations"))["conversations"] == []  # for bob too
    with pytest.raises(RemoteError) as gone:
        await bob.request("get_keys", username="alice")
    assert gone.value.code == "unknown_user"
    bob.close()
    server.kill()  # no clean stop: the journal still names the deleted logs
    again, port = await serve(data)
    bob = await logged_in(port, "bob")
    assert (await bob.request("conversations"))["conversations"] == []  # not brought back
    bob.close()
    await again.stop()


@pytest_twisted.ensureDeferred
async def test_rotate_store_key_re_encrypts_a_real_servers_store(
    short_dir: Path, serve: Serve
) -> None:
    data = short_dir / "data"
    server, port = await serve(data)
    alice, conv = await _two_users(port)
    for i in range(20):
        await alice.request(
            "send", conversation=conv, epoch=1, ciphertext=f"c{i}", client_id=f"{i}"
        )
    output, code = await _admin("--data-dir", str(data), "rotate-store-key")
    assert code == 1 and "stop it first" in output  # never beside a running server
    alice.close()
    await server.stop()
    old_key = (data / "store.key").read_bytes()
    output, code = await _admin("--data-dir", str(data), "rotate-store-key")
    assert code == 0 and "20 messages under a new key" in output, output
    assert (data / "store.key").read_bytes() != old_key
    output, code = await _admin("--data-dir", str(data), "check")
    assert code == 0, output
    again, port = await serve(data)
    bob = await logged_in(port, "bob")
    assert [m["ciphertext"] for m in await history_of(bob, conv)] == [f"c{i}" for i in range(20)]
    bob.close()
    await again.stop()


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"not json", "not a control request"),
        (b'{"no": "op"}', "not a control request"),
        (b'{"op": "format-disk"}', "unknown op 'format-disk'"),
        (b'{"op": "backup", "path": "relative/dir"}', "backup needs an absolute path"),
        (b'{"op": "disable"}', "name the user"),
        (b'{"op": "invite", "hours": -1}', "hours must be a number"),
    ],
)
def test_the_control_socket_answers_bad_requests_with_a_reason(line: bytes, error: str) -> None:
    from types import SimpleNamespace

    from pychat.server.control import ControlService

    control = ControlService(None, Path("/nonexistent"), SimpleNamespace(store=None))  # type: ignore[arg-type]
    answer = done(defer.ensureDeferred(control.answer(line)))
    assert answer["ok"] is False and error in answer["error"]


def _acked(reply: dict[str, Any], acked: dict[str, int], cid: str) -> None:
    acked[cid] = reply["seq"]

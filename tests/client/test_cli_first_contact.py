"""The ``pychat`` command in-process: first contact with a server, timeouts, and bad input.

Each test runs the real command (``pychat.client.cli._run``) on the test's reactor, with a
server that records every byte it received, so "nothing was sent" is checked, not assumed.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import protocol, reactor, ssl

from pychat.client.cli import _run
from pychat.client.cli_parser import build_parser
from pychat.client.pins import FILE as PIN_FILE
from pychat.server.protocol import ChatServerProtocol
from pychat.testing import RunningServer
from pychat.tls import CERT_FILE, KEY_FILE
from tests.client_helpers import signed_up

pytestmark = pytest.mark.usefixtures("cheap_kdf")

PASSWORD = "pw-for-tests"


class FakeStdin:
    """Standard input for the command: a terminal or not, with what the user will type."""

    def __init__(self, tty: bool, answer: str = "", data: bytes = b"") -> None:
        self.tty = tty
        self.answer = answer
        self.buffer = io.BytesIO(data)
        self.asked: list[list[bytes]] = []  # what the server had received at each question
        self.received: list[bytes] = []

    def isatty(self) -> bool:
        return self.tty

    def readline(self) -> str:
        self.asked.append(list(self.received))
        return self.answer + "\n"


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Every chunk of plaintext any server connection receives during the test."""
    chunks: list[bytes] = []
    original = ChatServerProtocol.dataReceived

    def recording(self: ChatServerProtocol, data: bytes) -> None:
        chunks.append(data)
        original(self, data)

    monkeypatch.setattr(ChatServerProtocol, "dataReceived", recording)
    yield chunks


async def pychat(
    monkeypatch: pytest.MonkeyPatch, stdin: FakeStdin, *argv: str, password: str = PASSWORD
) -> int:
    monkeypatch.setattr(sys, "stdin", stdin)
    monkeypatch.setenv("PYCHAT_PASSWORD", password)
    return await _run(reactor, build_parser().parse_args(list(argv)))


def common(server: RunningServer | int, home: Path, user: str = "alice") -> list[str]:
    port = server if isinstance(server, int) else server.port
    return ["--server", f"127.0.0.1:{port}", "--home", str(home), f"--user={user}"]


@pytest_twisted.ensureDeferred
async def test_first_contact_without_a_terminal_is_refused_and_sends_nothing(
    server: RunningServer,
    tmp_path: Path,
    received: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = await pychat(monkeypatch, FakeStdin(tty=False), "login", *common(server, tmp_path))
    err = capsys.readouterr().err
    assert code == 4
    assert server.fingerprint in err and f"--accept-server {server.fingerprint}" in err
    assert received == []  # not even hello
    assert not (tmp_path / PIN_FILE).exists()


@pytest_twisted.ensureDeferred
async def test_first_contact_with_a_terminal_asks_before_any_proof_is_sent(
    server: RunningServer,
    tmp_path: Path,
    received: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await signed_up(server, tmp_path / "elsewhere", "alice", PASSWORD)
    received.clear()
    refuse = FakeStdin(tty=True, answer="n")
    refuse.received = received
    code = await pychat(monkeypatch, refuse, "login", *common(server, tmp_path))
    assert code == 4 and refuse.asked == [[]] and received == []
    assert "Accept and pin it? [y/N]" in capsys.readouterr().err

    accept = FakeStdin(tty=True, answer="y")
    accept.received = received
    code = await pychat(monkeypatch, accept, "login", *common(server, tmp_path))
    assert code == 0, capsys.readouterr().err
    assert accept.asked == [[]]  # asked while the server had received nothing
    sent = b"".join(received)
    assert b"login_start" in sent and b"login_finish" in sent  # and only then logged in


@pytest_twisted.ensureDeferred
async def test_signup_shows_the_fingerprint_before_the_account_exists(
    server: RunningServer,
    tmp_path: Path,
    received: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stdin = FakeStdin(tty=True, answer="y")
    stdin.received = received
    code = await pychat(
        monkeypatch,
        stdin,
        "signup",
        *common(server, tmp_path),
        "--allow-weak-password",
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert stdin.asked == [[]]  # the question came before anything was sent
    assert server.fingerprint in err.split("Accept and pin it?")[0]
    assert "created account alice" in out


@pytest_twisted.ensureDeferred
async def test_a_wrong_accept_server_fingerprint_is_refused(
    server: RunningServer,
    tmp_path: Path,
    received: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = ":".join(["AB"] * 32)
    code = await pychat(
        monkeypatch,
        FakeStdin(tty=False),
        "login",
        *common(server, tmp_path),
        "--accept-server",
        wrong,
    )
    err = capsys.readouterr().err
    assert code == 4 and "not the one you gave" in err and server.fingerprint in err
    assert received == []


@pytest_twisted.ensureDeferred
async def test_another_address_of_a_pinned_server_is_the_same_server(
    server: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await signed_up(server, tmp_path, "alice", PASSWORD)  # pins 127.0.0.1:PORT, keystore
    argv = ["--server", f"localhost:{server.port}", "--home", str(tmp_path), "--user", "alice"]
    code = await pychat(monkeypatch, FakeStdin(tty=False), "login", *argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"localhost:{server.port} is the same server as 127.0.0.1:{server.port}" in err
    # the keystore of the first address is used, not rebuilt under a new name
    assert f"on 127.0.0.1:{server.port}" in out
    assert sorted(p.name for p in (tmp_path / "keystores").iterdir()) == [
        f"127.0.0.1_{server.port}"
    ]


def _listen(factory: protocol.Factory, tls: Path | None = None) -> Any:
    if tls is None:
        return reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[arg-type]
    cert = ssl.PrivateCertificate.loadPEM(
        (tls / CERT_FILE).read_text() + (tls / KEY_FILE).read_text()
    )
    return reactor.listenSSL(0, factory, cert.options(), interface="127.0.0.1")  # type: ignore[attr-defined]


@pytest_twisted.ensureDeferred
async def test_a_port_that_never_answers_times_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _listen(protocol.Factory.forProtocol(protocol.Protocol))
    try:
        code = await pychat(
            monkeypatch,
            FakeStdin(tty=False),
            "login",
            *common(port.getHost().port, tmp_path),
            "--connect-timeout",
            "0.3",
        )
    finally:
        await port.stopListening()
    err = capsys.readouterr().err
    assert code == 5
    assert "TLS handshake did not finish within 0.3 s" in err


class _NotPyChat(protocol.Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")  # type: ignore[union-attr]
        self.transport.loseConnection()  # type: ignore[union-attr]


class _Silent(protocol.Protocol):
    pass


@pytest.mark.parametrize("behaviour", [_NotPyChat, _Silent])
@pytest_twisted.ensureDeferred
async def test_a_tls_server_that_is_not_pychat_is_named_so(
    behaviour: type[protocol.Protocol],
    server: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Same certificate as the real server, so the pin is accepted and hello is tried.
    port = _listen(protocol.Factory.forProtocol(behaviour), server.config.data_dir)
    try:
        code = await pychat(
            monkeypatch,
            FakeStdin(tty=False),
            "login",
            *common(port.getHost().port, tmp_path),
            "--accept-server",
            server.fingerprint,
            "--timeout",
            "0.5",
        )
    finally:
        await port.stopListening()
    err = capsys.readouterr().err
    assert code == 5 and "is not a pyChat server" in err, err


@pytest_twisted.ensureDeferred
async def test_invalid_utf8_on_stdin_is_one_clear_line(
    server: RunningServer,
    tmp_path: Path,
    received: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stdin = FakeStdin(tty=False, data=b"caf\xc3\xa9 \xff\xfe oops")
    code = await pychat(
        monkeypatch,
        stdin,
        "send",
        "bob",
        "-",
        *common(server, tmp_path),
        "--accept-server",
        server.fingerprint,
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (
        "pychat: standard input is not valid UTF-8 (byte 0xff at offset 6); nothing was sent"
    )
    assert received == []


@pytest_twisted.ensureDeferred
async def test_undecodable_argument_text_is_refused_without_internal_data(
    server: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alice = await signed_up(server, tmp_path, "alice", PASSWORD)
    await signed_up(server, tmp_path / "bob", "bob", PASSWORD)
    await alice.close()
    bad = b"bad \xff text".decode("utf-8", "surrogateescape")  # how argv carries such bytes
    code = await pychat(
        monkeypatch, FakeStdin(tty=False), "send", "bob", bad, *common(server, tmp_path)
    )
    err = capsys.readouterr().err
    assert code == 2 and "not valid text" in err and "<U+DCFF>" in err
    assert "counter" not in err and "device" not in err and len(err.strip().splitlines()) == 1


@pytest_twisted.ensureDeferred
async def test_a_too_long_message_says_the_limit(
    server: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alice = await signed_up(server, tmp_path, "alice", PASSWORD)
    await signed_up(server, tmp_path / "bob", "bob", PASSWORD)
    limit = int(alice.hello()["limits"]["max_ciphertext"])
    await alice.close()
    code = await pychat(
        monkeypatch, FakeStdin(tty=False), "send", "bob", "x" * limit, *common(server, tmp_path)
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"at most {limit} bytes of ciphertext, about" in err and "characters" in err


@pytest.mark.parametrize("user", ["-bad", "a", "name with spaces", "\u0430lice"])
@pytest_twisted.ensureDeferred
async def test_a_bad_username_exits_2_before_connecting(
    user: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = await pychat(monkeypatch, FakeStdin(tty=False), "login", *common(1, tmp_path, user))
    assert code == 2 and "bad username" in capsys.readouterr().err


@pytest_twisted.ensureDeferred
async def test_a_one_character_password_is_refused_at_signup(
    server: RunningServer,
    tmp_path: Path,
    received: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["signup", *common(server, tmp_path), "--accept-server", server.fingerprint]
    code = await pychat(monkeypatch, FakeStdin(tty=False), *argv, password="a")
    err = capsys.readouterr().err
    assert code == 2 and "too easy to guess" in err
    assert received == []  # refused before connecting
    code = await pychat(
        monkeypatch, FakeStdin(tty=False), *argv, "--allow-weak-password", password="a"
    )
    assert code == 0, capsys.readouterr().err


@pytest.mark.parametrize("command", ["signup", "conversations"])
@pytest_twisted.ensureDeferred
async def test_the_certificate_is_asked_about_before_the_password(
    command: str, server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if command != "signup":
        await (await signed_up(server, tmp_path / "other", "alice", PASSWORD)).close()
    asked: list[str] = []
    stdin = FakeStdin(tty=True, answer="y")

    def answer() -> str:
        asked.append("certificate")
        return "y\n"

    monkeypatch.setattr(stdin, "readline", answer)
    from pychat.client import cli

    def password(*args: Any, **kwargs: Any) -> str:  # typed at the prompt
        asked.append("password")
        return PASSWORD

    monkeypatch.setattr(cli, "_read_password", password)
    home = str(tmp_path / "home")
    server_at = f"127.0.0.1:{server.port}"
    weak_ok = ["--allow-weak-password"] if command == "signup" else []
    argv = ["--server", server_at, "--home", home, "--user", "alice", command, *weak_ok]
    monkeypatch.setattr(sys, "stdin", stdin)
    monkeypatch.delenv("PYCHAT_PASSWORD", raising=False)  # asked for, not given
    code = await _run(reactor, build_parser().parse_args(argv))
    assert code == 0 and asked[:2] == ["certificate", "password"]

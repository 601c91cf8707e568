"""``pychat``: the command-line client.

Without a subcommand it opens the full-screen TUI; subcommands are for scripts and quick use.
Exit codes (also in ``pychat --help`` and docs/client.md):

==  =============================================================================
0   success
1   an error (the message says which)
2   bad usage (unknown option, missing argument)
3   authentication failed: wrong username or password, or too many attempts
4   trust failure: the server certificate or a peer's key changed, or the server
    failed to prove it knows your password verifier
5   cannot connect to the server
6   ``read``/``listen``: some messages failed verification (they are shown as REJECTED)
==  =============================================================================
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from twisted.internet import defer, task

from pychat import __version__
from pychat.client.address import AddressError, ServerAddress
from pychat.client.config import ClientConfig, ConfigError, default_home
from pychat.client.keystore import KeystoreError
from pychat.client.pins import PinFileError, ServerPins
from pychat.client.protocol import ConnectionClosed, RemoteError
from pychat.client.session import ChatClient, ChatMessage, ClientError, ClientEvent, TrustError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_AUTH, EXIT_TRUST, EXIT_CONNECT, EXIT_REJECTED = range(7)

EPILOG = """\
passwords: from --password-file, else $PYCHAT_PASSWORD, else a prompt (no echo).
  passwd takes the new one from --new-password-file, $PYCHAT_NEW_PASSWORD or a prompt.
exit codes: 0 ok, 1 error, 2 bad usage, 3 authentication failed, 4 trust failure
  (certificate or key changed), 5 cannot connect, 6 some messages failed verification.
settings: --config (default $XDG_CONFIG_HOME/pychat/config.toml) may set server and user.
docs: docs/client.md"""


class CliError(Exception):
    """Ends the command with ``code`` after printing ``message`` to stderr."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (public so docs and tests can render it)."""

    def common_options(default: Any) -> argparse.ArgumentParser:
        # The same options are accepted before and after the command; after it they must not
        # reset what was given before it, hence SUPPRESS as the sub-parsers' default.
        common = argparse.ArgumentParser(add_help=False)
        common.add_argument(
            "--server", default=default, help="server as host[:port] (default port 8765)"
        )
        common.add_argument("--user", default=default, help="your username")
        common.add_argument(
            "--home",
            type=Path,
            default=default,
            help="client data dir (default $XDG_DATA_HOME/pychat)",
        )
        common.add_argument("--config", type=Path, default=default, help="settings file")
        common.add_argument(
            "--password-file", type=Path, default=default, help="read the password from this file"
        )
        common.add_argument(
            "--ca", type=Path, default=default,
            help="verify the server with this CA certificate (PEM) instead of pinning",
        )  # fmt: skip
        return common

    common = common_options(None)
    sub_common = common_options(argparse.SUPPRESS)

    parser = argparse.ArgumentParser(
        prog="pychat",
        description="pyChat: end-to-end encrypted chat. "
        "Without a command, opens the full-screen client.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"pychat {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, parents=[sub_common])

    add("tui", "open the full-screen client")
    add("signup", "create an account (new identity keys, keystore, key backup on the server)")
    add("login", "check your credentials and set up this machine's keystore")
    p = add("send", "send a message")
    p.add_argument("peer")
    p.add_argument("text", help="the message, or - to read it from standard input")
    p = add("read", "print messages")
    p.add_argument("peer")
    p.add_argument("--since", type=int, default=0, help="only messages after this sequence number")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--mark-read", action="store_true", help="mark what was printed as read")
    p = add("conversations", "list your conversations")
    p.add_argument("--json", action="store_true")
    p = add("fingerprint", "show your identity fingerprint, or a peer's pinned one")
    p.add_argument("peer", nargs="?")
    p = add("verify", "show the safety number to compare with a peer")
    p.add_argument("peer")
    p = add("trust", "accept a peer's current key (after a change) and mark it verified")
    p.add_argument("peer")
    p = add("rotate", "start a new conversation key with a peer")
    p.add_argument("peer")
    p = add("passwd", "change your password")
    p.add_argument("--new-password-file", type=Path)
    p = add("listen", "print incoming messages until interrupted")
    p.add_argument("--json", action="store_true")
    p = add("accept-server", "pin a server certificate (after checking it with the operator)")
    p.add_argument("address", help="host[:port]")
    p.add_argument("fingerprint", help="SHA-256 fingerprint as the server prints it")
    return parser


def _password_from(file: Path | None, env_var: str, prompt: str, *, confirm: bool) -> str:
    """A password from ``file`` (first line), else ``$env_var``, else a no-echo prompt."""
    if file is not None:
        try:
            return str(file.read_text(encoding="utf-8").splitlines()[0])
        except (OSError, IndexError) as exc:
            raise CliError(f"cannot read a password from {file}: {exc}") from None
    env = os.environ.get(env_var)
    if env:
        return env
    if not sys.stdin.isatty():
        raise CliError(f"no password: give a password file or set {env_var}", EXIT_USAGE)
    password = getpass.getpass(prompt)
    if confirm and getpass.getpass("Again: ") != password:
        raise CliError("the passwords do not match", EXIT_USAGE)
    return password


def _read_password(
    args: argparse.Namespace, *, confirm: bool = False, prompt: str = "Password: "
) -> str:
    return _password_from(args.password_file, "PYCHAT_PASSWORD", prompt, confirm=confirm)


def _new_password(args: argparse.Namespace) -> str:
    return _password_from(
        args.new_password_file, "PYCHAT_NEW_PASSWORD", "New password: ", confirm=True
    )


def _when(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def format_message(message: ChatMessage) -> str:
    """One line for a person."""
    if message.status == "verified":
        return f"{_when(message.time)} #{message.seq} {message.sender}: {message.text}"
    return f"{_when(message.time)} #{message.seq} {message.sender}: [REJECTED: {message.reason}]"


def _grouped(fingerprint: str) -> str:
    return " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))


class Command:
    """One run of ``pychat COMMAND``."""

    def __init__(self, args: argparse.Namespace, config: ClientConfig) -> None:
        self.args = args
        server = args.server or os.environ.get("PYCHAT_SERVER") or config.server or "localhost"
        try:
            self.address = ServerAddress.parse(server)
        except AddressError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
        self.home: Path = args.home or default_home()
        self.user: str | None = args.user or os.environ.get("PYCHAT_USER") or config.user
        self.client = ChatClient(
            self.address, self.home, ca=args.ca, on_new_server=self._new_server
        )

    def _new_server(self, server: str, fingerprint: str) -> bool:
        print(
            f"pychat: first contact with {server}; pinned its certificate\n  {fingerprint}\n"
            "Compare it with the fingerprint the server printed at start.",
            file=sys.stderr,
        )
        return True

    def _need_user(self) -> str:
        if not self.user:
            raise CliError(
                "no user: give --user, set PYCHAT_USER, or put user in the config file", EXIT_USAGE
            )
        return self.user

    async def _login(self) -> None:
        await self.client.login(self._need_user(), _read_password(self.args))

    async def run(self) -> int:
        name = self.args.command
        handler = getattr(self, "cmd_" + name.replace("-", "_"))
        try:
            result: int = await handler()
            return result
        finally:
            if name != "accept-server":
                await self.client.close()

    async def cmd_signup(self) -> int:
        user = self._need_user()
        password = _read_password(self.args, confirm=True)
        name = await self.client.signup(user, password)
        print(f"created account {name} on {self.client.server}")
        await self.client.login(name, password)
        print(f"your fingerprint: {_grouped(self.client.my_fingerprint())}")
        return EXIT_OK

    async def cmd_login(self) -> int:
        await self._login()
        print(f"logged in as {self.client.username} on {self.client.server}")
        print(f"your fingerprint: {_grouped(self.client.my_fingerprint())}")
        return EXIT_OK

    async def cmd_send(self) -> int:
        text = sys.stdin.read() if self.args.text == "-" else self.args.text
        if self.args.text == "-" and text.endswith("\n"):
            text = text[:-1]
        if not text:
            raise CliError("nothing to send", EXIT_USAGE)
        await self._login()
        seq = await self.client.send(self.args.peer, text)
        print(f"sent #{seq}")
        return EXIT_OK

    async def cmd_read(self) -> int:
        await self._login()
        messages = await self.client.read(self.args.peer, since=self.args.since)
        for m in messages:
            print(
                json.dumps(m.to_json(), ensure_ascii=False) if self.args.json else format_message(m)
            )
        if self.args.mark_read and messages:
            await self.client.mark_read(self.args.peer, messages[-1].seq)
        return EXIT_REJECTED if any(m.status != "verified" for m in messages) else EXIT_OK

    async def cmd_conversations(self) -> int:
        await self._login()
        for c in await self.client.conversations():
            if self.args.json:
                print(json.dumps(c, ensure_ascii=False))
                continue
            online = {True: "online", False: "offline", None: "-"}[c["peer_online"]]
            print(
                f"{c['peer']:<20} unread {c['unread']:<5} "
                f"last {_when(c['last_activity'])}  {online}"
            )
        return EXIT_OK

    async def cmd_fingerprint(self) -> int:
        await self._login()
        if self.args.peer:
            identity = await self.client.peer_identity(self.args.peer)
            print(f"{self.args.peer}: {_grouped(identity.fingerprint())}")
        else:
            print(f"{self.client.username}: {_grouped(self.client.my_fingerprint())}")
        return EXIT_OK

    async def cmd_verify(self) -> int:
        await self._login()
        number, verified = await self.client.safety_number(self.args.peer)
        groups = number.split()
        print(f"safety number with {self.args.peer}:")
        print("  " + " ".join(groups[:6]))
        print("  " + " ".join(groups[6:]))
        if verified:
            print(f"{self.args.peer} is marked verified.")
        else:
            print(
                f"Compare it with {self.args.peer} (in person or on a call); "
                f"if it matches: pychat trust {self.args.peer}"
            )
        return EXIT_OK

    async def cmd_trust(self) -> int:
        await self._login()
        fingerprint = await self.client.trust(self.args.peer)
        print(f"{self.args.peer} is verified: {_grouped(fingerprint)}")
        return EXIT_OK

    async def cmd_rotate(self) -> int:
        await self._login()
        epoch = await self.client.rotate(self.args.peer)
        print(f"new conversation key with {self.args.peer}: epoch {epoch}")
        return EXIT_OK

    async def cmd_passwd(self) -> int:
        old = _read_password(self.args, prompt="Current password: ")
        new = _new_password(self.args)
        await self.client.login(self._need_user(), old)
        await self.client.change_password(old, new)
        print("password changed (server, key backup and this machine's keystore)")
        return EXIT_OK

    async def cmd_listen(self) -> int:
        await self._login()
        stop: defer.Deferred[int] = defer.Deferred()
        rejected = False

        def on_event(event: ClientEvent) -> None:
            nonlocal rejected
            if event.kind == "message" and event.message is not None:
                m = event.message
                rejected = rejected or m.status != "verified"
                line = (
                    json.dumps(m.to_json(), ensure_ascii=False)
                    if self.args.json
                    else f"[{m.peer}] {format_message(m)}"
                )
                print(line, flush=True)
            elif event.kind == "keys_changed" and "warning" in event.data:
                print(event.data["warning"], file=sys.stderr, flush=True)
            elif event.kind == "connection" and event.data.get("state") == "refused":
                print(event.data.get("reason"), file=sys.stderr, flush=True)
                if not stop.called:
                    stop.callback(EXIT_TRUST)

        self.client.listeners.append(on_event)
        from twisted.internet import reactor

        def finish() -> None:
            if not stop.called:
                stop.callback(EXIT_REJECTED if rejected else EXIT_OK)

        def interrupted(*_: Any) -> None:
            reactor.callFromThread(finish)  # type: ignore[attr-defined]

        signal.signal(signal.SIGINT, interrupted)
        signal.signal(signal.SIGTERM, interrupted)
        print(f"listening as {self.client.username}; Ctrl-C to stop", file=sys.stderr, flush=True)
        return await stop

    async def cmd_accept_server(self) -> int:
        try:
            address = ServerAddress.parse(self.args.address)
        except AddressError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
        fingerprint = self.args.fingerprint.strip().upper()
        hexpart = fingerprint.replace(":", "")
        if len(hexpart) != 64 or any(c not in "0123456789ABCDEF" for c in hexpart):
            raise CliError("a fingerprint is 32 hex pairs, e.g. AB:CD:...", EXIT_USAGE)
        normal = ":".join(hexpart[i : i + 2] for i in range(0, 64, 2))
        ServerPins(self.home).pin(str(address), normal)
        print(f"pinned {address}: {normal}")
        return EXIT_OK


def _exit_code_for(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, CliError):
        return exc.code, str(exc)
    if isinstance(exc, TrustError):
        return EXIT_TRUST, str(exc)
    if isinstance(exc, RemoteError):
        if exc.code in ("auth_failed", "rate_limited"):
            return EXIT_AUTH, exc.message
        return EXIT_ERROR, f"{exc.message} ({exc.code})"
    if isinstance(exc, ClientError) and str(exc).startswith("cannot connect"):
        return EXIT_CONNECT, str(exc)
    if isinstance(exc, ClientError | KeystoreError | PinFileError | ConfigError):
        return EXIT_ERROR, str(exc)
    if isinstance(exc, ConnectionClosed):
        return EXIT_CONNECT, f"the connection closed: {exc}"
    return EXIT_ERROR, f"unexpected error: {exc!r}"


async def _run(reactor: Any, args: argparse.Namespace) -> int:
    try:
        config = ClientConfig.load(args.config)
        return await Command(args, config).run()
    except Exception as exc:
        code, message = _exit_code_for(exc)
        print(f"pychat: {message}", file=sys.stderr)
        return code


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the ``pychat`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in (None, "tui"):
        from pychat.tui.app import run_tui

        raise SystemExit(run_tui(args))

    async def run(reactor: Any) -> None:
        code = await _run(reactor, args)
        if code:
            raise SystemExit(code)  # task.react exits with it

    task.react(lambda reactor: defer.ensureDeferred(run(reactor)))
    raise SystemExit(EXIT_ERROR)  # not reached: task.react exits the process

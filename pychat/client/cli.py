"""``pychat``: the command-line client.

Without a subcommand it opens the full-screen TUI; subcommands are for scripts and quick use.
Exit codes (also in ``pychat --help`` and docs/client.md):

==  =============================================================================
0   success
1   an error (the message says which)
2   bad usage (unknown option, missing argument)
3   authentication failed: wrong username or password, or too many attempts
4   trust failure: the server certificate changed or was not accepted on first
    contact, a peer's key changed, or the server failed to prove it knows your
    password verifier
5   cannot connect: no TCP connection or TLS handshake in time, not a pyChat
    server, or the server stopped answering
6   ``read``/``listen``: some messages failed verification (they are shown as REJECTED)
==  =============================================================================

Everything printed that came from the server or a peer goes through
:mod:`pychat.text.safe`: control characters show as ``^[``-style escapes, and the continuation
lines of a multi-line message are indented behind a ``│`` gutter so they cannot pass for
messages of their own.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from twisted.internet import defer, task

from pychat.client.address import AddressError, ServerAddress
from pychat.client.cli_errors import (
    EXIT_AUTH,
    EXIT_CONNECT,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_TRUST,
    EXIT_USAGE,
    CliError,
)
from pychat.client.cli_features import FeatureCommands
from pychat.client.cli_groups import GroupCommands, group_target
from pychat.client.config import ClientConfig, ConfigError, default_home
from pychat.client.keystore import KeystoreError
from pychat.client.outbox import OutboxEntry
from pychat.client.password_strength import WeakPassword, check_password
from pychat.client.pins import PinFileError, ServerPins
from pychat.client.protocol import ConnectionClosed, RemoteError
from pychat.client.session import (
    ChatClient,
    ChatMessage,
    ClientError,
    ClientEvent,
    ConnectError,
    MessageTooLong,
    ReplyTimeout,
    Timeouts,
    TrustError,
    UnsendableText,
)
from pychat.text.safe import json_line, visible, visible_lines
from pychat.wire.usernames import UsernameError, normalize


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


def _password_given(args: argparse.Namespace) -> bool:
    """Whether the password comes from a file or the environment (no prompt)."""
    return args.password_file is not None or bool(os.environ.get("PYCHAT_PASSWORD"))


def _new_password(args: argparse.Namespace) -> str:
    return _password_from(
        args.new_password_file, "PYCHAT_NEW_PASSWORD", "New password: ", confirm=True
    )


def _when(ts: object) -> str:
    try:
        return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return "????-??-?? ??:??"  # a server's or peer's impossible time


#: Marks the continuation lines of a multi-line message (see docs/client.md).
GUTTER = "    │ "


def format_message(message: ChatMessage) -> str:
    """A message for a person: one line, plus a gutter-marked line for each further line of a
    multi-line text.  Nothing in it can act on the terminal."""
    when = _when(message.time)
    if message.clock_differs:
        when += f" (their clock: {_when(message.sender_time)})"
    head = f"{when} #{message.seq} {visible(message.sender)}: "
    if message.status != "verified":
        return head + f"[REJECTED: {visible(message.reason or '')}]"
    if message.action:  # an emote: "* alice waves"
        head = f"{when} #{message.seq} * {visible(message.sender)} "
    ref = message.reference
    if message.kind == "reaction" and ref is not None:
        said = (
            f"reacted {visible(message.text or '')} to"
            if message.text
            else "took back a reaction to"
        )
        return f"{when} #{message.seq} {visible(message.sender)} {said} #{ref.seq}"
    if message.kind == "reply" and ref is not None:
        head += f'(re #{ref.seq} "{visible(ref.quote or "")}") '
    first, *rest = visible_lines(message.text or "")
    return "\n".join([head + first, *(GUTTER + line for line in rest)])


def normal_fingerprint(text: str) -> str:
    """A SHA-256 certificate fingerprint as ``AB:CD:...``, from any case, with or without
    colons.

    :raises CliError: it is not 32 hex pairs (exit code 2).
    """
    hexpart = text.strip().upper().replace(":", "")
    if len(hexpart) != 64 or any(c not in "0123456789ABCDEF" for c in hexpart):
        raise CliError("a fingerprint is 32 hex pairs, e.g. AB:CD:...", EXIT_USAGE)
    return ":".join(hexpart[i : i + 2] for i in range(0, 64, 2))


def _read_stdin_text() -> str:
    """Standard input as UTF-8 text; invalid UTF-8 is refused with where it is."""
    raw = sys.stdin.buffer.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(
            f"standard input is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}); nothing was sent",
            EXIT_USAGE,
        ) from None


def _safety_lines(number: str) -> str:
    groups = number.split()
    return "  " + " ".join(groups[:6]) + "\n  " + " ".join(groups[6:])


def _grouped(fingerprint: str) -> str:
    return " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))


class Command(FeatureCommands, GroupCommands):
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
        expected = args.accept_server or config.server_fingerprint
        self.expected_fingerprint = normal_fingerprint(expected) if expected else None
        defaults = Timeouts()
        connect = args.connect_timeout or config.connect_timeout or defaults.connect
        reply = args.timeout or config.timeout or defaults.request
        if connect <= 0 or reply <= 0:
            raise CliError("timeouts are a number of seconds above 0", EXIT_USAGE)
        self.client = ChatClient(
            self.address,
            self.home,
            ca=args.ca,
            on_new_server=self._new_server,
            timeouts=Timeouts(connect=connect, handshake=connect, request=reply),
        )
        self.client.listeners.append(EventPrinter())

    def _new_server(self, server: str, fingerprint: str) -> bool:
        """First contact: pin only what the user accepted; nothing was sent to the server yet."""
        if self.expected_fingerprint is not None:
            if self.expected_fingerprint != fingerprint:
                raise TrustError(
                    f"the certificate of {server} has the fingerprint\n  {fingerprint}\n"
                    f"not the one you gave\n  {self.expected_fingerprint}\n"
                    "Nothing was sent. Check the address and the fingerprint with the operator."
                )
            print(f"pychat: pinned the certificate of {server}: {fingerprint}", file=sys.stderr)
            return True
        about = (
            f"first contact with {server}. Its certificate fingerprint (SHA-256) is\n"
            f"  {fingerprint}\n"
            "Compare it with the fingerprint the server printed when it started."
        )
        if sys.stdin.isatty():
            print(f"pychat: {about}", file=sys.stderr)
            print("Accept and pin it? [y/N] ", end="", file=sys.stderr, flush=True)
            answer = sys.stdin.readline().strip().lower()
            return answer in ("y", "yes")
        raise TrustError(
            f"{about}\nNothing was sent. If it matches, run the command again with\n"
            f"  --accept-server {fingerprint}\n"
            f"or pin it once with: pychat accept-server {server} {fingerprint}"
        )

    def _need_user(self) -> str:
        if not self.user:
            raise CliError(
                "no user: give --user, set PYCHAT_USER, or put user in the config file", EXIT_USAGE
            )
        try:
            normalize(self.user)
        except UsernameError as exc:
            raise CliError(f"bad username {visible(self.user)!r}: {exc}", EXIT_USAGE) from None
        return self.user

    def _check_strength(self, password: str, user: str) -> None:
        if not getattr(self.args, "allow_weak_password", False):
            check_password(password, username=user)

    def _password(self) -> str:
        return _read_password(self.args)

    async def _login(self) -> None:
        user = self._need_user()
        await self.client.connect()  # the server's certificate first, then the password
        await self.client.login(user, self._password())

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
        password = None
        if _password_given(self.args):  # from a file or the environment: checked before
            password = _read_password(self.args, confirm=True)  # anything is sent
            self._check_strength(password, user)
        # The server before a prompt for the password (a new one's certificate is asked
        # about first): no one types a password for a server they then refuse.
        await self.client.connect()
        if self.client.ca is None:
            print(
                f"server {self.client.server}: certificate {self.client.connection.fingerprint}",
                file=sys.stderr,
            )
        if password is None:
            password = _read_password(self.args, confirm=True)
            self._check_strength(password, user)
        name = await self.client.signup(user, password, invite=self.args.invite)
        print(f"created account {name} on {self.client.server}")
        await self.client.login(name, password)
        print(f"your fingerprint: {_grouped(self.client.my_fingerprint())}")
        return EXIT_OK

    async def cmd_login(self) -> int:
        await self._login()
        print(f"logged in as {self.client.username} on {self.client.server}")
        print(f"your fingerprint: {_grouped(self.client.my_fingerprint())}")
        return EXIT_TRUST if self.client.trust_store.replaced else EXIT_OK

    async def cmd_send(self) -> int:
        text = _read_stdin_text() if self.args.text == "-" else self.args.text
        if self.args.text == "-" and text.endswith("\n"):
            text = text[:-1]
        if not text:
            raise CliError("nothing to send", EXIT_USAGE)
        group = group_target(self.args.peer)
        if group is not None:
            return await self._send_to_group(group, text)
        if self.args.queue:
            await self._login_or_open_offline()
        else:
            await self._login()
        seq = await self.client.send(
            self.args.peer,
            text,
            action=self.args.me,
            queue=self.args.queue,
            reply_to=self.args.reply_to,
        )
        if seq is None:
            print("queued: it waits in the outbox and is sent at your next login")
        else:
            print(f"sent #{seq}")
        return EXIT_OK

    async def cmd_read(self) -> int:
        await self._login()
        group = group_target(self.args.peer)
        if group is not None:
            return await self._read_group(group, format_message)
        messages = await self.client.read(self.args.peer, since=self.args.since)
        now = self.client.now()
        messages = [m for m in messages if m.expires is None or m.expires > now]
        for m in messages:
            print(json_line(m.to_json()) if self.args.json else format_message(m))
        if self.args.mark_read and messages:
            await self.client.mark_read(self.args.peer, messages[-1].seq)
        return EXIT_REJECTED if any(m.status != "verified" for m in messages) else EXIT_OK

    async def cmd_conversations(self) -> int:
        await self._login()
        groups, pairs = await self.client.groups.summaries(), await self.client.conversations()
        if not groups and not pairs and not self.args.json:
            print(
                "no conversations yet: start one with  pychat send NAME 'hello'  "
                "(or /new NAME in the full-screen client)"
            )
        for group in groups:
            self._print_group(group)
        for c in pairs:
            if self.args.json:
                print(json_line(c))
                continue
            online = {True: "online", False: "offline"}.get(c.get("peer_online") is True, "-")
            online = online if isinstance(c.get("peer_online"), bool) else "-"
            print(
                f"{visible(str(c.get('peer'))):<20} unread {visible(str(c.get('unread'))):<5} "
                f"last {_when(c.get('last_activity'))}  {online}"
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
        peer = self.args.peer
        info = await self.client.safety_numbers(peer)
        if info.pending:
            print(f"{peer}'s identity key has CHANGED (not signed by the key you had).")
            print(f"safety number with {peer}'s NEW key:")
        else:
            print(f"safety number with {peer}:")
        print(_safety_lines(info.current))
        if info.pending and info.pinned:
            print(f"safety number with the key you had for {peer}:")
            print(_safety_lines(info.pinned))
            print(
                f"Compare the new number with {peer} (in person or on a call); if it matches, "
                f"accept the new key with: pychat trust {peer}"
            )
            return EXIT_TRUST if self.args.mark else EXIT_OK
        if self.args.mark:
            await self.client.mark_verified(peer)
            print(f"{peer} is now marked verified.")
        elif info.verified:
            print(f"{peer} is marked verified.")
        else:
            print(
                f"{peer} is not verified. Compare it with {peer} (in person or on a call); "
                f"if it matches: pychat verify {peer} --mark"
            )
        return EXIT_OK

    async def cmd_trust(self) -> int:
        await self._login()
        peer = self.args.peer
        fingerprint = await self.client.trust(peer)
        print(f"accepted {peer}'s key {_grouped(fingerprint)}")
        if not self.client.peer_trust(peer)[0]:
            print(f"{peer} is not verified: compare safety numbers with pychat verify {peer}")
        return EXIT_OK

    async def cmd_rotate_identity(self) -> int:
        await self._login()
        fingerprint = await self.client.rotate_identity()
        print(f"new identity keys, signed by your old ones: {_grouped(fingerprint)}")
        print("your peers see a signed rotation; each conversation has a new key")
        return EXIT_OK

    async def cmd_rotate(self) -> int:
        await self._login()
        epoch = await self.client.rotate(self.args.peer)
        print(f"new conversation key with {self.args.peer}: epoch {epoch}")
        return EXIT_OK

    async def cmd_passwd(self) -> int:
        old = _read_password(self.args, prompt="Current password: ")
        new = _new_password(self.args)
        self._check_strength(new, self._need_user())
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
                where = self._label(m.conversation, m.peer)
                line = (
                    json_line({**m.to_json(), "where": where})
                    if self.args.json
                    else f"[{visible(where)}] {format_message(m)}"
                )
                print(line, flush=True)
            elif event.kind == "group":
                self._print_group_change(event.data)
            elif event.kind == "keys_changed" and "warning" in event.data:
                print(_safe_block(event.data["warning"]), file=sys.stderr, flush=True)
            elif event.kind == "connection" and event.data.get("state") == "refused":
                print(_safe_block(event.data.get("reason")), file=sys.stderr, flush=True)
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
        normal = normal_fingerprint(self.args.fingerprint)
        ServerPins(self.home).pin(str(address), normal)
        print(f"pinned {address}: {normal}")
        return EXIT_OK


class EventPrinter:
    """Tells the user on standard error of notices, of peers' key rotations (once each: the
    event comes when the new key is pinned) and of what happened to messages queued before
    (one this command queued itself and sent at once is told by the command: ``sent #N``)."""

    def __init__(self) -> None:
        self._queued_now: set[str] = set()

    def __call__(self, event: ClientEvent) -> None:
        if event.kind in ("notice", "keys_withdrawn"):
            print(f"pychat: {visible(str(event.data.get('text', '')))}", file=sys.stderr)
        elif event.kind == "keys_rotated":
            print(_rotation_notice(event), file=sys.stderr)
        entry = event.data.get("entry") if event.kind == "outbox" else None
        if isinstance(entry, OutboxEntry):
            self._outbox(entry, str(event.data.get("state")), event)

    def _outbox(self, entry: OutboxEntry, state: str, event: ClientEvent) -> None:
        if state == "queued":
            self._queued_now.add(entry.client_id)
        elif state == "sent" and entry.client_id not in self._queued_now:
            print(
                f"pychat: queued message to {entry.peer} sent (#{event.data.get('seq')})",
                file=sys.stderr,
            )
        elif state == "failed":
            reason = visible(str(event.data.get("reason", "")))
            print(f"pychat: queued message to {entry.peer} was refused: {reason}", file=sys.stderr)


def _rotation_notice(event: ClientEvent) -> str:
    """What the CLI says when it pins a peer's signed rotation."""
    user = visible(str(event.data.get("user")))
    still = (
        "still marked verified"
        if event.data.get("verified")
        else f"not verified: compare safety numbers with pychat verify {user}"
    )
    return (
        f"pychat: {user} rotated their identity keys (signed by the key you had pinned); "
        f"{still}. New safety number:\n{_safety_lines(str(event.data.get('safety', '')))}"
    )


def _safe_block(text: object) -> str:
    """Text that may hold a server's or peer's words, made visible line by line."""
    return "\n".join(visible_lines(str(text)))


#: Server error codes that mean the input was bad (exit 2 rather than 1).
_BAD_INPUT_CODES = frozenset({"bad_username", "bad_field", "message_too_large"})


def _exit_code_for(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, CliError):
        return exc.code, str(exc)
    if isinstance(exc, WeakPassword | UnsendableText | MessageTooLong | UsernameError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, TrustError):
        return EXIT_TRUST, str(exc)
    if isinstance(exc, RemoteError):
        if exc.code in ("auth_failed", "rate_limited"):
            return EXIT_AUTH, exc.message
        if exc.code in _BAD_INPUT_CODES:
            return EXIT_USAGE, f"{exc.message} ({exc.code})"
        return EXIT_ERROR, f"{exc.message} ({exc.code})"
    if isinstance(exc, ConnectError | ReplyTimeout):
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
        print(f"pychat: {_safe_block(message)}", file=sys.stderr)
        return code


def run_command(args: argparse.Namespace) -> NoReturn:
    """Run one subcommand (not the TUI: :mod:`pychat.entry` chooses) and exit with its code."""

    async def run(reactor: Any) -> None:
        code = await _run(reactor, args)
        if code:
            raise SystemExit(code)  # task.react exits with it

    task.react(lambda reactor: defer.ensureDeferred(run(reactor)))
    raise SystemExit(EXIT_ERROR)  # not reached: task.react exits the process

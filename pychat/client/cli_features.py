"""The ``pychat`` commands for what comes on top of messages: the outbox, reactions, fair
flips and rolls, and ``whatdoyouknow`` (a mixin of :class:`pychat.client.cli.Command`)."""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from twisted.internet import defer

from pychat.client.cli_errors import EXIT_CONNECT, EXIT_OK, EXIT_USAGE, CliError
from pychat.client.errors import ConnectError, ReplyTimeout
from pychat.client.events import ClientEvent
from pychat.client.protocol import ConnectionClosed
from pychat.client.report import report_lines
from pychat.client.session import ChatClient
from pychat.text.safe import json_line, visible, visible_lines

if TYPE_CHECKING:
    from tqdm import tqdm


def _bar(total: int | None, label: str) -> tqdm:
    """A progress bar on standard error (none when it is not a terminal)."""
    from tqdm import tqdm  # only file commands draw bars: every other command starts faster

    return tqdm(
        total=total,
        desc=label,
        unit="B",
        unit_scale=True,
        disable=not sys.stderr.isatty(),
        file=sys.stderr,
    )


def _advance(bar: tqdm) -> Callable[[int, int], None]:
    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return update


def _safe_block(text: object) -> str:
    return "\n".join(visible_lines(str(text)))


class FeatureCommands:
    """``react``, ``flip``/``roll``, ``whatdoyouknow``, ``outbox`` and offline queueing.

    Mixed into :class:`pychat.client.cli.Command`, which provides what is declared here: the
    parsed arguments, the client, and the steps that find the user, read the password and
    log in."""

    args: argparse.Namespace
    client: ChatClient
    _need_user: Callable[[], str]
    _password: Callable[[], str]
    _login: Callable[[], Awaitable[None]]

    async def _login_or_open_offline(self) -> None:
        """Log in; if the server is away, open the keystore here alone (for the outbox)."""
        user, password = self._need_user(), self._password()
        try:
            await self.client.login(user, password)
        except (ConnectError, ConnectionClosed, ReplyTimeout) as exc:
            print(f"pychat: {visible(str(exc))}; working offline", file=sys.stderr)
            await self.client.close()
            await self.client.account.open_offline(user, password)

    async def cmd_react(self) -> int:
        await self._login()
        seq = await self.client.react(self.args.peer, self.args.seq, self.args.emoji)
        print(f"sent #{seq}")
        return EXIT_OK

    async def cmd_flip(self) -> int:
        await self._login()
        outcome: defer.Deferred[str] = defer.Deferred()

        def on_event(event: ClientEvent) -> None:
            if event.kind == "game" and event.data.get("game") == game and not outcome.called:
                outcome.callback(str(event.data.get("text", "")))

        self.client.listeners.append(on_event)
        dice = getattr(self.args, "dice", None)
        game = await self.client.games.start(self.args.peer, self.args.command, dice)
        outcome.addTimeout(self.args.wait, self.client.reactor)
        try:
            print(visible(await outcome))
        except defer.TimeoutError:
            raise CliError(
                f"{self.args.peer}'s client did not answer within {self.args.wait:g} s; the "
                "game stays open: the next pychat command that sees the answer reveals it",
                EXIT_CONNECT,
            ) from None
        return EXIT_OK

    async def cmd_disappear(self) -> int:
        await self._login()
        await self.client.disappearing.set(self.args.peer, self.args.timer)
        print(f"disappearing messages with {self.args.peer}: {self.args.timer}")
        return EXIT_OK

    async def cmd_whatdoyouknow(self) -> int:
        await self._login()
        report = await self.client.request("whatdoyouknow")
        if self.args.json:
            print(json_line(report))
        else:
            print("\n".join(report_lines(report, self.client.server)))
        return EXIT_OK

    async def cmd_outbox(self) -> int:
        await self._login_or_open_offline()
        waiting = await self.client.sender.pending()
        if not waiting and not self.args.json:
            print("the outbox is empty: every message you wrote was sent")
        for entry in waiting:
            if self.args.json:
                print(json_line(entry.to_json()))
            else:
                said = f"* {entry.text}" if entry.action else entry.text
                when = datetime.datetime.fromtimestamp(entry.time)
                print(f"[{when:%Y-%m-%d %H:%M}] to {entry.peer} … {_safe_block(said)}")
        return EXIT_OK

    cmd_roll = cmd_flip

    async def cmd_send_file(self) -> int:
        path = Path(self.args.path)
        if not path.is_file():
            raise CliError(f"no file at {visible(str(path))}", EXIT_USAGE)
        await self._login()
        with _bar(path.stat().st_size, f"sending {path.name}") as bar:
            seq = await self.client.files.send(self.args.peer, path, progress=_advance(bar))
        print(f"sent #{seq}" if seq is not None else "uploaded; its message waits in the outbox")
        return EXIT_OK

    async def cmd_get_file(self) -> int:
        await self._login()
        with _bar(None, f"fetching #{self.args.seq}") as bar:
            saved = await self.client.files.fetch(
                self.args.peer, self.args.seq, Path(self.args.dir), progress=_advance(bar)
            )
        print(f"saved {visible(str(saved))}")
        return EXIT_OK

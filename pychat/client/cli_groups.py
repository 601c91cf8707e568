"""``pychat group ...``: make and change groups, list them, show their members and their
safety number (docs/client.md, "Groups").  ``send``, ``read`` and ``react`` take a group as
``#NAME`` (or ``#`` and the start of its id): ``#`` is never part of a username.

Every name shown came from a peer or the server (group names, member names) and goes
through :mod:`pychat.text.safe`.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from pychat.client.cli_errors import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, CliError
from pychat.client.cli_parser import ACTIONS
from pychat.client.events import ChatMessage
from pychat.client.group_actions import statement_text
from pychat.client.session import ChatClient
from pychat.text.safe import json_line, visible


def group_target(peer: str) -> str | None:
    """The group a ``send``/``read`` target names (``#NAME``), or None for a user."""
    return peer[1:] if peer.startswith("#") and len(peer) > 1 else None


class GroupCommands:
    """``pychat group``; mixed into :class:`pychat.client.cli.Command`."""

    args: argparse.Namespace
    client: ChatClient
    _login: Callable[[], Awaitable[None]]

    async def cmd_group(self) -> int:
        action, words = self.args.action, list(self.args.words)
        spec, count = ACTIONS[action]
        if (count is None and len(words) < 2) or (count is not None and len(words) != count):
            raise CliError(f"usage: pychat group {action} {spec}", EXIT_USAGE)
        await self._login()
        groups = self.client.groups
        if action == "create":
            group = await groups.create(words[0], words[1:])
            print(f"made group {visible(words[0])} ({group[:12]})")
            return EXIT_OK
        if action == "list":
            listed = await groups.summaries()
            if not listed and not self.args.json:
                print("no groups yet: make one with  pychat group create NAME USER...")
            for summary in listed:
                self._print_group(summary)
            return EXIT_OK
        group = await groups.find(words[0].removeprefix("#"))
        return await self._change(action, group, words[1:])

    async def _change(self, action: str, group: str, rest: list[str]) -> int:
        groups = self.client.groups
        if action == "members":
            return await self._members(group)
        if action == "verify":
            number, view = await groups.verify(group)
            print(f"group {visible(view.state.name)}: safety number after statement {view.state.n}")
            digits = number.split()
            print("  " + " ".join(digits[:6]))
            print("  " + " ".join(digits[6:]))
            print("Every member who holds the same history sees the same number: compare them.")
            return EXIT_OK
        if action == "add":
            await groups.add(group, rest[0])
        elif action == "leave":
            await groups.change(group, "leave")
            print("you left the group")
            return EXIT_OK
        elif action == "rename":
            await groups.change(group, "rename", name=rest[0])
        else:  # remove, admin
            await groups.change(group, action, member=rest[0].lower())
        return await self._members(group)

    async def _members(self, group: str) -> int:
        view = await self.client.groups.keys.load(group)
        _, data = self.client.require_login()
        rows: list[dict[str, Any]] = []
        for name in sorted(view.state.members):
            pinned, verified = self.client.peer_trust(name) if name != data.username else (1, 1)
            pending = bool((data.pins.get(name) or {}).get("pending"))
            rows.append(
                {
                    "member": name,
                    "admin": name in view.state.admins,
                    "trust": "you"
                    if name == data.username
                    else "changed"
                    if pending
                    else "verified"
                    if verified
                    else "pinned"
                    if pinned
                    else "unknown",
                }
            )
        if self.args.json:
            for row in rows:
                print(json_line(row))
            return EXIT_OK
        print(f"group {visible(view.state.name)} ({len(rows)} members):")
        for row in rows:
            mark = " admin" if row["admin"] else ""
            print(f"  {visible(row['member']):<20} {row['trust']}{mark}")
        return EXIT_OK

    async def _send_to_group(self, group: str, text: str) -> int:
        """``pychat send '#NAME' TEXT`` (logged in here)."""
        await self._login()
        found = await self.client.groups.find(group)
        kind = "action" if self.args.me else "text"
        print(f"sent #{await self.client.groups.send(found, text, kind=kind)}")
        return EXIT_OK

    async def _read_group(self, group: str, shown: Callable[[ChatMessage], str]) -> int:
        """``pychat read '#NAME'`` (logged in already), each message as ``shown`` puts it."""
        found = await self.client.groups.find(group)
        messages = await self.client.groups.read(found, since=self.args.since)
        for m in messages:
            print(json_line(m.to_json()) if self.args.json else shown(m))
        return EXIT_REJECTED if any(m.status != "verified" for m in messages) else EXIT_OK

    def _label(self, conversation: str, peer: str) -> str:
        """Where a message was said: ``#NAME`` for a group, the peer for a pair."""
        _, data = self.client.require_login()
        group = data.groups.get(conversation)
        return peer if group is None else f"#{group['name']}"

    def _print_group_change(self, told: dict[str, Any]) -> None:
        """A membership change, as ``listen`` prints it (inline with the messages)."""
        name = f"#{told.get('name')}"
        if told.get("removed"):
            line = f"[{name}] you are no longer a member"
        elif "statement" in told:
            line = f"[{name}] {statement_text(told['statement'])}"
        else:
            line = f"[group] {told.get('problem', 'changed')}"
        if self.args.json:
            print(json_line({"event": "group", "line": line, **told}), flush=True)
        else:
            print(visible(line), flush=True)
        if told.get("problem") and "statement" in told:
            print(visible(f"[{name}] {told['problem']}"), flush=True)

    def _print_group(self, summary: dict[str, Any]) -> None:
        if self.args.json:
            print(json_line(summary))
            return
        print(
            f"#{visible(str(summary['name'])):<20} {summary['conversation'][:12]}  "
            f"{len(summary['members'])} members  unread {summary['unread']}"
        )

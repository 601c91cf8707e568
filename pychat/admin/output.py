"""What ``pychat-admin`` says, whatever store it works on: its one-line refusals, times, the
users table, and the question before a change that cannot be undone."""

from __future__ import annotations

import sys
import time
from typing import Any

from pychat.text.safe import visible


class AdminError(Exception):
    """A refusal or failure, said in one line."""


def when(moment: float | None) -> str:
    """A time as the tables show it (UTC, to the minute), or ``never``."""
    return "never" if moment is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(moment))


def print_users(rows: list[dict[str, Any]]) -> None:
    """The users table: one line per account, names shown safely."""
    print(
        f"{'user':<24} {'created (UTC)':<17} {'last login (UTC)':<17} {'state':<9} "
        f"{'in the log':<18} conversations"
    )
    for row in rows:
        state = "disabled" if row["disabled"] else "active"
        print(
            f"{visible(row['user']):<24} {when(row['created']):<17} "
            f"{when(row['last_login']):<17} {state:<9} {row['in_log']:<18} {row['conversations']}"
        )


def confirm(confirmed: bool, question: str, refusal: str) -> None:
    """Go on only when ``confirmed`` (``--yes``) or the operator answers yes at a terminal.

    :raises AdminError: not confirmed.
    """
    if confirmed:
        return
    if not sys.stdin.isatty():
        raise AdminError(f"{refusal}: confirm with --yes")
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        raise AdminError("nothing changed")


def confirm_reset(name: str, confirmed: bool) -> None:
    """Go on with a reset of ``name`` only when confirmed (:func:`confirm`)."""
    confirm(
        confirmed,
        f"Reset {visible(name)}? They sign up again; their old messages stay unreadable to "
        "them and their peers see a key change.",
        "reset removes the account",
    )


def confirm_delete(name: str, confirmed: bool) -> None:
    """Go on with a deletion of ``name`` only when confirmed (:func:`confirm`)."""
    confirm(
        confirmed,
        f"Delete {visible(name)}, their key history and every conversation they are in, for "
        "both sides? This cannot be undone.",
        "delete removes the account and its conversations",
    )

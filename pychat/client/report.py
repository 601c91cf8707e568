"""``whatdoyouknow``: the server's report of what it holds about you, as readable lines.

The report is the server's word: every field is checked for its type and shown through
:func:`~pychat.text.safe.visible` (a hostile server's text cannot act on the terminal), and a
field of the wrong type shows as ``?``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from pychat.text.safe import visible


def _when(value: Any) -> str:
    if value is None:
        return "never"
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "?"
    try:
        return datetime.datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M")
    except (ValueError, OverflowError, OSError):
        return "?"


def _text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "-"}[value]
    return visible(str(value)) if isinstance(value, str | int | float) else "?"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(report: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = report.get(key)
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _account_lines(account: dict[str, Any]) -> list[str]:
    kdf = _dict(account.get("kdf"))
    kdf_text = " ".join(f"{_text(k)}={_text(v)}" for k, v in sorted(kdf.items()))
    backup = account.get("key_backup")
    return [
        "Account",
        f"  name {_text(account.get('username'))}, created {_when(account.get('created'))}, "
        f"changed {_when(account.get('updated'))}, last login {_when(account.get('last_login'))}",
        f"  key version {_text(account.get('key_version'))}, presence shared: "
        f"{_text(account.get('share_presence'))}, disabled: {_text(account.get('disabled'))}",
        f"  password proof (SRP): salt {_text(account.get('srp_salt'))}, verifier "
        f"{_text(account.get('srp_verifier'))}; KDF {kdf_text}",
        f"  key backup: {_text(backup)} bytes, sealed by your password"
        if backup
        else "  key backup: none",
    ]


def _counted(
    title: str, items: list[dict[str, Any]], line: Callable[[dict[str, Any]], str]
) -> list[str]:
    """A section: its title with the number of items, then one indented line per item."""
    return [f"{title} ({len(items)})", *(f"  {line(item)}" for item in items)]


def _listed(value: Any) -> list[Any]:
    """A list the server sent, or none (anything else is no list)."""
    return value if isinstance(value, list) else []


def _conversation_line(c: dict[str, Any]) -> str:
    who = _text(c.get("peer"))
    if c.get("group"):
        members = _listed(c.get("members"))
        who = (
            f"group {_text(c.get('group_name'))} ({len(members)} members: "
            f"{', '.join(_text(m) for m in members)}; admins "
            f"{', '.join(_text(a) for a in _listed(c.get('admins')))}; "
            f"{_text(c.get('statements'))} changes signed)"
        )
    return (
        f"{who}: {_text(c.get('messages'))} messages, "
        f"{_text(c.get('epochs'))} keys, {_text(c.get('stored_bytes'))} bytes stored, "
        f"created {_when(c.get('created'))}, last {_when(c.get('last_activity'))}, "
        f"you read up to #{_text(c.get('your_read_marker'))}"
        + (", DAMAGED" if c.get("damaged") else "")
    )


def _session_line(s: dict[str, Any]) -> str:
    this = " (this one)" if s.get("this_one") else ""
    return f"from {_text(s.get('address'))} as {_text(s.get('client'))}{this}"


def _file_line(f: dict[str, Any]) -> str:
    return f"{_text(f.get('file'))}: {_text(f.get('bytes'))} bytes, until {_when(f.get('expires'))}"


def report_lines(report: dict[str, Any], server: str) -> list[str]:
    """The report as lines for a person (the CLI prints them, the TUI shows them)."""
    account = _dict(report.get("account"))
    lines = [
        f"What {visible(server)} knows about {_text(account.get('username'))} "
        f"(its clock: {_when(report.get('server_time'))})",
        "",
        *_account_lines(account),
        "Key history",
    ]
    for key in _list(report, "key_history"):
        signed = "signed by the previous key" if key.get("signed_by_previous") else "first"
        lines.append(
            f"  v{_text(key.get('key_version'))} {_text(key.get('fingerprint'))[:32]}… "
            f"from {_when(key.get('time'))} ({signed})"
        )
    lines += _counted("Conversations", _list(report, "conversations"), _conversation_line)
    lines += _counted("Sessions now", _list(report, "sessions"), _session_line)
    failures = _dict(report.get("login_failures"))
    lines.append(
        f"Failed logins remembered (in memory): {_text(failures.get('count'))}, last "
        f"{_when(failures.get('last'))}, locked for {_text(failures.get('locked_for'))} s"
    )
    lines += _counted("Files stored", _list(report, "files"), _file_line)
    log = _list(report, "log")
    lines.append(
        f"Log lines about you, where the log calls you {_text(report.get('log_name'))} "
        f"({len(log)}, from those kept in memory)"
    )
    lines += [f"  {_when(e.get('time'))} {_text(e.get('text'))}" for e in log]
    kept = report.get("not_kept")
    if isinstance(kept, list):
        lines.append("Not kept")
        lines += [f"  - {_text(k)}" for k in kept]
    return lines

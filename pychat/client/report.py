"""``whatdoyouknow``: the server's report of what it holds about you, as readable lines.

The report is the server's word: every field is checked for its type and shown through
:func:`~pychat.safe_text.visible` (a hostile server's text cannot act on the terminal), and a
field of the wrong type shows as ``?``.
"""

from __future__ import annotations

import datetime
from typing import Any

from pychat.safe_text import visible


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
    conversations = _list(report, "conversations")
    lines.append(f"Conversations ({len(conversations)})")
    for c in conversations:
        lines.append(
            f"  {_text(c.get('peer'))}: {_text(c.get('messages'))} messages, "
            f"{_text(c.get('epochs'))} keys, {_text(c.get('stored_bytes'))} bytes stored, "
            f"created {_when(c.get('created'))}, last {_when(c.get('last_activity'))}, "
            f"you read up to #{_text(c.get('your_read_marker'))}"
            + (", DAMAGED" if c.get("damaged") else "")
        )
    sessions = _list(report, "sessions")
    lines.append(f"Sessions now ({len(sessions)})")
    for s in sessions:
        this = " (this one)" if s.get("this_one") else ""
        lines.append(f"  from {_text(s.get('address'))} as {_text(s.get('client'))}{this}")
    failures = _dict(report.get("login_failures"))
    lines.append(
        f"Failed logins remembered (in memory): {_text(failures.get('count'))}, last "
        f"{_when(failures.get('last'))}, locked for {_text(failures.get('locked_for'))} s"
    )
    files = _list(report, "files")
    lines.append(f"Files stored ({len(files)})")
    for f in files:
        lines.append(
            f"  {_text(f.get('file'))}: {_text(f.get('bytes'))} bytes, "
            f"until {_when(f.get('expires'))}"
        )
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

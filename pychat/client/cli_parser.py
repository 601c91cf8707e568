"""The ``pychat`` command's arguments: every command and option, and ``--version`` and
``--help``, with nothing heavier than ``argparse`` imported (they answer before Twisted or the
client library is loaded: pychat/entry.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pychat import __version__

EPILOG = """\
passwords: from --password-file, else $PYCHAT_PASSWORD, else a prompt (no echo).
  passwd takes the new one from --new-password-file, $PYCHAT_NEW_PASSWORD or a prompt.
first contact: the server's certificate is pinned only after you accept it: at the prompt
  when there is a terminal, else with --accept-server FINGERPRINT (or server_fingerprint
  in the config file); otherwise nothing is sent and the command exits 4.
exit codes: 0 ok, 1 error, 2 bad usage or bad input, 3 authentication failed, 4 trust
  failure (certificate or key changed or not accepted), 5 cannot connect (or timed out,
  or not a pyChat server), 6 some messages failed verification.
settings: --config (default $XDG_CONFIG_HOME/pychat/config.toml) may set server and user.
docs: docs/client.md"""


def _common_options(default: Any) -> argparse.ArgumentParser:
    """The options accepted before and after the command (after it, with ``default``
    SUPPRESS so they do not reset what was given before it)."""
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
        "--ca",
        type=Path,
        default=default,
        help="verify the server with this CA certificate (PEM) instead of pinning",
    )
    common.add_argument(
        "--accept-server",
        metavar="FINGERPRINT",
        default=default,
        help="on first contact, pin the server's certificate if it has this SHA-256 "
        "fingerprint (as the server prints it); refuse it otherwise",
    )
    common.add_argument(
        "--connect-timeout",
        type=float,
        metavar="SECONDS",
        default=default,
        help="give up connecting (TCP and TLS handshake) after this long (default 10)",
    )
    common.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        default=default,
        help="give up on a reply from the server after this long (default 30)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (public so docs and tests can render it)."""
    common = _common_options(None)
    sub_common = _common_options(argparse.SUPPRESS)

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

    _add_commands(add)
    return parser


def _add_commands(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Every subcommand with its own arguments."""
    add("tui", "open the full-screen client")
    p = add("signup", "create an account (new identity keys, keystore, key backup on the server)")
    p.add_argument(
        "--invite",
        metavar="CODE",
        default=None,
        help="the invite the server's operator gave you (servers that take accounts by invite)",
    )
    p.add_argument(
        "--allow-weak-password", action="store_true", help="accept a password that is easy to guess"
    )
    add("login", "check your credentials and set up this machine's keystore")
    _add_message_commands(add)
    p = add("read", "print messages")
    p.add_argument("peer")
    p.add_argument("--since", type=int, default=0, help="only messages after this sequence number")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--mark-read", action="store_true", help="mark what was printed as read")
    p = add("conversations", "list your conversations")
    p.add_argument("--json", action="store_true")
    p = add("fingerprint", "show your identity fingerprint, or a peer's pinned one")
    p.add_argument("peer", nargs="?")
    p = add("verify", "show the safety number to compare with a peer (both, after a key change)")
    p.add_argument("peer")
    p.add_argument(
        "--mark", action="store_true", help="mark the peer verified (after you compared)"
    )
    p = add("trust", "accept a peer's new key after a change (does not mark it verified)")
    p.add_argument("peer")
    add(
        "rotate-identity",
        "make new identity keys, signed by the old ones; peers see a signed rotation",
    )
    p = add("rotate", "start a new conversation key with a peer")
    p.add_argument("peer")
    p = add("passwd", "change your password")
    p.add_argument("--new-password-file", type=Path)
    p.add_argument(
        "--allow-weak-password", action="store_true", help="accept a password that is easy to guess"
    )
    p = add("listen", "print incoming messages until interrupted")
    p.add_argument("--json", action="store_true")
    add_group_command(add)
    p = add("accept-server", "pin a server certificate (after checking it with the operator)")
    p.add_argument("address", help="host[:port]")
    p.add_argument("fingerprint", help="SHA-256 fingerprint as the server prints it")


def _add_message_commands(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """send, react and outbox."""
    p = add("send", "send a message")
    p.add_argument("peer")
    p.add_argument("text", help="the message, or - to read it from standard input")
    p.add_argument("--me", action="store_true", help="an action, shown as * you TEXT")
    p.add_argument(
        "--reply-to", type=int, metavar="SEQ", help="a reply to message SEQ (quoting its start)"
    )
    p.add_argument(
        "--queue",
        action="store_true",
        help="if the server is away (or asks to retry), keep the message in the outbox and "
        "send it at the next login instead of failing",
    )
    p = add("react", "react to a message with an emoji (an empty one takes it back)")
    p.add_argument("peer")
    p.add_argument("seq", type=int, help="the message's number, as read prints it (#SEQ)")
    p.add_argument("emoji")
    for name, what in (("flip", "a coin"), ("roll", "dice")):
        p = add(name, f"throw {what} with a peer, fairly (commit-reveal: neither side can bias it)")
        p.add_argument("peer")
        if name == "roll":
            p.add_argument("dice", help="NdM: N dice (1-10) of M sides (2-100), e.g. 2d6")
        p.add_argument(
            "--wait",
            type=float,
            default=60.0,
            metavar="SECONDS",
            help="how long to wait for the peer's client to answer (default 60)",
        )
    p = add("send-file", "send a file, encrypted end to end (size limits: the server's)")
    p.add_argument("peer")
    p.add_argument("path")
    p = add("get-file", "fetch the file of a message, check it and save it (never overwriting)")
    p.add_argument("peer")
    p.add_argument("seq", type=int, help="the file message's number (#SEQ in read)")
    p.add_argument("--dir", default=".", help="where to save it (default: here)")
    p = add("disappear", "set how long messages with a peer last, for both of you")
    p.add_argument("peer")
    p.add_argument("timer", choices=["off", "5m", "1h", "1d", "1w"])
    p = add("whatdoyouknow", "everything the server holds about you, as it reports it")
    p.add_argument("--json", action="store_true", help="the server's report as it came")
    p = add("outbox", "list your messages that wait to be sent (a login sends them first)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")


#: ``pychat group ACTION``: how many arguments each takes (None: one or more).
ACTIONS: dict[str, tuple[str, int | None]] = {
    "create": ("NAME USER...", None),
    "add": ("GROUP USER", 2),
    "remove": ("GROUP USER", 2),
    "admin": ("GROUP USER", 2),
    "leave": ("GROUP", 1),
    "rename": ("GROUP NAME", 2),
    "members": ("GROUP", 1),
    "verify": ("GROUP", 1),
    "list": ("", 0),
}


def add_group_command(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """The ``group`` subcommand."""
    usage = "; ".join(f"{a} {args}".strip() for a, (args, _) in ACTIONS.items())
    p = add("group", f"groups: {usage}")
    p.add_argument("action", choices=list(ACTIONS))
    p.add_argument("words", nargs="*", metavar="ARG")
    p.add_argument("--json", action="store_true", help="list and members: one JSON per line")

"""The ``pychat-admin`` command line: operator tasks on a pyChat data dir.

    pychat-admin [--data-dir DIR] [--store-key FILE] COMMAND ...

``make-store-key PATH``
    write a new at-rest key (mode 0600), e.g. ``/etc/pychat/store.key`` for the systemd unit;
    never overwrites one (the data encrypted under it would be lost).
``stats``
    accounts, conversations and messages.
``backup PATH``
    a consistent copy of the store into the new directory PATH while the server runs and takes
    messages (or while it is stopped); every message acknowledged before it began is in it.
    The at-rest key is not: back it up apart.
``restore PATH``
    copy a backup into an empty data dir (checked against its manifest first).
``check``
    read every account and every record; report what does not decrypt or parse; change
    nothing.  Only while the server is stopped.
``users``
    every account: created, last login, disabled, conversations.
``disable USER`` / ``enable USER``
    a disabled user cannot log in (``account_disabled``, told only after the password
    proof), and their open sessions are closed at once when the server runs.
``invite [--hours 72]``
    a single-use signup code that expires, for a server run with ``--signup invite``; shown
    once (only its hash is kept).
``delete USER [--yes]``
    delete an account with its key history and every conversation it is in (for both
    sides); its sessions are closed.  Asks for confirmation unless ``--yes``.
``rotate-store-key``
    re-encrypt everything under a new at-rest key, written over the old key file (server
    stopped).  A crash at any point leaves a store that opens with one of the two keys; run it
    again to finish or undo what was interrupted.
``reset USER [--yes]``
    for a forgotten password: remove the account so its owner can sign up again under the
    same name.  Old messages stay unreadable to them (end-to-end); peers see an unsigned key
    change.  Asks for confirmation unless ``--yes``.
``migrate --to postgresql://...``
    copy the data dir into an empty PostgreSQL database (server stopped), then compare the
    count and a hash of every kind of record on both sides.

With ``--database URL`` (or ``$PYCHAT_DATABASE``) the commands work on that PostgreSQL store
instead of a data dir, also while the nodes run (pychat/admin/database.py): ``backup`` and
``restore`` are pg_dump and pg_restore; ``rotate-store-key`` is not there yet.

While a server runs it holds the data dir's lock, and the commands that need the store
(``stats``, ``backup``) ask it through its control socket; ``check`` refuses.  While no server
runs, pychat-admin holds the lock itself, so a server started meanwhile refuses to start.

Exit status: 0 done, 1 refused or failed (one line on stderr says why; ``check``: problems
found), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from twisted.internet import defer

from pychat.admin.output import AdminError, confirm_delete, confirm_reset, print_users, when
from pychat.server.config import DEFAULT_DATA_DIR
from pychat.server.control import store_stats, users_table
from pychat.store.accounts import Account
from pychat.store.atrest import AtRestKey
from pychat.store.backup import check, plan_snapshot, restore, write_snapshot
from pychat.store.blocking import inline_runner, run_inline
from pychat.store.errors import StoreError
from pychat.store.invites import InviteBook
from pychat.store.lock import DataDirBusy, lock_data_dir, unlock_data_dir
from pychat.store.rotation import rotate, settle
from pychat.store.server_store import ServerStore
from pychat.text.safe import visible
from pychat.tls import CERT_FILE, certificate_fingerprint
from pychat.wire.usernames import normal_form

CONTROL_SOCKET = "control.sock"


def make_store_key(path: Path) -> None:
    """Write a new at-rest key to ``path``."""
    try:
        AtRestKey.create(path)
    except FileExistsError:
        raise AdminError(
            f"{path} exists; a store key is never overwritten (the data encrypted under it "
            "would be lost)"
        ) from None
    except OSError as exc:
        raise AdminError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"wrote a new store key to {path} (mode 0600); back it up apart from the data dir")


def ask_server(data_dir: Path, request: dict[str, Any], timeout: float = 600.0) -> dict[str, Any]:
    """Send one request to the running server's control socket; return its answer."""
    path = data_dir / CONTROL_SOCKET
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps(request).encode() + b"\n")
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
    except OSError as exc:
        raise AdminError(
            f"the server runs but its control socket {path} does not answer: {exc}"
        ) from None
    reply: dict[str, Any] = json.loads(answer)
    if not reply.get("ok"):
        raise AdminError(str(reply.get("error", "the server refused")))
    return reply


def with_store(data_dir: Path, key: Path, work: Callable[[ServerStore], Any]) -> Any:
    """Open the stopped server's store (holding its lock) and run ``work`` on it."""
    if not data_dir.is_dir():
        raise AdminError(f"{data_dir} is not a data dir")
    fd = lock_data_dir(data_dir)
    try:
        store = ServerStore.open(data_dir, key, inline_runner)
        try:
            return work(store)
        finally:
            # inline: the close (logs synced, journal emptied, indexes saved) is done here
            defer.ensureDeferred(store.close())
    finally:
        unlock_data_dir(fd)


def _server_runs(data_dir: Path) -> bool:
    try:
        fd = lock_data_dir(data_dir)
    except DataDirBusy:
        return True
    unlock_data_dir(fd)
    return False


def stats(data_dir: Path, key: Path) -> None:
    """Print the store's counts."""
    if _server_runs(data_dir):
        counts = ask_server(data_dir, {"op": "stats"})
    else:
        counts = with_store(data_dir, key, lambda s: store_stats(data_dir, s))
    for name in ("accounts", "conversations", "messages", "bytes"):
        print(f"{name:<14} {counts[name]}")


def backup(data_dir: Path, key: Path, dest: Path) -> None:
    """Write a backup of the store to ``dest``."""
    dest = dest.absolute()
    if _server_runs(data_dir):
        made = ask_server(data_dir, {"op": "backup", "path": str(dest)})
    else:

        def snapshot(store: ServerStore) -> dict[str, Any]:
            return write_snapshot(
                plan_snapshot(data_dir, store.accounts, store.conversations), dest
            )

        made = with_store(data_dir, key, snapshot)
    print(
        f"backup in {dest}: {made['accounts']} accounts, {made['conversations']} "
        f"conversations, {made['messages']} messages. The store key is not in it: keep {key} "
        "safe apart from it"
    )


def restore_into(data_dir: Path, source: Path) -> None:
    """Restore the backup ``source`` into the empty ``data_dir``."""
    made = restore(source, data_dir)
    print(
        f"restored {made['accounts']} accounts, {made['conversations']} conversations and "
        f"{made['messages']} messages into {data_dir}; start the server with the store key "
        "the backup was made under"
    )


def users(data_dir: Path, key: Path) -> None:
    """Print every account."""
    if _server_runs(data_dir):
        rows = ask_server(data_dir, {"op": "users"})["users"]
    else:
        rows = with_store(data_dir, key, lambda s: users_table(s.accounts, s.conversations, s.key))
    print_users(rows)


def _account_change(
    data_dir: Path,
    key: Path,
    user: str,
    op: str,
    change: Callable[[ServerStore, Account], Any],
) -> Any:
    """Ask the running server to do ``op`` to ``user``'s account, or do ``change(store,
    account)`` on the stopped server's store; the answer or what ``change`` returned.

    :raises AdminError: there is no such account.
    """
    name = normal_form(user)
    if _server_runs(data_dir):
        return ask_server(data_dir, {"op": op, "user": name})

    def work(store: ServerStore) -> Any:
        account = store.accounts.get(name)
        if account is None:
            raise AdminError(f"no account {user!r}")
        return change(store, account)

    return with_store(data_dir, key, work)


def set_disabled(data_dir: Path, key: Path, user: str, disabled: bool) -> None:
    """Disable or enable ``user`` (closing their sessions when the server runs)."""
    name = normal_form(user)
    _account_change(
        data_dir,
        key,
        user,
        "disable" if disabled else "enable",
        lambda store, account: run_inline(
            store.accounts.update(account.username, disabled=disabled)
        ),
    )
    print(f"{visible(name)} is {'disabled' if disabled else 'enabled'}")


def invite(data_dir: Path, hours: float) -> None:
    """Make an invite and print it."""
    if not 0 < hours <= 24 * 365:
        raise AdminError("--hours must be more than 0 and at most a year")
    if _server_runs(data_dir):
        made = ask_server(data_dir, {"op": "invite", "hours": hours})
        code, expires, mode = made["code"], made["expires"], made["mode"]
    else:
        fd = lock_data_dir(data_dir)
        try:
            book = InviteBook.load(data_dir)
            code, expires = book.create(time.time(), hours)
            book.save()
        finally:
            unlock_data_dir(fd)
        mode = None
    print(f"invite: {code}")
    print(f"single use, valid until {when(expires)} UTC: pychat signup --invite {code}")
    if mode is not None and mode != "invite":
        print(f"note: the server runs with --signup {mode}, so it does not ask for invites")


def delete(data_dir: Path, key: Path, user: str, *, confirmed: bool) -> None:
    """Delete ``user`` with their key history and conversations."""
    name = normal_form(user)
    confirm_delete(name, confirmed)
    made = _account_change(
        data_dir,
        key,
        user,
        "delete",
        lambda store, account: {"conversations": run_inline(store.delete_account(name))},
    )
    gone = made["conversations"]
    print(f"{visible(name)} is deleted, with {gone} conversation(s)")


def reset(data_dir: Path, key: Path, user: str, *, confirmed: bool) -> None:
    """Remove ``user``'s account so that they can sign up again."""
    name = normal_form(user)
    confirm_reset(name, confirmed)
    _account_change(
        data_dir, key, user, "reset", lambda store, account: run_inline(store.accounts.delete(name))
    )
    print(f"{visible(name)} is reset: they can sign up again under the same name")


def rotate_store_key(data_dir: Path, key: Path) -> None:
    """Re-encrypt the stopped store under a new key (or settle an interrupted rotation)."""
    if _server_runs(data_dir):
        raise AdminError("the server is running: stop it first (systemctl stop pychat)")
    fd = lock_data_dir(data_dir)
    try:
        note = settle(data_dir, key)
        if note is not None:
            print(note)
            if note.startswith("finished"):
                return
        counts = rotate(data_dir, key)
    finally:
        unlock_data_dir(fd)
    print(
        f"re-encrypted {counts['accounts']} accounts, {counts['conversations']} conversations "
        f"and {counts['messages']} messages under a new key, now in {key}. Back it up; backups "
        "made before still need the old key"
    )


def check_store(data_dir: Path, key: Path) -> int:
    """Check every file; print what is wrong; 1 if anything is."""
    if _server_runs(data_dir):
        raise AdminError(
            "the server is running: stop it first (systemctl stop pychat); check reads "
            "the files the server writes"
        )
    fd = lock_data_dir(data_dir)
    try:
        counts, problems = check(data_dir, AtRestKey.load_or_create(key, data_exists=True))
    finally:
        unlock_data_dir(fd)
    for name, n in counts.items():
        print(f"{name:<16} {n}")
    if counts["journal records"]:
        print("the journal holds records the next start replays (the server was not stopped)")
    for problem in problems:
        print(f"problem: {problem}")
    print("ok: every file decrypts and parses" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


def server_fingerprint(data_dir: Path) -> str:
    """The fingerprint of the certificate the server made in ``data_dir`` (as it printed
    it at start).

    :raises AdminError: there is none yet (the server has not started there).
    """
    path = data_dir / CERT_FILE
    try:
        return certificate_fingerprint(path.read_bytes())
    except FileNotFoundError:
        raise AdminError(
            f"no certificate in {data_dir} yet: start the server once (make run) to make it"
        ) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pychat-admin", description="Operator tasks on a pyChat server's data."
    )
    parser.add_argument("--data-dir", "-d", type=Path, default=Path(DEFAULT_DATA_DIR))
    parser.add_argument(
        "--store-key", type=Path, default=None, help="the at-rest key (default DATA_DIR/store.key)"
    )
    parser.add_argument(
        "--database",
        default=os.environ.get("PYCHAT_DATABASE") or None,
        metavar="URL",
        help="work on this PostgreSQL store, not the data dir (default $PYCHAT_DATABASE)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    key = sub.add_parser("make-store-key", help="write a new at-rest key (never overwrites)")
    key.add_argument("path", type=Path, help="where to write it, e.g. /etc/pychat/store.key")
    sub.add_parser("stats", help="accounts, conversations, messages")
    sub.add_parser(
        "fingerprint",
        help="the server certificate's SHA-256 fingerprint (what clients pin; also while it runs)",
    )
    made = sub.add_parser("backup", help="a consistent copy, also while the server runs")
    made.add_argument("path", type=Path, help="a new (or empty) directory")
    back = sub.add_parser("restore", help="copy a backup into an empty data dir")
    back.add_argument("path", type=Path, help="the backup directory")
    sub.add_parser("check", help="read every file; report, never modify (server stopped)")
    sub.add_parser("users", help="every account: created, last login, disabled, conversations")
    for verb in ("disable", "enable"):
        one = sub.add_parser(verb, help=f"{verb} an account")
        one.add_argument("user")
    gone = sub.add_parser("delete", help="delete an account and its conversations")
    gone.add_argument("user")
    gone.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    sub.add_parser("rotate-store-key", help="re-encrypt everything under a new key (stopped)")
    code = sub.add_parser("invite", help="a single-use, expiring signup code")
    code.add_argument("--hours", type=float, default=72.0, help="how long it stays valid")
    again = sub.add_parser("reset", help="remove an account so its owner can sign up again")
    again.add_argument("user")
    again.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    move = sub.add_parser("migrate", help="copy the data dir into an empty database (stopped)")
    move.add_argument("--to", required=True, metavar="URL", help="postgresql://... (empty)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``pychat-admin``; returns the exit status."""
    args = _parser().parse_args(argv)
    data_dir: Path = args.data_dir
    key: Path = args.store_key or data_dir / "store.key"
    try:
        if args.command == "migrate":
            from pychat.admin import database

            return database.migrate(data_dir, key, args.to)
        if args.database and args.command != "make-store-key":
            from pychat.admin import database

            return database.run(args, key)
        if args.command == "make-store-key":
            make_store_key(args.path)
        elif args.command == "stats":
            stats(data_dir, key)
        elif args.command == "fingerprint":
            print(server_fingerprint(data_dir))
        elif args.command == "backup":
            backup(data_dir, key, args.path)
        elif args.command == "restore":
            restore_into(data_dir, args.path)
        elif args.command == "check":
            return check_store(data_dir, key)
        elif args.command == "users":
            users(data_dir, key)
        elif args.command in ("disable", "enable"):
            set_disabled(data_dir, key, args.user, args.command == "disable")
        elif args.command == "rotate-store-key":
            rotate_store_key(data_dir, key)
        elif args.command == "invite":
            invite(data_dir, args.hours)
        elif args.command == "delete":
            delete(data_dir, key, args.user, confirmed=args.yes)
        elif args.command == "reset":
            reset(data_dir, key, args.user, confirmed=args.yes)
    except (AdminError, DataDirBusy, StoreError, FileExistsError, OSError) as exc:
        print(f"pychat-admin: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

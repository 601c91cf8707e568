"""``pychat-admin --database URL``: the operator's commands on a PostgreSQL store.

The nodes may be running: a change is made in the database, in a transaction that also tells
the nodes (the event stream of :mod:`pychat.store.pg.events`), so they read the account again
and close a disabled, reset or deleted user's connections, as they do for each other.
``backup`` is ``pg_dump`` (custom format) and ``restore`` is ``pg_restore`` into an empty
database; the at-rest key is in neither (back it up apart, as for a data dir).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from pychat.admin.output import AdminError, confirm_delete, confirm_reset, print_users, when
from pychat.server.control import users_table
from pychat.store.atrest import AtRestKey
from pychat.store.blocking import inline_runner, run_inline
from pychat.store.errors import StoreError
from pychat.store.lock import DataDirBusy, lock_data_dir, unlock_data_dir
from pychat.store.pg.check import check_database
from pychat.store.pg.database import Database, DatabaseUnavailable
from pychat.store.pg.migrate import (
    KINDS,
    NotEmpty,
    copy_into,
    database_invites,
    file_invites,
    fingerprint,
)
from pychat.store.server_store import ServerStore
from pychat.text.safe import visible
from pychat.wire.usernames import normal_form

#: The file a backup is written to, in the backup's directory.
DUMP_FILE = "pychat.pgdump"


def open_store(url: str, key: Path) -> ServerStore:
    """The store in the database, for a tool (each query done when its call returns).

    :raises AdminError: unreachable, refused, a newer schema, or no key for the data there.
    """
    try:
        return ServerStore.open_database(url, key, inline_runner, inline=True)
    except (DatabaseUnavailable, StoreError) as exc:
        raise AdminError(str(exc)) from None


def _tell_closed(store: ServerStore, user: str, reason: str, message: str) -> None:
    """Tell the running nodes to close ``user``'s connections."""
    assert store.database is not None and store.events is not None  # noqa: S101
    body = {"k": "close", "user": user, "reason": reason, "message": message}
    run_inline(_awaited(store.database.run(store.events.write, body)))


async def _awaited(d: Any) -> Any:
    return await d


def stats(store: ServerStore) -> None:
    """Print the store's counts."""
    assert store.database is not None  # noqa: S101
    ((size,),) = store.database.query_now("SELECT pg_database_size(current_database())")
    convs = list(store.conversations)
    counts = {
        "accounts": len(store.accounts),
        "conversations": len(convs),
        "messages": sum(c.last_seq for c in convs),
        "bytes": int(size),
    }
    for name, n in counts.items():
        print(f"{name:<14} {n}")


def users(store: ServerStore) -> None:
    """Print every account."""
    print_users(users_table(store.accounts, store.conversations, store.key))


def _account(store: ServerStore, user: str) -> str:
    name = normal_form(user)
    if store.accounts.get(name) is None:
        raise AdminError(f"no account {user!r}")
    return name


def set_disabled(store: ServerStore, user: str, disabled: bool) -> None:
    """Disable or enable ``user``; the nodes close a disabled user's sessions."""
    name = _account(store, user)
    run_inline(store.accounts.update(name, disabled=disabled))
    if disabled:
        _tell_closed(store, name, "account_disabled", "the operator disabled this account")
    print(f"{visible(name)} is {'disabled' if disabled else 'enabled'}")


def reset(store: ServerStore, user: str, *, confirmed: bool) -> None:
    """Remove ``user``'s account so that they can sign up again."""
    name = _account(store, user)
    confirm_reset(name, confirmed)
    _tell_closed(store, name, "account_reset", "the operator reset this account")
    run_inline(store.accounts.delete(name))
    print(f"{visible(name)} is reset: they can sign up again under the same name")


def delete(store: ServerStore, user: str, *, confirmed: bool) -> None:
    """Delete ``user`` with their key history and conversations."""
    name = _account(store, user)
    confirm_delete(name, confirmed)
    _tell_closed(store, name, "account_deleted", "the operator deleted this account")
    gone = run_inline(store.delete_account(name))
    print(f"{visible(name)} is deleted, with {gone} conversation(s)")


def invite(store: ServerStore, hours: float) -> None:
    """Make an invite (in the database: good on every node) and print it."""
    if not 0 < hours <= 24 * 365:
        raise AdminError("--hours must be more than 0 and at most a year")
    code, expires = run_inline(store.invites.create(time.time(), hours))
    print(f"invite: {code}")
    print(f"single use, valid until {when(expires)} UTC: pychat signup --invite {code}")


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise AdminError(f"{name} is not on the PATH: install PostgreSQL's client programs")
    return found


def backup(url: str, dest: Path) -> None:
    """``pg_dump`` the database into the new (or empty) directory ``dest``."""
    dest = dest.absolute()
    if dest.exists() and any(dest.iterdir()):
        raise AdminError(f"{dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = dest / DUMP_FILE
    done = subprocess.run(
        [_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={target}", url],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise AdminError(f"pg_dump failed: {_first_line(done.stderr)}")
    target.chmod(0o600)
    print(
        f"backup in {target} ({target.stat().st_size} bytes, pg_dump's custom format). The "
        "store key is not in it: keep it safe apart from it"
    )


def restore(url: str, source: Path, key: Path) -> None:
    """``pg_restore`` a backup into the empty database at ``url``, then open it with the key
    and count what it holds."""
    dump = source / DUMP_FILE if source.is_dir() else source
    if not dump.is_file():
        raise AdminError(f"no backup at {dump}")
    if _has_tables(url):
        raise AdminError("the database is not empty: restore into a new, empty database")
    done = subprocess.run(
        [_tool("pg_restore"), "--no-owner", "--exit-on-error", f"--dbname={url}", str(dump)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise AdminError(f"pg_restore failed: {_first_line(done.stderr)}")
    store = open_store(url, key)
    try:
        convs = list(store.conversations)
        print(
            f"restored {len(store.accounts)} accounts, {len(convs)} conversations and "
            f"{sum(c.last_seq for c in convs)} messages; they open with the store key {key}"
        )
    finally:
        run_inline(store.close())


def _has_tables(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            ).fetchone()
    except psycopg.Error as exc:
        raise AdminError(f"cannot use the database: {_first_line(str(exc))}") from None
    return bool(row and row[0])


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "no reason given"


def check(url: str, key: Path) -> int:
    """Open every row; print what does not; 1 if anything does not (the store is not opened
    as a server opens it: a damaged row must not stop the check)."""
    try:
        database = Database.open(url)
        counts, problems = check_database(database, AtRestKey.load_or_create(key, data_exists=True))
    except (DatabaseUnavailable, StoreError) as exc:
        raise AdminError(str(exc)) from None
    for name, n in counts.items():
        print(f"{name:<16} {n}")
    for problem in problems:
        print(f"problem: {problem}")
    print("ok: every row opens" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


def migrate(data_dir: Path, key: Path, url: str) -> int:
    """Copy the stopped server's data dir into the empty database at ``url``, then compare
    counts and hashes of every record on both sides; 1 if they differ."""
    if not data_dir.is_dir():
        raise AdminError(f"{data_dir} is not a data dir")
    try:
        fd = lock_data_dir(data_dir)
    except DataDirBusy:
        raise AdminError("the server is running: stop it first (systemctl stop pychat)") from None
    try:
        source = ServerStore.open(data_dir, key, inline_runner)
        try:
            target = open_store(url, key)  # migrated to this code's schema, empty
            try:
                assert target.database is not None  # noqa: S101
                try:
                    copy_into(source, target.database)
                except NotEmpty as exc:
                    raise AdminError(str(exc)) from None
            finally:
                run_inline(target.close())
            copied = open_store(url, key)  # as a server opens it
            try:
                assert copied.database is not None  # noqa: S101
                before = fingerprint(source, file_invites(source))
                after = fingerprint(copied, database_invites(copied.database))
            finally:
                run_inline(copied.close())
        finally:
            run_inline(source.close())
    finally:
        unlock_data_dir(fd)
    print(f"{'':<12} {'in the data dir':>16} {'in the database':>16}  sha-256 of them all")
    for kind in KINDS:
        (n, digest), (m, other) = before[kind], after[kind]
        same = "same" if (n, digest) == (m, other) else f"DIFFERENT ({other[:16]}…)"
        print(f"{kind:<12} {n:>16} {m:>16}  {digest[:16]}… {same}")
    if before != after:
        print("the copy differs from the data dir: do not start on it; drop the database")
        return 1
    print(f"every record is in the database: start the server with --database {url}")
    return 0


def run(args: Any, key: Path) -> int:
    """``pychat-admin --database URL COMMAND``; the exit status."""
    url: str = args.database
    if args.command == "backup":
        backup(url, args.path)
        return 0
    if args.command == "restore":
        restore(url, args.path, key)
        return 0
    if args.command == "check":
        return check(url, key)
    if args.command == "rotate-store-key":
        raise AdminError("rotate-store-key works on a data dir; not on a database yet")
    store = open_store(url, key)
    try:
        if args.command == "stats":
            stats(store)
        elif args.command == "users":
            users(store)
        elif args.command in ("disable", "enable"):
            set_disabled(store, args.user, args.command == "disable")
        elif args.command == "invite":
            invite(store, args.hours)
        elif args.command == "delete":
            delete(store, args.user, confirmed=args.yes)
        elif args.command == "reset":
            reset(store, args.user, confirmed=args.yes)
    finally:
        run_inline(store.close())
    return 0

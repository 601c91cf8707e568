"""``pychat-admin`` on a PostgreSQL store: ``migrate --to`` copies a data dir made by a real
``twistd pychat`` into an empty database and verifies every record (and a server then serves
it), the account commands work while a node runs (it closes a disabled user's session), and
a pg_dump backup restored into a new database is served with everything in it."""

from __future__ import annotations

import base64
import os
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.utils import getProcessOutputAndValue

from pychat.client import auth
from pychat.client.protocol import ClientProtocol, RemoteError
from tests.accounts_helpers import KDF, public_keys
from tests.chat_helpers import envelope
from tests.pg_server import PgCluster
from tests.process_helpers import ROOT, ServerProcess, connect_srp, history_of, logged_in, processes

__all__ = ["processes"]


async def admin(cluster: PgCluster | None, *argv: str) -> tuple[str, int]:
    """Run pychat-admin as its own process (with PostgreSQL's programs on its PATH)."""
    env = dict(os.environ)
    if cluster is not None:
        env["PATH"] = f"{cluster.bin_dir}:{env.get('PATH', '')}"
    out, err, code = await getProcessOutputAndValue(
        sys.executable, ["-m", "pychat.admin.cli", *argv], env=env, path=str(ROOT)
    )
    return (out + err).decode(), code


def node_on(where: Path, url: str, key: str, started: list[ServerProcess]) -> ServerProcess:
    """A ``twistd pychat`` on the database at ``url`` (its data dir under ``where``)."""
    where.mkdir()
    node = ServerProcess(where / "data", "--database", url, "--store-key", key)
    started.append(node)
    return node


async def chatted(port: int) -> tuple[ClientProtocol, str, str]:
    """alice and bob, three messages (one of them disappearing), a file; alice's connection,
    the conversation and the file's id."""
    for name in ("alice", "bob"):
        proto, params = await connect_srp(port)
        await auth.signup(proto, params, name, "pw", public_keys(name), kdf=KDF)
        proto.close()
    alice = await logged_in(port, "alice")
    conv = (await alice.request("open_conversation", peer="bob", envelope=envelope()))[
        "conversation"
    ]
    await alice.request("send", conversation=conv, epoch=1, ciphertext="one", client_id="1")
    await alice.request(
        "send", conversation=conv, epoch=1, ciphertext="gone soon", client_id="2",
        expires=int(time.time()) + 3600,
    )  # fmt: skip
    await alice.request("send", conversation=conv, epoch=1, ciphertext="three", client_id="3")
    data = b"the file's sealed bytes" * 100
    started = await alice.request("file_start", conversation=conv, size=len(data))
    await alice.request(
        "file_chunk", file=started["file"], index=0, data=base64.b64encode(data).decode()
    )
    return alice, conv, started["file"]


async def served(port: int, conv: str, file_id: str) -> tuple[list[Any], bytes]:
    """What bob is served: the conversation's messages' texts and the file."""
    bob = await logged_in(port, "bob")
    texts = [m["ciphertext"] for m in await history_of(bob, conv)]
    data = base64.b64decode((await bob.request("file_get", file=file_id, index=0))["data"])
    bob.close()
    return texts, data


@pytest_twisted.ensureDeferred
async def test_migrate_copies_a_data_dir_into_a_database_that_then_serves_it(
    pg_cluster: PgCluster, pg_url: str, tmp_path: Path, processes: list[ServerProcess]
) -> None:
    data = tmp_path / "data"
    files = ServerProcess(data)
    processes.append(files)
    alice, conv, file_id = await chatted(await files.started())
    alice.close()
    before = await served(files.port, conv, file_id)
    out, code = await admin(None, "-d", str(data), "migrate", "--to", pg_url)
    assert code == 1 and "the server is running" in out  # the server holds the data dir
    await files.stop()
    out, code = await admin(None, "-d", str(data), "invite", "--hours", "1")
    assert code == 0, out
    out, code = await admin(None, "-d", str(data), "migrate", "--to", pg_url)
    assert code == 0, out
    for kind, n in (("accounts", 2), ("conversations", 1), ("messages", 3), ("files", 1),
                    ("file chunks", 1), ("blobs", 1), ("invites", 1)):  # fmt: skip
        (line,) = [row for row in out.splitlines() if row.startswith(f"{kind} ")]
        assert line.split()[-1] == "same" and f" {n} " in line, line
    out, code = await admin(None, "-d", str(data), "migrate", "--to", pg_url)
    assert code == 1 and "already holds a store" in out  # never over a store
    on_db = node_on(tmp_path / "db", pg_url, str(data / "store.key"), processes)
    port = await on_db.started()
    assert await served(port, conv, file_id) == before
    bob = await logged_in(port, "bob")
    sent = await bob.request("send", conversation=conv, epoch=1, ciphertext="4", client_id="b")
    assert sent["seq"] == 4  # the numbering goes on
    bob.close()
    out, code = await admin(
        pg_cluster, "--database", pg_url, "--store-key", str(data / "store.key"), "check"
    )
    assert code == 0 and "ok: every row opens" in out, out
    await on_db.stop()


@pytest_twisted.ensureDeferred
async def test_admin_commands_on_the_database_while_a_node_runs(
    pg_cluster: PgCluster, pg_url: str, tmp_path: Path, processes: list[ServerProcess]
) -> None:
    key = str(tmp_path / "store.key")
    node = node_on(tmp_path / "node", pg_url, key, processes)
    alice, _, _ = await chatted(await node.started())
    db = ("--database", pg_url, "--store-key", key)
    out, code = await admin(pg_cluster, *db, "users")
    assert code == 0 and "alice" in out and "bob" in out, out
    out, code = await admin(pg_cluster, *db, "stats")
    assert code == 0 and "messages       3" in out, out
    pushed: list[dict[str, Any]] = []
    alice.on_event = pushed.append
    out, code = await admin(pg_cluster, *db, "disable", "alice")
    assert code == 0 and "alice is disabled" in out
    for _ in range(250):  # the node hears of it and closes her session
        if alice.is_closed:
            break
        await deferLater(reactor, 0.02, lambda: None)
    assert [p["reason"] for p in pushed if p["event"] == "closing"] == ["account_disabled"]
    try:
        await logged_in(node.port, "alice")
        raise AssertionError("a disabled account logged in")
    except RemoteError as exc:
        assert exc.code == "account_disabled"
    out, code = await admin(pg_cluster, *db, "enable", "alice")
    assert code == 0
    for _ in range(250):
        try:
            (await logged_in(node.port, "alice")).close()
            break
        except RemoteError:
            await deferLater(reactor, 0.02, lambda: None)
    out, code = await admin(pg_cluster, *db, "disable", "nobody-here")
    assert code == 1 and "no account 'nobody-here'" in out
    out, code = await admin(pg_cluster, *db, "reset", "bob", "--yes")
    assert code == 0 and "bob is reset" in out
    out, code = await admin(pg_cluster, *db, "check")
    assert code == 0 and "accounts         1" in out, out
    await node.stop()
    with psycopg.connect(pg_url, autocommit=True) as conn:  # one message's row, altered
        conn.execute("UPDATE messages SET sealed = sealed || '\\x00'::bytea WHERE seq = 2")
    out, code = await admin(pg_cluster, *db, "check")
    assert code == 1 and "problem: message 2 of" in out, out


@pytest_twisted.ensureDeferred
async def test_a_pg_dump_backup_restored_into_a_new_database_is_served(
    pg_cluster: PgCluster, pg_url: str, tmp_path: Path, processes: list[ServerProcess]
) -> None:
    key = str(tmp_path / "store.key")
    node = node_on(tmp_path / "node", pg_url, key, processes)
    alice, conv, file_id = await chatted(await node.started())
    alice.close()
    before = await served(node.port, conv, file_id)
    out, code = await admin(
        pg_cluster, "--database", pg_url, "--store-key", key, "backup", str(tmp_path / "b")
    )
    assert code == 0 and "pychat.pgdump" in out, out
    await node.stop()
    again = pg_cluster.create_database("restored")
    out, code = await admin(
        pg_cluster, "--database", again, "--store-key", key, "restore", str(tmp_path / "b")
    )
    assert code == 0 and "restored 2 accounts, 1 conversations and 3 messages" in out, out
    out, code = await admin(
        pg_cluster, "--database", again, "--store-key", key, "restore", str(tmp_path / "b")
    )
    assert code == 1 and "not empty" in out
    served_again = node_on(tmp_path / "node2", again, key, processes)
    assert await served(await served_again.started(), conv, file_id) == before
    await served_again.stop()

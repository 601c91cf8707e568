"""The server's control socket: ``pychat-admin`` asks a running server to do what only the
process that owns the store may do (a consistent backup, counts).

A Unix socket ``DATA_DIR/control.sock``, mode 0600 in the 0700 data dir, so only the server's
own user (and root) can connect.  One JSON object per line each way: ``{"op": "stats"}``,
``{"op": "users"}``, ``{"op": "disable", "user": NAME}`` (``enable`` and ``reset`` alike) or
``{"op": "backup", "path": "/abs/dir"}``; the answer is ``{"ok": true, ...}`` or
``{"ok": false, "error": "why"}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.endpoints import UNIXServerEndpoint
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure

from pychat.server.chat import ChatServer
from pychat.server.log_names import LogNames
from pychat.store.atrest import AtRestKey
from pychat.store.backup import plan_snapshot, write_snapshot
from pychat.store.errors import StoreError
from pychat.store.server_store import ServerStore
from pychat.wire.usernames import normal_form

log = Logger(namespace="pychat.control")

SOCKET = "control.sock"


class ControlProtocol(LineOnlyReceiver):
    """One admin connection: a request per line, answered in order."""

    delimiter = b"\n"
    MAX_LENGTH = 4096

    def __init__(self, control: ControlService) -> None:
        self.control = control

    def lineReceived(self, line: bytes) -> None:
        d = defer.ensureDeferred(self.control.answer(line))
        d.addErrback(self._failed)
        d.addCallback(lambda reply: self.sendLine(json.dumps(reply).encode()))

    @staticmethod
    def _failed(failure: Failure) -> dict[str, Any]:
        log.failure("control request failed", failure=failure)
        return {"ok": False, "error": f"the server could not do it: {failure.value}"}


def store_stats(data_dir: Path, store: ServerStore) -> dict[str, Any]:
    """Accounts, conversations, messages, and the bytes the store's files take on disk."""
    convs = list(store.conversations)
    files = [p for part in ("accounts", "conversations") for p in (data_dir / part).iterdir()]
    return {
        "accounts": len(store.accounts),
        "conversations": len(convs),
        "messages": sum(c.last_seq for c in convs),
        "bytes": sum(p.stat().st_size for p in files if p.is_file()),
    }


def users_table(accounts: Any, conversations: Any, key: AtRestKey) -> list[dict[str, Any]]:
    """One row per account: name, created, last login, disabled, conversation count, and the
    pseudonym the log calls it by."""
    log_name = LogNames(key)
    rows = []
    for account in sorted(accounts, key=lambda a: a.username):
        rows.append(
            {
                "user": account.username,
                "created": account.created,
                "last_login": account.last_login,
                "disabled": account.disabled,
                "conversations": len(conversations.for_user(account.username)),
                "in_log": log_name(account.username),
            }
        )
    return rows


class ControlService(Service):
    """Listens on the control socket while the server runs."""

    def __init__(self, reactor: Any, data_dir: Path, chat: ChatServer) -> None:
        self._reactor = reactor
        self.data_dir = data_dir
        self.chat = chat
        self.store: ServerStore = chat.store
        self._port: IListeningPort | None = None

    def startService(self) -> None:
        super().startService()
        path = self.data_dir / SOCKET
        path.unlink(missing_ok=True)  # left by a server that was killed
        endpoint = UNIXServerEndpoint(self._reactor, str(path), mode=0o600, wantPID=False)
        d = endpoint.listen(Factory.forProtocol(lambda: ControlProtocol(self)))
        d.addCallback(self._listening)
        d.addErrback(lambda f: log.error("no control socket: {e}", e=f.value))

    def _listening(self, port: IListeningPort) -> None:
        self._port = port

    def stopService(self) -> defer.Deferred[None] | None:
        super().stopService()
        if self._port is not None:
            port, self._port = self._port, None
            stopped: defer.Deferred[None] | None = port.stopListening()
            return stopped
        return None

    def stats(self) -> dict[str, Any]:
        """Counts of what the store holds."""
        return store_stats(self.data_dir, self.store)

    async def answer(self, line: bytes) -> dict[str, Any]:
        """The reply to one request line."""
        try:
            request = json.loads(line)
            op = request["op"]
        except (ValueError, KeyError, TypeError):
            return {"ok": False, "error": "not a control request"}
        if op == "stats":
            return {"ok": True, **self.stats()}
        if op == "backup":
            return await self._backup(request.get("path"))
        if op == "users":
            rows = users_table(self.store.accounts, self.store.conversations, self.store.key)
            return {"ok": True, "users": rows}
        if op in ("disable", "enable"):
            return await self._set_disabled(request.get("user"), op == "disable")
        if op == "invite":
            hours = request.get("hours", 72.0)
            if not isinstance(hours, int | float) or not 0 < hours <= 24 * 365:
                return {"ok": False, "error": "hours must be a number from 0 to a year"}
            code, expires = await self.chat.signup_gate.create(
                self._reactor.seconds(), float(hours)
            )
            return {
                "ok": True,
                "code": code,
                "expires": expires,
                "mode": self.chat.signup_gate.mode,
            }
        if op == "delete":
            user = request.get("user")
            if not isinstance(user, str):
                return {"ok": False, "error": "name the user"}
            gone = await self.chat.delete_account(normal_form(user))
            if gone is None:
                return {"ok": False, "error": f"no account {user!r}"}
            return {"ok": True, "conversations": gone}
        if op == "reset":
            user = request.get("user")
            if not isinstance(user, str):
                return {"ok": False, "error": "name the user"}
            if not await self.chat.reset_account(normal_form(user)):
                return {"ok": False, "error": f"no account {user!r}"}
            return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}

    async def _set_disabled(self, user: object, disabled: bool) -> dict[str, Any]:
        if not isinstance(user, str):
            return {"ok": False, "error": "name the user"}
        if not await self.chat.set_disabled(normal_form(user), disabled):
            return {"ok": False, "error": f"no account {user!r}"}
        return {"ok": True}

    async def _backup(self, path: object) -> dict[str, Any]:
        if not isinstance(path, str) or not Path(path).is_absolute():
            return {"ok": False, "error": "backup needs an absolute path"}
        plan = plan_snapshot(self.data_dir, self.store.accounts, self.store.conversations)
        try:
            manifest = await deferToThreadPool(
                self._reactor, self._reactor.getThreadPool(), write_snapshot, plan, Path(path)
            )
        except (OSError, ValueError, StoreError) as exc:
            return {"ok": False, "error": f"backup failed: {exc}"}
        log.info("backup written to {path}", path=path)
        return {"ok": True, **{k: v for k, v in manifest.items() if k != "files"}}

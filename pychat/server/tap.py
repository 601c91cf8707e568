"""``twistd pychat``: command-line options and the service tree.

``makeService`` only assembles: the chat server (which owns connections, and later the store)
and one TLS listener per ``--listen``.  Stopping the tree (SIGTERM) stops listening first,
then tells every client and closes its connection.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from twisted.application.service import IService, MultiService
from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.logger import Logger
from twisted.python import usage

from pychat import __version__, limits
from pychat.durable import ensure_private_dir
from pychat.server.chat import ChatServer
from pychat.server.collector import tune_for_server
from pychat.server.config import DEFAULT_DATA_DIR, DEFAULT_LISTEN, ServerConfig
from pychat.server.control import ControlService
from pychat.server.listener import ListenError, TLSListenerService, plan_endpoint
from pychat.server.tls_reload import ReloadableServerTLS, ReloadOnHangup
from pychat.store.blocking import inline_runner, thread_runner
from pychat.store.errors import StoreError
from pychat.store.lock import DataDirBusy, lock_data_dir, unlock_data_dir
from pychat.store.pg.database import DatabaseUnavailable
from pychat.store.server_store import ServerStore
from pychat.tls import TLSConfigError, load_or_create_credentials

log = Logger(namespace="pychat.tap")


class StartupError(SystemExit):
    """The server cannot start (its data cannot be opened); the message says which file and why.

    A ``SystemExit``, so ``twistd`` prints the message and exits with status 1 instead of a
    traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(f"pychat: cannot start: {message}")
        self.message = message


#: Descriptors kept free beside connections and the store's logs (listeners, the thread
#: pool's files, account writes, logging).
SPARE_DESCRIPTORS = 64


def fit_descriptors(config: ServerConfig, *, open_files: int) -> ServerConfig:
    """Raise the soft limit on open files to the hard one, and lower ``max_connections`` if
    the limit still cannot hold that many connections beside the store's ``open_files``, so
    the connection cap bites before ``accept`` fails for want of a descriptor."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    except (OSError, ValueError) as exc:
        log.warn("cannot raise the open-files limit: {e}", e=exc)
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    room = soft - open_files - SPARE_DESCRIPTORS
    if room < config.max_connections:
        fitted = max(1, room)
        log.warn(
            "the open-files limit ({soft}) leaves room for {n} connections beside the store; "
            "--max-connections lowered from {was} (raise LimitNOFILE= or ulimit -n)",
            soft=soft,
            n=fitted,
            was=config.max_connections,
        )
        return dataclasses.replace(config, max_connections=fitted)
    return config


def _hard_exit(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def exit_after_shutdown(reactor: Any, code: int = 1) -> Callable[[str], None]:
    """What a listener calls when it cannot listen: say so in one line, stop the reactor
    cleanly, then end the process with ``code`` so systemd sees a failure and restarts it
    (twistd itself always exits 0 after a stop)."""

    def fatal(message: str) -> None:
        print(f"pychat: cannot start: {message}", file=sys.stderr)
        reactor.addSystemEventTrigger("after", "shutdown", _hard_exit, code)
        if getattr(reactor, "running", False):
            reactor.stop()
        else:
            reactor.callWhenRunning(reactor.stop)

    return fatal


class Options(usage.Options):
    """Options of ``twistd pychat``."""

    synopsis = "[options]"
    longdesc = (
        "Run the pyChat server: end-to-end encrypted chat over TLS.  "
        "See docs/operations.md for deployment behind NAT and with systemd."
    )

    optParameters: ClassVar[list[list[Any]]] = [
        [
            "data-dir",
            "d",
            DEFAULT_DATA_DIR,
            "Directory for accounts, conversations and the "
            "generated TLS certificate (created with mode 0700).",
        ],
        [
            "tls-cert",
            None,
            None,
            "PEM certificate (chain) to serve instead of the self-signed one.",
        ],
        ["tls-key", None, None, "PEM private key of --tls-cert."],
        [
            "store-key",
            None,
            None,
            "File holding the at-rest encryption key "
            "(default DATA_DIR/store.key; created with mode 0600 on first start).",
        ],
        [
            "database",
            None,
            None,
            "postgresql://... URL: keep accounts, conversations and files in PostgreSQL "
            "instead of the data dir (default $PYCHAT_DATABASE; unset: the data dir).",
        ],
        ["max-line", None, limits.DEFAULT_MAX_LINE, "Longest protocol line in bytes.", int],
        [
            "signup",
            None,
            "open",
            "Who may create accounts: open (anyone who reaches the server), invite (with a "
            "code from pychat-admin invite) or closed.",
            str,
        ],
        [
            "signups-per-hour",
            None,
            limits.SIGNUPS_PER_ADDRESS_PER_HOUR,
            "New accounts allowed per source address per hour (0: no limit). Raise it when "
            "a whole household signs up from behind one NAT address.",
            int,
        ],
        [
            "file-max-mb",
            None,
            100,
            "The largest file users may send, in MiB (0: no files).",
            int,
        ],
        [
            "file-quota-mb",
            None,
            1024,
            "How much file space each user may hold at once, in MiB.",
            int,
        ],
        [
            "file-days",
            None,
            7.0,
            "Days a file is kept before it is deleted (whether fetched or not).",
            float,
        ],
        [
            "max-group-members",
            None,
            limits.DEFAULT_MAX_GROUP_MEMBERS,
            "The most members a group may have (each adds about 800 bytes to the group's "
            "key envelopes: above 60, raise --max-line too, else fewer are allowed).",
            int,
        ],
        [
            "idle-timeout",
            None,
            limits.DEFAULT_IDLE_TIMEOUT,
            "Seconds without a complete request after which a connection is closed.",
            float,
        ],
        [
            "max-connections",
            None,
            limits.MAX_CONNECTIONS,
            "Open connections at once; more are refused at once.",
            int,
        ],
        [
            "max-connections-per-address",
            None,
            limits.MAX_CONNECTIONS_PER_ADDRESS,
            "Open connections from one IP address (a household behind NAT shares one).",
            int,
        ],
        [
            "login-starts-per-minute",
            None,
            limits.LOGIN_STARTS_PER_ADDRESS,
            "Logins one IP address may start per minute without a device token (devices "
            "that logged in before present one and are not counted).",
            int,
        ],
        [
            "requests-per-second",
            None,
            limits.REQUESTS_PER_SECOND,
            "Steady request rate one connection may keep (bursts of "
            f"{limits.REQUEST_BURST} are fine); beyond it requests get rate_limited.",
            int,
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []

    def opt_listen(self, description: str) -> None:
        """Twisted server endpoint to listen on; may be given several times (default ssl:8765).
        An ssl: endpoint without privateKey= uses the server's own certificate, e.g.
        ssl:8765:interface=127.0.0.1 or ssl:8765:interface=\\:\\:1."""
        self["listen"].append(description)

    opt_l = opt_listen

    def opt_version(self) -> None:
        """Print the pyChat version and exit."""
        print(f"pychat {__version__}")
        raise SystemExit(0)

    def postOptions(self) -> None:
        try:
            self.config = ServerConfig(
                data_dir=Path(self["data-dir"]),
                listen=tuple(self["listen"]) or (DEFAULT_LISTEN,),
                tls_cert=Path(self["tls-cert"]) if self["tls-cert"] else None,
                tls_key=Path(self["tls-key"]) if self["tls-key"] else None,
                store_key=Path(self["store-key"]) if self["store-key"] else None,
                database=self["database"] or os.environ.get("PYCHAT_DATABASE") or None,
                max_line=self["max-line"],
                idle_timeout=self["idle-timeout"],
                max_connections=self["max-connections"],
                max_connections_per_address=self["max-connections-per-address"],
                requests_per_second=self["requests-per-second"],
                login_starts_per_minute=self["login-starts-per-minute"],
                signups_per_hour=self["signups-per-hour"],
                signup=self["signup"],
                file_max_size=self["file-max-mb"] * 1024 * 1024,
                file_quota=self["file-quota-mb"] * 1024 * 1024,
                file_max_age=self["file-days"] * 86400.0,
                max_group_members=self["max-group-members"],
            )
        except ValueError as exc:
            raise usage.UsageError(str(exc)) from None


class DataDirLock:
    """Holds the data dir's lock from assembly until the store is closed at a stop
    (pychat-admin then knows the server runs, and a second server on the same data dir
    refuses to start).  A killed server's lock goes with its process.

    :raises DataDirBusy: another process holds it.
    """

    def __init__(self, data_dir: Path) -> None:
        self._fd: int | None = lock_data_dir(data_dir)

    def release(self) -> None:
        """Give the lock back (once)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            unlock_data_dir(fd)


def _prepare_data_dir(config: ServerConfig) -> None:
    try:
        narrowed = ensure_private_dir(config.data_dir)
    except OSError as exc:
        raise StartupError(
            f"--data-dir {config.data_dir}: {exc.strerror or exc} "
            "(it must be a directory the server's user can create and write)"
        ) from None
    if narrowed:
        log.warn("narrowed permissions of {dir} to 0700", dir=str(config.data_dir))


def _warn_if_key_beside_data(config: ServerConfig) -> None:
    key, data = config.store_key_path.absolute(), config.data_dir.absolute()
    if key.is_relative_to(data):
        log.warn(
            "the at-rest key {key} is inside the data dir: a copy of the data dir (a backup, a "
            "lost disk) is then a copy of the key, and encryption at rest protects nothing. "
            "Keep the key elsewhere: --store-key PATH, or the systemd unit's credential "
            "(docs/operations.md)",
            key=str(key),
        )


def _open_store(config: ServerConfig, reactor: Any) -> ServerStore:
    runner = thread_runner(reactor) if IReactorThreads.providedBy(reactor) else inline_runner
    try:
        if config.database:
            return ServerStore.open_database(config.database, config.store_key_path, runner)
        return ServerStore.open(config.data_dir, config.store_key_path, runner)
    except DatabaseUnavailable as exc:
        log.critical("{error}", error=str(exc))
        raise StartupError(str(exc)) from None
    except StoreError as exc:
        log.critical("cannot open the data dir: {error}", error=str(exc))
        raise StartupError(str(exc)) from None
    except OSError as exc:
        raise StartupError(f"--data-dir {config.data_dir}: {exc.strerror or exc}") from None


def makeService(options: Options | dict[str, Any], reactor: IReactorTime | None = None) -> IService:
    """Assemble the service tree for ``options``.

    :param reactor: the reactor to listen with (the global one by default; tests may pass one).
    :raises StartupError: the data dir, the TLS material, the at-rest key or a ``--listen``
        string cannot be used; one line names the option and the cause, and twistd exits 1.
    """
    in_twistd = reactor is None
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    config: ServerConfig = options.config if isinstance(options, Options) else options["config"]

    _prepare_data_dir(config)
    try:
        lock = DataDirLock(config.data_dir)
    except DataDirBusy as exc:
        raise StartupError(f"--data-dir: {exc}") from None
    try:
        service = _assemble(config, reactor, lock)
    except BaseException:
        lock.release()
        raise
    if in_twistd:
        tune_for_server()
    return service


def _assemble(config: ServerConfig, reactor: Any, lock: DataDirLock) -> IService:
    try:
        tls = ReloadableServerTLS(
            lambda: load_or_create_credentials(config.data_dir, config.tls_cert, config.tls_key)
        )
    except TLSConfigError as exc:
        raise StartupError(f"--tls-cert/--tls-key: {exc}") from None
    creds = tls.credentials
    store = _open_store(config, reactor)
    _warn_if_key_beside_data(config)
    config = fit_descriptors(config, open_files=2 * len(list(store.conversations)))
    top = MultiService()
    chat = ChatServer(config, reactor, store)
    chat.after_close.append(lock.release)
    chat.tls_fingerprint = creds.fingerprint
    chat.setServiceParent(top)

    def reload_certificate() -> None:
        if tls.reload():
            chat.tls_fingerprint = tls.credentials.fingerprint

    ReloadOnHangup(reactor, reload_certificate).setServiceParent(top)
    if IReactorThreads.providedBy(reactor):
        ControlService(reactor, config.data_dir, chat).setServiceParent(top)
    for description in config.listen:
        try:
            endpoint, wrap = plan_endpoint(reactor, description)
        except ListenError as exc:
            raise StartupError(str(exc)) from None
        listener = TLSListenerService(
            description,
            endpoint,
            chat.factory(),
            tls if wrap else None,
            reactor=reactor,
            on_fatal=exit_after_shutdown(reactor) if config.exit_on_listen_failure else None,
        )
        listener.setServiceParent(top)
    if creds.generated:
        log.info("generated a self-signed TLS certificate in {path}", path=str(creds.cert_path))
    log.info(
        "pyChat {version} TLS certificate SHA-256 fingerprint: {fp}",
        version=__version__,
        fp=creds.fingerprint,
    )
    return top

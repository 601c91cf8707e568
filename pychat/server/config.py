"""The server's settings, checked once at start."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pychat import limits

#: Listen here when no ``--listen`` is given: TLS on every interface, port 8765.
DEFAULT_LISTEN = "ssl:8765"
DEFAULT_DATA_DIR = "pychat-data"


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server needs to know from its command line.

    :ivar listen: Twisted server endpoint strings; see docs/operations.md.
    :ivar data_dir: where accounts, conversations and the generated certificate live.
    :ivar tls_cert: the operator's certificate (PEM, may include the chain), or None for the
        self-signed one in the data dir.
    :ivar tls_key: the operator's private key (PEM), with ``tls_cert``.
    :ivar store_key: where the at-rest encryption key lives (default: inside ``data_dir``).
    """

    data_dir: Path = Path(DEFAULT_DATA_DIR)
    listen: tuple[str, ...] = (DEFAULT_LISTEN,)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    store_key: Path | None = None
    #: A ``postgresql://`` URL: accounts, conversations and files live in that database
    #: instead of the data dir (docs/operations.md, "Running on PostgreSQL").
    database: str | None = None
    max_line: int = limits.DEFAULT_MAX_LINE
    idle_timeout: float = limits.DEFAULT_IDLE_TIMEOUT
    max_connections: int = limits.MAX_CONNECTIONS
    max_connections_per_address: int = limits.MAX_CONNECTIONS_PER_ADDRESS
    requests_per_second: int = limits.REQUESTS_PER_SECOND
    login_starts_per_minute: int = limits.LOGIN_STARTS_PER_ADDRESS
    max_output_queue: int = limits.MAX_OUTPUT_QUEUE
    signups_per_hour: int = limits.SIGNUPS_PER_ADDRESS_PER_HOUR
    #: Who may sign up: ``open``, ``invite`` (a code from ``pychat-admin invite``) or ``closed``.
    signup: str = "open"
    #: Files: the largest one (bytes of ciphertext), each user's total, and how long one is
    #: kept (seconds) before it is deleted.
    file_max_size: int = 100 * 1024 * 1024
    file_quota: int = 1024 * 1024 * 1024
    file_max_age: float = 7 * 24 * 3600.0
    #: The most members a group may have (its key envelope grows by each: see max_line).
    max_group_members: int = limits.DEFAULT_MAX_GROUP_MEMBERS
    server_name: str = field(default="pychat")
    #: End the process (exit 1) when a listener cannot open its port; in-process test
    #: servers turn it off.
    exit_on_listen_failure: bool = True

    def __post_init__(self) -> None:
        if self.database is not None and not self.database.startswith(
            ("postgresql://", "postgres://")
        ):
            raise ValueError("--database takes a postgresql:// URL")
        if self.max_line < limits.MIN_MAX_LINE:
            raise ValueError(f"max-line must be at least {limits.MIN_MAX_LINE} bytes")
        if self.max_connections < 1 or self.max_connections_per_address < 1:
            raise ValueError("--max-connections and --max-connections-per-address must be >= 1")
        if self.login_starts_per_minute < 1:
            raise ValueError("--login-starts-per-minute must be >= 1")
        if self.requests_per_second < 1:
            raise ValueError("--requests-per-second must be >= 1")
        if self.idle_timeout <= 0:
            raise ValueError("idle-timeout must be a positive number of seconds")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls-cert and tls-key go together: give both or neither")
        if self.signups_per_hour < 0:
            raise ValueError("signups-per-hour must be 0 (no limit) or more")
        if self.signup not in ("open", "invite", "closed"):
            raise ValueError("signup must be open, invite or closed")
        if self.file_max_size < 0 or self.file_quota < 0 or self.file_max_age <= 0:
            raise ValueError("file limits are sizes of 0 (no files) or more, and an age above 0")
        if not self.listen:
            raise ValueError("at least one listen endpoint is needed")
        if not 2 <= self.max_group_members <= limits.MAX_GROUP_MEMBERS:
            raise ValueError(f"--max-group-members must be 2 to {limits.MAX_GROUP_MEMBERS}")

    @cached_property
    def max_ciphertext(self) -> int:
        """The largest message ciphertext this server accepts (it depends on ``max_line``)."""
        return min(limits.MAX_CIPHERTEXT, self.max_line - limits.MESSAGE_OVERHEAD)

    @property
    def group_member_limit(self) -> int:
        """The most members a group may have here: ``max_group_members``, or fewer when
        ``max_line`` cannot hold the key envelopes of that many."""
        fit = self.max_group_envelope // limits.GROUP_ENVELOPE_PER_MEMBER
        return max(2, min(self.max_group_members, fit))

    @property
    def max_group_envelope(self) -> int:
        """The largest group key envelope (JSON bytes) this server accepts."""
        return self.max_line - limits.GROUP_OP_ROOM

    @property
    def store_key_path(self) -> Path:
        """The at-rest key file: ``--store-key`` or ``DATA_DIR/store.key``."""
        return self.store_key if self.store_key is not None else self.data_dir / "store.key"

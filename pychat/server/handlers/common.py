"""What every handler module shares: the dependencies handlers receive, the op definition
table, and the small checks and field bounds more than one module uses.

A handler is a module-level ``op(deps, ctx, params)``, mostly ``async def`` (a plain function
that answers at once or with a :class:`~pychat.server.ops.Later` is fine too): ``deps`` holds
the server's parts it may use (passed explicitly, so a handler is tested alone with fakes),
``ctx`` the connection it serves, ``params`` its checked parameters.  Each module lists its ops in
``OPS``; :func:`register` puts them in the registry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from pychat.server.ops import Later, OpContext, OpRegistry
from pychat.server.state import Outcome, State
from pychat.wire.errors import ErrorCode, ProtocolError

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from pychat.server.accounts import AccountService
    from pychat.server.config import ServerConfig
    from pychat.server.presence import Presence
    from pychat.server.ratelimit import TokenBucket
    from pychat.server.recent_log import RecentLog
    from pychat.server.signup_gate import SignupGate
    from pychat.store.interfaces import (
        AccountRepository,
        BlobRepository,
        ConversationRepository,
        FileRepository,
    )

#: Longest username a client may send (the normal form is at most 32 characters; this leaves
#: room for forms that normalise shorter).
RAW_USERNAME_MAX = 64
#: Longest conversation id a client may send (ids are 32 hex digits).
CONVERSATION_ID_MAX = 64
#: Longest base64 SRP value (a 4096-bit group's values are 684 characters).
SRP_VALUE_MAX = 1024


@dataclass(frozen=True)
class NoParams:
    """An op without fields."""


@dataclass(frozen=True)
class HandlerDeps:
    """The parts of the server a handler may use."""

    config: ServerConfig
    clock: IReactorTime
    accounts: AccountRepository
    conversations: ConversationRepository
    account_service: AccountService
    presence: Presence
    #: Mark a connection logged in as a user / logged out (presence, logs).
    logged_in: Callable[[OpContext, str], None]
    logged_out: Callable[[OpContext], None]
    #: What ``hello`` announces beyond the protocol version: limits, ops, SRP, KDF floor.
    hello_fields: Callable[[], Mapping[str, Any]]
    #: Who may sign up (open, by invite, closed).
    signup_gate: SignupGate
    #: The newest log lines (what ``whatdoyouknow`` shows a user of those naming them).
    recent_log: RecentLog
    #: Signals (typing, read marks) each user may send: a token bucket by username.
    signal_limits: TokenBucket
    #: Encrypted files.
    files: FileRepository
    #: The ciphertext of disappearing messages.
    ephemeral: BlobRepository


Handler = Callable[
    [HandlerDeps, OpContext, Any],
    Awaitable[Mapping[str, Any] | Later] | Mapping[str, Any] | Later,
]


@dataclass(frozen=True)
class OpDef:
    """One row of a module's op table."""

    name: str
    params: type
    states: Mapping[State, Outcome]
    handler: Handler


def register(registry: OpRegistry, deps: HandlerDeps, ops: Iterable[OpDef]) -> None:
    """Add ``ops`` to ``registry``, each handler bound to ``deps``."""
    for op in ops:
        registry.op(op.name, op.params, op.states)(partial(op.handler, deps))


def current_user(ctx: OpContext) -> str:
    """The username of an authenticated connection."""
    username = ctx.session.username
    if username is None:  # the state table keeps this from happening
        raise ProtocolError(ErrorCode.WRONG_STATE, "log in first")
    return username

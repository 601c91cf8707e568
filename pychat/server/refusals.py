"""How a failed request becomes its error reply: the peer's fault or the store's is a
documented error; a bug of ours is logged and closes that one connection."""

from __future__ import annotations

from twisted.logger import Logger
from twisted.python.failure import Failure

from pychat.server.ratelimit import TokenBucket
from pychat.store.errors import LogDamaged, StorageFailure, StoreError
from pychat.text.log import for_log
from pychat.wire.envelope import EnvelopeError, Request, encode_error
from pychat.wire.errors import ErrorCode, ProtocolError

log = Logger(namespace="pychat.connection")

#: Seconds a client is told to wait after a full disk; an operator frees space in minutes.
STORAGE_RETRY_AFTER = 30


def storage_refusal(exc: Exception) -> ProtocolError:
    """The documented error for a store that could not write or read: nothing was
    acknowledged, and the client may retry (the same ``client_id`` is safe)."""
    if isinstance(exc, StorageFailure) and exc.full:
        return ProtocolError(
            ErrorCode.STORAGE_FULL,
            "the server's disk is full; nothing was stored: try again later",
            details={"retry_after": STORAGE_RETRY_AFTER},
        )
    if isinstance(exc, LogDamaged | StoreError):
        return ProtocolError(
            ErrorCode.CONVERSATION_DAMAGED,
            "this conversation's stored data is damaged; it is read-only until the operator "
            "restores it",
        )
    return ProtocolError(
        ErrorCode.STORAGE_ERROR,
        "the server could not store this; nothing was stored: try again later",
        details={"retry_after": STORAGE_RETRY_AFTER},
    )


#: Failures that are answered with a documented error (not a bug of ours).
REFUSALS = (ProtocolError, StorageFailure, LogDamaged, StoreError)


def over_budget(request: Request, budget: TokenBucket, rate: int) -> EnvelopeError:
    """The refusal of a request past the connection's request budget (it is not run)."""
    wait = max(1, int(budget.retry_after("requests") + 0.999))
    refusal = EnvelopeError(
        ErrorCode.RATE_LIMITED,
        f"more than {rate} requests a second on this connection; slow down",
        request.id,
    )
    refusal.details["retry_after"] = wait
    return refusal


def error_reply(request: Request, failure: Failure, peer: str) -> tuple[bytes, bool]:
    """The error line for a failed request, and whether the connection closes after it."""
    exc = failure.value
    if isinstance(exc, StorageFailure | LogDamaged | StoreError):
        exc = storage_refusal(exc)
    if isinstance(exc, ProtocolError):
        log.debug(
            "{op} from {peer} refused: {code}", op=for_log(request.op), peer=peer, code=exc.code
        )
        return encode_error(request.id, exc), exc.close
    log.failure(
        "internal error handling {op} from {peer}",
        failure=failure,
        op=for_log(request.op),
        peer=peer,
    )
    internal = ProtocolError(ErrorCode.INTERNAL_ERROR, "internal server error")
    return encode_error(request.id, internal), True

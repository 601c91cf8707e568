"""The errors account operations share: the rate limit with its wait, the one failure for a
wrong password and an unknown name alike, and a username that is not one."""

from __future__ import annotations

from pychat.wire.errors import ErrorCode, ProtocolError
from pychat.wire.usernames import UsernameError, normalize


def rate_limited(retry_after: float, what: str) -> ProtocolError:
    """The ``rate_limited`` error with its ``retry_after`` (whole seconds, rounded up)."""
    seconds = max(1, int(retry_after + 0.999))
    return ProtocolError(
        ErrorCode.RATE_LIMITED,
        f"too many {what}; try again in {seconds} s",
        details={"retry_after": seconds},
    )


def auth_failed() -> ProtocolError:
    """The one error for a wrong password and an unknown user alike."""
    return ProtocolError(ErrorCode.AUTH_FAILED, "wrong username or password")


def username_or_error(raw: str) -> str:
    """The normal form of ``raw``, or ``bad_username``."""
    try:
        return normalize(raw)
    except UsernameError as exc:
        raise ProtocolError(ErrorCode.BAD_USERNAME, str(exc)) from None

"""Who may sign up: everyone (``--signup open``), holders of an invite (``invite``), or
nobody (``closed``).  Invites are single-use and expire (store/invites.py)."""

from __future__ import annotations

from pychat.store.interfaces import InviteRepository
from pychat.wire.errors import ErrorCode, ProtocolError

SIGNUP_MODES = ("open", "invite", "closed")


class SignupGate:
    """Checks a signup against the server's mode, and spends its invite once it succeeded."""

    def __init__(self, mode: str, invites: InviteRepository) -> None:
        if mode not in SIGNUP_MODES:
            raise ValueError(f"signup must be one of {', '.join(SIGNUP_MODES)}")
        self.mode = mode
        self.invites = invites

    async def admit(self, invite: str | None, now: float) -> str | None:
        """Let a signup go ahead; return the invite it holds (None in open mode).

        :raises ProtocolError: ``signup_closed``, ``invite_required`` or ``bad_invite``.
        """
        if self.mode == "open":
            return None
        if self.mode == "closed":
            raise ProtocolError(
                ErrorCode.SIGNUP_CLOSED, "this server takes no new accounts; ask its operator"
            )
        if invite is None:
            raise ProtocolError(
                ErrorCode.INVITE_REQUIRED,
                "this server takes new accounts by invitation: ask its operator for an invite",
            )
        handle = await self.invites.reserve(invite, now)
        if handle is None:
            raise ProtocolError(ErrorCode.BAD_INVITE, "this invite is unknown, used or expired")
        return handle

    async def release(self, handle: str | None) -> None:
        """The signup failed: its invite is usable again."""
        if handle is not None:
            await self.invites.release(handle)

    async def spend(self, handle: str | None) -> None:
        """The account exists: its invite is used up (and saved as such)."""
        if handle is not None:
            await self.invites.consume(handle)

    async def create(self, now: float, hours: float) -> tuple[str, float]:
        """A new invite (for the control socket); stored before it is handed out."""
        return await self.invites.create(now, hours)

"""Stable error codes of the wire protocol and the exception that carries them.

Every ``ok: false`` reply holds ``{"code": ..., "message": ...}``.  Codes are stable strings that
clients may switch on; messages are for people and may change.  The table in docs/protocol.md
lists every code; a test checks the two agree.
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(enum.StrEnum):
    """Every error code the server can send.  Keep docs/protocol.md in step."""

    # Framing and envelope: the peer sent something that is not a request.
    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "not_an_object"
    BAD_ID = "bad_id"
    LINE_TOO_LONG = "line_too_long"
    # Request level.
    UNKNOWN_OP = "unknown_op"
    BAD_FIELD = "bad_field"
    WRONG_STATE = "wrong_state"
    UNSUPPORTED_VERSION = "unsupported_version"
    # Accounts.
    BAD_USERNAME = "bad_username"
    USERNAME_TAKEN = "username_taken"
    BAD_KDF = "bad_kdf"
    BAD_KEYS = "bad_keys"
    BAD_SRP_VALUE = "bad_srp_value"
    AUTH_FAILED = "auth_failed"
    ACCOUNT_DISABLED = "account_disabled"
    SIGNUP_CLOSED = "signup_closed"
    INVITE_REQUIRED = "invite_required"
    BAD_INVITE = "bad_invite"
    RATE_LIMITED = "rate_limited"
    # Keys and conversations.
    UNKNOWN_USER = "unknown_user"
    UNKNOWN_CONVERSATION = "unknown_conversation"
    SELF_CONVERSATION = "self_conversation"
    BAD_EPOCH = "bad_epoch"
    BAD_SIGNATURE = "bad_signature"
    BAD_STATEMENT = "bad_statement"
    MESSAGE_TOO_LARGE = "message_too_large"
    CONVERSATION_DAMAGED = "conversation_damaged"
    # Files.
    FILE_TOO_LARGE = "file_too_large"
    QUOTA_EXCEEDED = "quota_exceeded"
    UNKNOWN_FILE = "unknown_file"
    BAD_CHUNK = "bad_chunk"
    # Our side.
    STORAGE_FULL = "storage_full"
    STORAGE_ERROR = "storage_error"
    INTERNAL_ERROR = "internal_error"


class ProtocolError(Exception):
    """A request failed because of something the peer did; becomes an ``ok: false`` reply.

    :param code: the stable error code.
    :param message: a sentence for people.
    :param details: extra machine-readable fields merged into the ``error`` object
        (for example ``retry_after``).
    :param close: whether the server closes the connection after sending the reply.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.close = close

    def to_json(self) -> dict[str, Any]:
        """The ``error`` object of the reply."""
        body: dict[str, Any] = {"code": str(self.code), "message": self.message}
        body.update(self.details)
        return body

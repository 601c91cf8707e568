"""What ``hello`` announces beyond the protocol version: limits, ops, SRP and KDF settings,
and who may sign up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pychat import limits
from pychat.crypto.kdf import MINIMUM
from pychat.server.accounts import AccountService
from pychat.server.config import ServerConfig
from pychat.server.ops import OpRegistry
from pychat.server.signup_gate import SignupGate


class HelloFields:
    """The fields of the ``hello`` reply, as they are when it is asked (a call)."""

    def __init__(
        self,
        config: ServerConfig,
        account_service: AccountService,
        signup_gate: SignupGate,
        registry: OpRegistry,
    ) -> None:
        self.config, self.account_service = config, account_service
        self.signup_gate, self.registry = signup_gate, registry

    def extra_limits(self) -> Mapping[str, Any]:
        """Limits beyond framing that clients should know."""
        return {
            "max_ciphertext": self.config.max_ciphertext,
            "max_envelope": limits.MAX_ENVELOPE,
            "max_group_members": self.config.group_member_limit,
            "max_group_envelope": self.config.max_group_envelope,
            "max_client_id": limits.MAX_CLIENT_ID,
            "history_max": limits.HISTORY_MAX,
        }

    def __call__(self) -> Mapping[str, Any]:
        """What ``hello`` announces beyond the protocol version."""
        return {
            "limits": {
                "max_line": self.config.max_line,
                "idle_timeout": self.config.idle_timeout,
                "max_pending": limits.MAX_PENDING_REQUESTS,
                "max_pending_bytes": limits.MAX_PENDING_BYTES,
                **self.extra_limits(),
            },
            "ops": self.registry.names(),
            "srp": self.account_service.srp_params.to_json(),
            "kdf_minimum": MINIMUM,
            "signup": self.signup_gate.mode,
        }

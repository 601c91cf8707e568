"""What can go wrong in the client, as exceptions whose message is meant for the user."""

from __future__ import annotations


class ClientError(Exception):
    """A client-side failure with a message for the user."""


class ConnectError(ClientError):
    """No usable connection: TCP connect or the TLS handshake failed or timed out."""


class NotPyChatServer(ConnectError):
    """The TLS server did not answer ``hello`` as a pyChat server does."""


class MessageTooLong(ClientError):
    """The message is larger than the server's ``max_ciphertext`` allows (the limit is said)."""


class UnsendableText(ClientError):
    """The text cannot be sent as it is (it is not valid Unicode text); nothing was sent."""


def check_sendable(text: str) -> None:
    """Refuse text that is not valid Unicode (lone surrogates, e.g. from bytes that were not
    UTF-8): it could not be encoded, and would otherwise fail deep inside the encryption.

    :raises UnsendableText: naming the first bad position.
    """
    for index, ch in enumerate(text):
        if "\ud800" <= ch <= "\udfff":
            raise UnsendableText(
                f"the message is not valid text: position {index} holds a lone surrogate "
                f"<U+{ord(ch):04X}> (was the input valid UTF-8?); nothing was sent"
            )


class ReplyTimeout(ClientError):
    """The server did not answer a request in time."""


class TrustError(ClientError):
    """A certificate or key does not match what was pinned."""


class CertificateChanged(TrustError):
    """The server presented another certificate than the pinned one; nothing was sent."""

    def __init__(self, server: str, pinned: str, presented: str) -> None:
        super().__init__(
            f"DANGER: the certificate of {server} has CHANGED.\n"
            f"  pinned:    {pinned}\n"
            f"  presented: {presented}\n"
            "Someone may be impersonating the server, or its operator replaced the certificate.\n"
            "Nothing was sent. Ask the operator for the new fingerprint (printed when the server\n"
            "starts) and, only if it matches, accept it with:\n"
            f"  pychat accept-server {server} {presented}"
        )
        self.server, self.pinned, self.presented = server, pinned, presented


class PeerKeyChanged(TrustError):
    """A peer's identity key differs from the pinned one; sending is blocked until accepted."""

    def __init__(self, peer: str, pinned: str, current: str, chain_ok: bool) -> None:
        how = (
            "the change is signed by their previous key"
            if chain_ok
            else "the change is NOT signed by their previous key"
        )
        super().__init__(
            f"WARNING: {peer}'s identity key has CHANGED ({how}).\n"
            f"  pinned:  {pinned}\n  current: {current}\n"
            f"Sending to {peer} is blocked. Compare safety numbers with {peer} "
            f"(pychat verify {peer}); if they match, accept the new key with: "
            f"pychat trust {peer}"
        )
        self.peer, self.pinned, self.current, self.chain_ok = peer, pinned, current, chain_ok


class KeysReplaced(TrustError):
    """The key directory lists other identity keys for this user than this device holds,
    not reached from them by a signed rotation: this device must not speak for the account."""

"""pyChat: a self-hosted, end-to-end encrypted chat server and client."""

__version__ = "0.1.0"

#: The wire protocol version this code speaks (see docs/protocol.md).
PROTOCOL_VERSION = 1

"""Every tunable limit of the server, in one place, with the reason for its value.

Handlers, the framing layer and the store read these names; options on the command line may
override some of them (``--max-line``, ``--idle-timeout``) through
:class:`pychat.server.config.ServerConfig`.
"""

from __future__ import annotations

#: Default maximum length of one protocol line in bytes, newline excluded.  64 KiB holds the
#: largest legitimate request (a key envelope or a maximum-size message with its JSON overhead)
#: with room to spare, and bounds what one connection can make the server buffer.
DEFAULT_MAX_LINE = 64 * 1024

#: The smallest ``--max-line`` an operator may set: below this a signup with RSA-3072 keys
#: and a key backup would no longer fit in one line.
MIN_MAX_LINE = 16 * 1024

#: Seconds a connection may stay silent before the server closes it.  Clients send ``ping``
#: well inside this, so only dead or forgotten sockets hit it.
DEFAULT_IDLE_TIMEOUT = 300.0

#: Requests one connection may have parsed but not yet answered.  Requests are handled one
#: at a time per connection (so replies come in order and state changes are sequential); past
#: this the server stops reading from the socket until the backlog drains, so a pipelining
#: client cannot make the server hold unbounded work.
MAX_PENDING_REQUESTS = 32

#: Seconds the server gives connections to close on shutdown before aborting them, so SIGTERM
#: never hangs on a peer that stopped reading.
SHUTDOWN_GRACE = 2.0

#: Largest request id accepted: the biggest integer a JSON number holds exactly in every
#: mainstream JSON library (2**53 - 1), so ids round-trip through any client.
MAX_REQUEST_ID = 2**53 - 1

#: Longest ``op`` name accepted before it is even looked up; keeps error messages short.
MAX_OP_NAME = 64

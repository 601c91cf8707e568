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

#: Bytes of request lines one connection may have received but not yet answered: past this,
#: too, the socket is not read until the backlog drains (largest messages: about five).
MAX_PENDING_BYTES = 256 * 1024

#: Seconds the server gives connections to close on shutdown before aborting them, so SIGTERM
#: never hangs on a peer that stopped reading.
SHUTDOWN_GRACE = 2.0

#: Largest request id accepted: the biggest integer a JSON number holds exactly in every
#: mainstream JSON library (2**53 - 1), so ids round-trip through any client.
MAX_REQUEST_ID = 2**53 - 1

#: Longest ``op`` name accepted before it is even looked up; keeps error messages short.
MAX_OP_NAME = 64

# -- accounts ------------------------------------------------------------------------------

#: Failed logins (wrong password) an account may have before it is locked briefly.
ACCOUNT_FREE_FAILURES = 5
#: The first per-account lock; each further failure doubles it ...
ACCOUNT_LOCK_BASE = 2.0
#: ... up to this.  It is also the longest a legitimate user can be kept out by someone else
#: hammering their account from elsewhere; per-address locks take over against the hammerer.
ACCOUNT_LOCK_MAX = 60.0
#: A quiet account's failures are forgotten after this many seconds.
ACCOUNT_FORGET_AFTER = 15 * 60.0

#: Failed logins one address may have (across all accounts) before it is locked ...
ADDRESS_FREE_FAILURES = 10
ADDRESS_LOCK_BASE = 2.0
#: ... growing up to 15 minutes, so one source gets ~100 guesses an hour at most.
ADDRESS_LOCK_MAX = 15 * 60.0
ADDRESS_FORGET_AFTER = 60 * 60.0

#: Login attempts (``login_start``) per address: each costs the server two 3072-bit
#: exponentiations, so a burst is fine and a flood is not.
LOGIN_STARTS_PER_ADDRESS = 30
LOGIN_STARTS_PERIOD = 60.0

#: New accounts per address per hour.
SIGNUPS_PER_ADDRESS_PER_HOUR = 5

#: Keys (addresses, account names) a rate limiter remembers; the oldest is forgotten first.
RATE_LIMIT_MAX_KEYS = 100_000

#: Bytes of an SRP salt: at least 16 (RFC 5054 §3.1 asks for at least 16 random bytes).
SRP_SALT_MIN = 16
SRP_SALT_MAX = 64

#: Largest encrypted private-key backup a client may store with its account (base64 text).
#: An RSA-3072 and an Ed25519 private key, wrapped, are about 3 KiB; 16 KiB leaves room.
KEY_BACKUP_MAX = 16 * 1024

# -- conversations ---------------------------------------------------------------------------

#: Largest message ciphertext (the opaque text a client sends), in characters.  Kept well under
#: the line limit so the JSON around it always fits; with a smaller ``--max-line`` the limit
#: shrinks to ``max_line - MESSAGE_OVERHEAD``.
MAX_CIPHERTEXT = 48 * 1024
MESSAGE_OVERHEAD = 4 * 1024

#: Largest conversation key envelope (JSON text): two RSA-3072 wrapped keys, a signature and
#: the ids fit in about 2 KiB.
MAX_ENVELOPE = 16 * 1024

#: Longest client message id (the idempotency key of ``send``).
MAX_CLIENT_ID = 64

#: Messages one ``history`` call returns at most, and by default.
HISTORY_MAX = 100
HISTORY_DEFAULT = 50

#: Bytes the server queues for a connection whose reader has stopped reading.  Past this the
#: connection is dropped (its messages stay in the store), so one dead reader never makes
#: the server hold unbounded memory.
MAX_OUTPUT_QUEUE = 1024 * 1024

#: Seconds a new connection has to finish its TLS handshake: a real client needs well under
#: one; a socket held open without one only uses a descriptor.
HANDSHAKE_TIMEOUT = 10.0

#: Seconds a line may stay incomplete.  The idle timer counts only whole requests, so without
#: this a byte every few minutes would hold a connection for ever (slow drip).
PARTIAL_LINE_TIMEOUT = 30.0

#: Open connections at once, and from one address.  A household behind one NAT address with
#: a few devices each stays far below the second; both stay below the descriptors a default
#: ``ulimit -n`` of 1024 leaves after the store's files (checked at start).
MAX_CONNECTIONS = 512
MAX_CONNECTIONS_PER_ADDRESS = 64

#: Requests one connection may make: a burst, refilled at a steady rate per second.  Scripts
#: that pipeline (``history`` pages, a backlog of sends) fit in the burst; a flood is answered
#: with ``rate_limited`` instead of taking the server's whole CPU.
REQUESTS_PER_SECOND = 500
REQUEST_BURST = 2000

#: A device token (given at each successful login) lets its holder's logins skip the account
#: and address locks, so strangers cannot lock the owner out; failures with a token are
#: limited per token instead: this many free, then a doubling lock up to the maximum.
DEVICE_TOKEN_FREE_FAILURES = 5
DEVICE_TOKEN_LOCK_BASE = 2.0
DEVICE_TOKEN_LOCK_MAX = 60.0
DEVICE_TOKEN_FORGET_AFTER = 15 * 60.0
DEVICE_TOKEN_MAX = 128  # characters of the b64 token a client may send

#: Seconds between saves of the read markers that move when their user sends a message (a
#: crash loses at most this much of such moves: those messages show as unread again).
READ_MARKER_SAVE_INTERVAL = 1.0

#: Messages of a durable batch answered (replied to and pushed) in one reactor turn; the rest
#: in the turns after, so the first replies leave while the rest are made.  At 50
#: conversations with 64 messages in flight each, 128 to 1,024 kept the server busy all the
#: time (64 cost more turns than it saved); told all at once it sat idle a tenth of the time.
DURABLE_TELLS_PER_TURN = 256

#: Members a group may have by default (``--max-group-members``), and the most any server
#: allows (what a chain may hold whatever the server: docs/e2e.md §7).
DEFAULT_MAX_GROUP_MEMBERS = 50
MAX_GROUP_MEMBERS = 1000
#: What one member adds to a group's key envelope, at most with 4096-bit keys (a wrapped key
#: of 684 base64 characters, a fingerprint, the JSON around them): a group's largest envelope
#: must fit in a line with room for the op around it.
GROUP_ENVELOPE_PER_MEMBER = 800
GROUP_OP_ROOM = 8 * 1024

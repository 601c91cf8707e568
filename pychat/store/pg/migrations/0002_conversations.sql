-- Conversations: a row per pair, keyed by the keyed pseudonym of the pair (never the names or
-- the conversation id, which anyone who knows two names can compute).  Every other column is
-- a counter or a sealed record (AES-256-GCM under the store key, bound to its row).
CREATE TABLE conversations (
    conv_key text PRIMARY KEY,
    sealed bytea NOT NULL,          -- {"id", "members", "time"}
    last_seq bigint NOT NULL DEFAULT 0
);

CREATE TABLE conversation_epochs (
    conv_key text NOT NULL REFERENCES conversations ON DELETE CASCADE,
    epoch integer NOT NULL,
    sealed bytea NOT NULL,          -- {"envelope", "time"}
    PRIMARY KEY (conv_key, epoch)
);

CREATE TABLE conversation_reads (
    conv_key text NOT NULL REFERENCES conversations ON DELETE CASCADE,
    member_key text NOT NULL,       -- the pseudonym of the member within the pair
    sealed bytea NOT NULL,          -- {"user", "seq"}
    PRIMARY KEY (conv_key, member_key)
);

-- Messages: numbered per conversation with no gaps (the next seq comes from the conversation's
-- row, locked in the same transaction); client_key (a pseudonym of sender and client id)
-- makes a resend land once.
CREATE TABLE messages (
    conv_key text NOT NULL REFERENCES conversations ON DELETE CASCADE,
    seq bigint NOT NULL,
    client_key text NOT NULL,
    sealed bytea NOT NULL,          -- the stored message record
    PRIMARY KEY (conv_key, seq),
    UNIQUE (conv_key, client_key)
);

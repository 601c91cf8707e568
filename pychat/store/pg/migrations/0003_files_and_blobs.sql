-- Files users send each other: a sealed record per file (owner, conversation, sizes, times)
-- and its chunks, which are the clients' ciphertext (encrypted end to end) stored as they came.
CREATE TABLE files (
    file_id text PRIMARY KEY,       -- random (the server's id of the upload)
    expires double precision NOT NULL,
    sealed bytea NOT NULL
);

CREATE TABLE file_chunks (
    file_id text NOT NULL REFERENCES files ON DELETE CASCADE,
    n integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (file_id, n)
);

-- The ciphertexts of disappearing messages, sealed, deleted once they expire.
CREATE TABLE blobs (
    name text PRIMARY KEY,          -- "<expires>-<random>", as the message's record names it
    expires bigint NOT NULL,
    sealed bytea NOT NULL
);
CREATE INDEX blobs_by_expiry ON blobs (expires);

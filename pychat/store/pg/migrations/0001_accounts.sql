-- Accounts: one row per user.  The key is the keyed pseudonym of the normal-form username (the
-- same keyed hash the flat files use for file names), never the name itself; the record is the
-- account sealed with the store key (AES-256-GCM), bound to that key.
CREATE TABLE accounts (
    name_key text PRIMARY KEY,
    sealed bytea NOT NULL
);

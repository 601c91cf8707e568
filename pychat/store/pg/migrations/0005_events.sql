-- What one node tells the others: a row per change or push, written in the transaction that
-- made the change (so it exists exactly when the change committed), its body sealed like
-- every other record. NOTIFY pychat_events (payload: the writing node's id, nothing else)
-- wakes the other nodes, who read the rows after the last one they saw.
--
-- kind is 'limit' for a change to a limit that protects accounts (a failed login, a signup
-- from an address), so that a starting node can read the last hour of them (the limits'
-- state), and empty for everything else.
--
-- txid is the writing transaction's id: a reader takes only rows of transactions older
-- than every one still running (pg_snapshot_xmin), so a row that commits late can never
-- fall behind a reader's position.
CREATE TABLE pychat_events (
    pos bigserial PRIMARY KEY,
    txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    node text NOT NULL,
    kind text NOT NULL DEFAULT '',
    at timestamptz NOT NULL DEFAULT now(),
    sealed bytea NOT NULL
);
CREATE INDEX pychat_events_order ON pychat_events (txid, pos);
CREATE INDEX pychat_events_at ON pychat_events (at);
CREATE INDEX pychat_events_limits ON pychat_events (kind, at) WHERE kind <> '';

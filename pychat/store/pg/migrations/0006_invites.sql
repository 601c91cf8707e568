-- Open invites (--signup invite): the SHA-256 of each code, never the code, and its times. A
-- signup deletes its invite's row (one code, one account, whichever node is asked).
CREATE TABLE invites (
    digest text PRIMARY KEY,
    created double precision NOT NULL,
    expires double precision NOT NULL
);

-- Groups: a group's conversation is a row of conversations (keyed by the pseudonym of its id;
-- its sealed record says it is a group) with its membership chain here, one row per signed
-- statement, numbered from 1 with no gaps: the primary key makes two nodes that append
-- statement n at once store one of them.
CREATE TABLE group_statements (
    conv_key text NOT NULL REFERENCES conversations ON DELETE CASCADE,
    n integer NOT NULL,
    sealed bytea NOT NULL,          -- {"statement", "time"}
    PRIMARY KEY (conv_key, n)
);

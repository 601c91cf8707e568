-- A read marker's number beside its sealed record, so that a write only ever moves it forward
-- whoever writes it (a node's marker writes, an append that moves its sender's own marker,
-- another node). Message numbers are already in the clear in messages.seq.
ALTER TABLE conversation_reads ADD COLUMN seq bigint NOT NULL DEFAULT 0;

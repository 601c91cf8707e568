"""The wire codec: framing, envelopes, request schemas and error codes.  No I/O here."""

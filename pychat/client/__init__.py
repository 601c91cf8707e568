"""The pyChat client: protocol, session, keystore, trust pins, CLI."""

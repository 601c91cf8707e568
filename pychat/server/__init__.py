"""The pyChat server: service tree, connection protocol, op handlers."""

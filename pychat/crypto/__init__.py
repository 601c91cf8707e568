"""Compositions of well-known primitives from ``cryptography``; nothing here does I/O."""

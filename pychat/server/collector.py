"""Garbage-collector settings for the long-running server process.

CPython collects its youngest generation every 700 net new container objects.  Under load a
message in flight holds a few such objects for as long as its group commit takes, so the
default threshold collected (and promoted, and later rescanned in full) everything in flight
many times a second: some 15 % of the server's CPU at 50 conversations with 64 messages in
flight each.  A larger young generation lets those objects die young; freezing what start-up
built (modules, the store's indexes) keeps full collections from rescanning it.
"""

from __future__ import annotations

import gc

#: Net new container objects between two collections of the youngest generation.
YOUNG_GENERATION = 10_000


def tune_for_server() -> None:
    """Apply the settings (in ``twistd pychat`` only, once start-up has built the store)."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION, middle, oldest)

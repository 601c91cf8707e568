"""RSA-3072 keys made once for the tests (``tests/keys``), handed out instead of new ones.

Generating a 3072-bit key costs 0.2 to 0.9 s of CPU; a test that signs users up needs only keys
that differ from each other's.  Indices 0 to 29 are for clients in the test process (a fresh
order per test, conftest), 30 to 39 for the TUI processes the pty tests start, two each.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

POOL = sorted((Path(__file__).parent / "keys").glob("client-rsa-*.pem"))

#: Keys for clients in the test process.
IN_PROCESS = range(30)
#: The first key of each TUI process, in turn (it may take the next one too: a rotation).
TUI_SLOTS = range(30, 40, 2)


@functools.cache
def pool_key(index: int) -> Any:
    """Pool key ``index`` (test material of this repository, so its RSA consistency check,
    0.15 s a key, is skipped)."""
    return serialization.load_pem_private_key(
        POOL[index].read_bytes(), None, unsafe_skip_rsa_key_validation=True
    )


def pooled(indices: Iterator[int], generate: Callable[..., Any]) -> Callable[..., Any]:
    """A stand-in for ``rsa.generate_private_key`` that hands out the pool keys ``indices``
    in order, then calls ``generate``."""

    def generate_private_key(public_exponent: int, key_size: int, backend: Any = None) -> Any:
        index = next(indices, None)
        key = pool_key(index) if index is not None and index < len(POOL) else None
        if key is None or key.key_size != key_size:
            return generate(public_exponent=public_exponent, key_size=key_size)
        return key

    return generate_private_key

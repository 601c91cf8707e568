"""Where things are, for tests in any folder of ``tests/``."""

from __future__ import annotations

from pathlib import Path

#: The ``tests/`` folder (its helpers, keys and vectors).
TESTS = Path(__file__).resolve().parent
#: The checkout.
ROOT = TESTS.parent

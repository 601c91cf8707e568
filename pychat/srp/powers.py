"""A login's ``v^u`` from a table of the verifier's powers, at a third of its cost.

The server's premaster secret is S = (A * v^u)^b mod N.  The exponent ``u`` is public (a hash
of A and B, both sent in the clear), so the time ``v^u`` takes may depend on it, and ``v`` is the
same at every login of an account.  With v^(16^i) mod N kept for every 4-bit digit of ``u``
(Yao's method), ``v^u`` costs about 75 modular multiplications instead of 256 squarings and some
50 multiplications: 0.25 ms instead of 0.7 ms at 3072 bits with SHA-256, a tenth of a login's
CPU.  A table holds 64 numbers of 3072 bits, about 26 KiB.

Timing must not tell whether an account exists.  So :class:`VerifierPowers` keeps a table for
every verifier the server holds, made when the accounts are loaded and whenever an account gets a
verifier (signup, a new password), and a decoy table of the same size that stands in for a name
with no account: either way a login multiplies the same number of times, from a table made
before the login began.  Above :data:`MAX_TABLES` accounts there are no tables (the memory would
outgrow a small server): every login, known name or not, pays the plain exponentiation.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from pychat.srp import powmod_public

try:
    import gmpy2
except ImportError:  # pragma: no cover - gmpy2 is a dependency; plain ints work, slower
    gmpy2 = None

#: Bits of ``u`` per table entry.  4 is the cheapest for a 256-bit ``u``: 64 entries and about
#: 64 + 15 multiplications (5 bits: 52 entries but 52 + 31).
WINDOW = 4

#: The most accounts whose verifiers get tables (about 26 MiB at 3072 bits); beyond it, none.
MAX_TABLES = 1000


def _number(value: int) -> Any:
    return gmpy2.mpz(value) if gmpy2 is not None else value


class PowerTable:
    """``base^(16^i) mod modulus`` for the digits of exponents up to ``exponent_bits`` bits."""

    __slots__ = ("_modulus", "_powers")

    def __init__(self, base: int, modulus: int, exponent_bits: int) -> None:
        self._modulus = _number(modulus)
        power = _number(base) % self._modulus
        self._powers = [power]
        for _ in range(-(-exponent_bits // WINDOW) - 1):
            power = powmod_public(power, 1 << WINDOW, modulus)
            self._powers.append(_number(power))

    def power(self, exponent: int) -> int:
        """``base^exponent mod modulus`` (the work depends on the exponent's digits only).

        :raises ValueError: a negative exponent, or one longer than the table covers.
        """
        if exponent < 0 or exponent >> (WINDOW * len(self._powers)):
            raise ValueError("the exponent is outside what this table covers")
        mask = (1 << WINDOW) - 1
        by_digit: list[list[Any]] = [[] for _ in range(mask + 1)]
        for power in self._powers:
            by_digit[exponent & mask].append(power)
            exponent >>= WINDOW
        modulus = self._modulus
        result = running = _number(1)
        # Yao: running is the product of the entries whose digit is at least d, so multiplying
        # it into result once per d gives each entry its digit as the exponent.
        for digit in range(mask, 0, -1):
            for power in by_digit[digit]:
                running = running * power % modulus
            result = result * running % modulus
        return int(result)


class VerifierPowers:
    """Tables for the verifiers a server holds, and a decoy for names without an account."""

    def __init__(self, modulus: int, exponent_bits: int, limit: int | None = None) -> None:
        self._modulus = modulus
        self._bits = exponent_bits
        self._limit = MAX_TABLES if limit is None else limit
        self._tables: dict[int, PowerTable] = {}
        self._decoy_base = secrets.randbelow(modulus - 2) + 2
        self._decoy = PowerTable(self._decoy_base, modulus, exponent_bits)
        self._enabled = True

    @property
    def enabled(self) -> bool:
        """Whether logins use tables (false above the limit)."""
        return self._enabled

    def __len__(self) -> int:
        return len(self._tables)

    def hold(self, verifiers: Iterable[int]) -> None:
        """Keep tables for exactly ``verifiers`` (all the server's accounts): make the missing
        ones, drop the others; none at all when there are more than the limit."""
        wanted = set(verifiers)
        if len(wanted) > self._limit:
            self._enabled = False
            self._tables.clear()
            return
        self._enabled = True
        for gone in self._tables.keys() - wanted:
            del self._tables[gone]
        for verifier in wanted - self._tables.keys():
            self._tables[verifier] = PowerTable(verifier, self._modulus, self._bits)

    def add(self, verifier: int) -> None:
        """Make the table of a verifier the server now holds (before any login can use it)."""
        if not self._enabled:
            return
        if len(self._tables) >= self._limit:
            self._enabled = False
            self._tables.clear()
            return
        if verifier not in self._tables:
            self._tables[verifier] = PowerTable(verifier, self._modulus, self._bits)

    def discard(self, verifier: int) -> None:
        """Forget the table of a verifier the server no longer holds."""
        self._tables.pop(verifier, None)

    def power(self, verifier: int, exponent: int) -> int:
        """``verifier^exponent mod N`` for a verifier of an account."""
        if not self._enabled:
            return powmod_public(verifier, exponent, self._modulus)
        table = self._tables.get(verifier)
        if table is None:  # changed behind the service's back (an operator's tool): add it now
            self.add(verifier)
            return self.power(verifier, exponent)
        return table.power(exponent)

    def decoy_power(self, exponent: int) -> int:
        """What stands in for ``v^u`` when the name has no account: the same work as
        :meth:`power`, from the decoy table (the result is never checked against anything)."""
        if not self._enabled:
            return powmod_public(self._decoy_base, exponent, self._modulus)
        return self._decoy.power(exponent)

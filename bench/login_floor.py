"""The floor under a login's server CPU, measured on the server's core at the time of the run.

    python -m bench.login_floor [--count 60] [--core 0]

A server's login works out two exponentiations with its secret ``b`` in constant time, ``g^b``
and ``(A v^u)^b`` (3072-bit group, 256-bit ``b``, gmpy2's ``powmod_sec``).  Nothing pyChat does
makes them cheaper, and their cost follows the speed of the machine at that moment: on the
shared machine the benchmarks ran on, a pair took 2.1 ms on a quiet moment and 3 ms on a slow
one.  ``bench.sessions login`` runs this beside each of its pyChat runs and prints the figure,
so a login rate can be read against the machine it was measured on.  Printed: the median CPU
milliseconds (of this process) of ``count`` pairs, each with a fresh ``b`` and base.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

from pychat import srp


def pair_ms(count: int) -> float:
    """The median CPU milliseconds of one login's two constant-time exponentiations."""
    params = srp.DEFAULT_PARAMS
    n, g = params.group.N, params.group.g
    taken = []
    for _ in range(count):
        b = secrets.randbits(srp.EPHEMERAL_BITS) | (1 << (srp.EPHEMERAL_BITS - 1))
        base = secrets.randbelow(n - 2) + 2
        start = time.process_time()
        srp.powmod(g, b, n)
        srp.powmod(base, b, n)
        taken.append(time.process_time() - start)
    return 1000 * statistics.median(taken)


def measure_on(core: int, count: int = 60) -> float:
    """:func:`pair_ms` in a fresh process pinned to ``core`` (where the server runs)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.login_floor", "--count", str(count), "--core", str(core)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    return float(out.split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--core", type=int, default=0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > args.core:
        os.sched_setaffinity(0, {args.core})
    print(f"{pair_ms(args.count):.3f} ms for a login's two constant-time exponentiations")


if __name__ == "__main__":
    main()

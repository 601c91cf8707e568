"""How fast the ``pychat`` command answers what needs no server: ``--version`` and ``--help``.

    python -m bench.client_start [--runs 10]

Each is run ``--runs`` times as a process of its own (the installed ``pychat`` command when
there is one, else ``python -m pychat``), after one run that leaves the bytecode cached; the
median wall time is printed beside the target (0.15 s on this machine).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET = 0.15


def command() -> list[str]:
    """The installed entry point when there is one, else ``python -m pychat``."""
    script = Path(sys.executable).parent / "pychat"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pychat"]


def timed(args: list[str], runs: int) -> float:
    """The median seconds of ``runs`` runs of ``pychat ARGS`` (after one to warm up)."""
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        subprocess.run([*command(), *args], capture_output=True, check=True, timeout=60)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    print(f"# pychat command start, median of {args.runs} runs each, target {TARGET:.2f} s")
    for what in (["--version"], ["--help"], ["send", "--help"]):
        seconds = timed(what, args.runs)
        verdict = "ok" if seconds < TARGET else "OVER"
        print(f"client    pychat {' '.join(what):<14} {seconds * 1000:6.1f} ms  {verdict}")


if __name__ == "__main__":
    main()

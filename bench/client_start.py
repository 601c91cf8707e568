"""How fast the ``pychat`` command is: what needs no server (``--version``, ``--help``), and
each command's own work beyond the network and the password KDF.

    python -m bench.client_start [--runs 10] [--commands]

The first part runs each ``--runs`` times as a process of its own (the installed ``pychat``
command when there is one, else ``python -m pychat``), after one run that leaves the
bytecode cached; the median wall time is printed beside the target (0.15 s on this machine).
With ``--commands``, a server is started (pinned to core 0) and ``conversations``, ``send``,
``read`` and ``group list`` are run in this process as ``pychat`` runs them, timed whole and
split: the time waiting for the server's replies (network and server), the time in the
password KDF (SRP's x and the keystore's key), and the rest, the command's own work; plus,
once, the cost of loading the client (its imports, in a process of its own).
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
    parser.add_argument("--commands", action="store_true", help="time commands against a server")
    args = parser.parse_args()
    print(f"# pychat command start, median of {args.runs} runs each, target {TARGET:.2f} s")
    for what in (["--version"], ["--help"], ["send", "--help"]):
        seconds = timed(what, args.runs)
        verdict = "ok" if seconds < TARGET else "OVER"
        print(f"client    pychat {' '.join(what):<14} {seconds * 1000:6.1f} ms  {verdict}")
    if args.commands:
        from bench.client_commands import time_commands

        time_commands(args.runs)


if __name__ == "__main__":
    main()

"""The benchmarks still run and print their figures (tiny sizes; nothing here is timed).

A benchmark nobody runs rots: this one broke once when the server began refusing shared
public keys, and no test noticed.  The soak (bench/soak.py) is left out: it takes minutes.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.paths import ROOT


@pytest.mark.parametrize(
    ("script", "args", "figures"),
    [
        ("bench/bench_send.py", ["--pairs", "1", "--messages", "20", "--window", "5"],
         ["messages/fsync", "delivered"]),
        ("bench/bench_store.py", ["--sizes", "100", "--memory", "2x50"],
         ["append", "page", "open crash ms", "memory per open conversation"]),
        ("bench/bench_inflight.py", ["--pairs", "2", "--each", "4"],
         ["KiB per message in flight", "bound:"]),
        ("-m", ["bench.relay", "--pairs", "3", "--window", "2", "--messages", "5", "--runs", "2",
                "--generators", "2", "--rate", "300", "--versus", "1"],
         ["2 generator process(es)", "delivered     15", "ratio pyChat P=3/P=1", "baseline",
          "ratio pyChat/baseline", "median of the runs' ratios", "generator CPU % of each run"]),
        ("-m", ["bench.relay", "--pairs", "2", "--window", "2", "--messages", "5", "--runs", "1",
                "--generators", "1", "--postgresql", "--nodes", "2"],
         ["pyChat-pg", "delivered     10", "database CPU", "ratio pyChat-pg/pyChat",
          "pg-2nodes", "ratio pg-2nodes/pyChat-pg"]),
        ("-m", ["bench.sessions", "login", "--loops", "2", "--seconds", "0.25"],
         ["baseline", "logins/s", "logins per server core", "floor:", "ratio pyChat/baseline"]),
        ("-m", ["bench.group_fanout", "--members", "3", "--messages", "5", "--window", "2",
                "--runs", "1"],
         ["pair", "group M=3", "deliveries/s", "µs/delivery", "of one to a peer"]),
        ("-m", ["bench.client_start", "--runs", "1", "--commands"],
         ["pychat --version", "pychat --help", "target 0.15 s", "loading the client",
          "pychat send bob", "own work"]),
        ("-m", ["bench.sessions", "idle", "--sessions", "10"],
         ["KiB per idle connection", "KiB per idle logged-in session", "ratio pyChat/baseline"]),
    ],
)  # fmt: skip
def test_a_benchmark_runs_and_prints_its_figures(
    script: str, args: list[str], figures: list[str]
) -> None:
    result = subprocess.run(
        [sys.executable, *(["-m"] if script == "-m" else [str(ROOT / script)]), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for figure in figures:
        assert figure in result.stdout, result.stdout

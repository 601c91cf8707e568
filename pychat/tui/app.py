"""Entry point of the full-screen client (filled in by the TUI work)."""

from __future__ import annotations

import argparse
import sys


def run_tui(args: argparse.Namespace) -> int:
    """Run the TUI; return the exit status."""
    print("pychat: the full-screen client is not available yet; see pychat --help", file=sys.stderr)
    return 1

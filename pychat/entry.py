"""The ``pychat`` command: the full-screen client without a subcommand, else the CLI.

The one module that knows both front ends, so ``pychat.client`` never imports ``pychat.tui``
(docs/architecture.md, "Dependencies point one way").
"""

from __future__ import annotations

from typing import NoReturn

from pychat.client.cli import build_parser, run_command


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the ``pychat`` command."""
    args = build_parser().parse_args(argv)
    if args.command in (None, "tui"):
        from pychat.tui.app import run_tui

        raise SystemExit(run_tui(args))
    run_command(args)

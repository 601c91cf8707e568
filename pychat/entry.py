"""The ``pychat`` command: the full-screen client without a subcommand, else the CLI.

The one module that knows both front ends, so ``pychat.client`` never imports ``pychat.tui``
(docs/architecture.md, "Dependencies point one way").  The arguments are read first, with
nothing but ``argparse`` loaded: ``--version`` and ``--help`` answer before Twisted or the
client library is imported.
"""

from __future__ import annotations

from typing import NoReturn

from pychat.client.cli_parser import build_parser


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the ``pychat`` command."""
    args = build_parser().parse_args(argv)
    if args.command in (None, "tui"):
        from pychat.tui.app import run_tui

        raise SystemExit(run_tui(args))
    from pychat.client.cli import run_command

    run_command(args)

"""The ``pychat-admin`` command line.

    pychat-admin make-store-key PATH

``make-store-key`` writes a new at-rest key (mode 0600) where the server will read it, e.g.
``/etc/pychat/store.key`` for the systemd unit, which hands it to the server as a credential
so that the key never sits inside the data dir.  It refuses to overwrite an existing key: the
data encrypted under it would be lost.

Exit status: 0 done, 1 refused or failed (one line on stderr says why), 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pychat.store.atrest import AtRestKey


def make_store_key(path: Path) -> int:
    """Write a new at-rest key to ``path``."""
    try:
        AtRestKey.create(path)
    except FileExistsError:
        print(
            f"pychat-admin: {path} exists; a store key is never overwritten (the data "
            "encrypted under it would be lost)",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:
        print(f"pychat-admin: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote a new store key to {path} (mode 0600); back it up apart from the data dir")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``pychat-admin``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="pychat-admin", description="Operator tasks on a pyChat server's data."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    key = sub.add_parser("make-store-key", help="write a new at-rest key (never overwrites)")
    key.add_argument("path", type=Path, help="where to write it, e.g. /etc/pychat/store.key")
    args = parser.parse_args(argv)
    if args.command == "make-store-key":
        return make_store_key(args.path)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())

"""The command-line client's exit codes and the error that ends a command with one."""

from __future__ import annotations

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_AUTH, EXIT_TRUST, EXIT_CONNECT, EXIT_REJECTED = range(7)


class CliError(Exception):
    """Ends the command with ``code`` after printing ``message`` to stderr."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code

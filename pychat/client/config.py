"""Client settings shared by the CLI and the TUI: ``$XDG_CONFIG_HOME/pychat/config.toml``.

Example::

    server = "chat.example.org:8765"
    user = "alice"
    colours = true          # the TUI uses colours when the terminal has them (NO_COLOR wins)
    theme = "terminal"      # the TUI's look: "terminal" (its own colours), "dark" or "light"
    mouse = false           # the TUI takes the mouse: wheel scrolls, a click picks a conversation
    images = "auto"         # image previews: "auto", "kitty", "sixel", "blocks" or "off"
    notifications = true    # bell and OSC 9/777 notification for messages not on screen
    time_format = "%H:%M"   # strftime format of message times in the TUI
    signals = false         # share (and see) typing and read signals; both sides need it on
    server_fingerprint = "AB:CD:..."  # accept this certificate on first contact (CLI)
    connect_timeout = 10.0  # seconds for the TCP connection and the TLS handshake
    timeout = 30.0          # seconds to wait for each reply

Every key is optional.  Command-line options override the file.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The ``images`` values (the TUI's image previews).
IMAGE_SETTINGS = ("auto", "kitty", "sixel", "blocks", "off")


class ConfigError(Exception):
    """The config file is unreadable or has a value of the wrong type."""


def xdg_dir(variable: str, fallback: str) -> Path:
    """An XDG base directory, with its documented fallback under the home directory."""
    value = os.environ.get(variable)
    return Path(value) if value else Path.home() / fallback


def default_home() -> Path:
    """Where keystores and pins live: ``$XDG_DATA_HOME/pychat``."""
    return xdg_dir("XDG_DATA_HOME", ".local/share") / "pychat"


def default_config_path() -> Path:
    """``$XDG_CONFIG_HOME/pychat/config.toml``."""
    return xdg_dir("XDG_CONFIG_HOME", ".config") / "pychat" / "config.toml"


@dataclass(frozen=True)
class ClientConfig:
    """The settings, with their defaults."""

    server: str | None = None
    user: str | None = None
    colours: bool = True
    #: The TUI's look: ``terminal`` (the terminal's own colours), ``dark`` or ``light``.
    theme: str = "terminal"
    #: The TUI takes the mouse (off: the terminal's own selection keeps working).
    mouse: bool = False
    #: Image previews in the TUI: ``auto`` (the best the terminal has), ``kitty``, ``sixel``,
    #: ``blocks`` (Unicode half blocks) or ``off`` (nothing fetched).
    images: str = "auto"
    notifications: bool = True
    time_format: str = "%H:%M"
    signals: bool = False
    server_fingerprint: str | None = None
    connect_timeout: float | None = None
    timeout: float | None = None

    @classmethod
    def load(cls, path: Path | None = None) -> ClientConfig:
        """Read ``path`` (default location if None); a missing default file means defaults.

        :raises ConfigError: the file does not parse, has unknown keys or wrong types.
        """
        explicit = path is not None
        path = path or default_config_path()
        if not path.exists():
            if explicit:
                raise ConfigError(f"config file {path} does not exist")
            return cls()
        try:
            raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        types: dict[str, type | tuple[type, ...]] = {
            "server": str,
            "user": str,
            "colours": bool,
            "theme": str,
            "mouse": bool,
            "images": str,
            "notifications": bool,
            "time_format": str,
            "signals": bool,
            "server_fingerprint": str,
            "connect_timeout": (int, float),
            "timeout": (int, float),
        }
        for key, value in raw.items():
            if key not in types:
                raise ConfigError(f"{path}: unknown setting {key!r} (known: {', '.join(types)})")
            expected = types[key]
            if not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
                kind = "number" if isinstance(expected, tuple) else expected.__name__
                raise ConfigError(f"{path}: {key} must be a {kind}")
        if raw.get("theme", "terminal") not in ("terminal", "dark", "light"):
            raise ConfigError(f"{path}: theme is terminal, dark or light, not {raw['theme']!r}")
        if raw.get("images", "auto") not in IMAGE_SETTINGS:
            raise ConfigError(
                f"{path}: images is {', '.join(IMAGE_SETTINGS)}, not {raw['images']!r}"
            )
        return cls(**raw)

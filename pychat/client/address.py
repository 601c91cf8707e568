"""Server addresses as users type them: ``host``, ``host:port``, ``[v6]:port``."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PORT = 8765


class AddressError(ValueError):
    """Not a usable server address."""


@dataclass(frozen=True)
class ServerAddress:
    """Where a server listens."""

    host: str
    port: int = DEFAULT_PORT

    @classmethod
    def parse(cls, text: str) -> ServerAddress:
        """Parse ``host[:port]`` (IPv6 in brackets: ``[::1]:8765``)."""
        text = text.strip()
        if not text:
            raise AddressError("empty server address")
        if text.startswith("["):
            host, sep, rest = text[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise AddressError(f"bad server address {text!r}; use [v6-address]:port")
            port_text = rest[1:] if rest else ""
        elif text.count(":") > 1:
            host, port_text = text, ""  # a bare IPv6 address
        else:
            host, _, port_text = text.partition(":")
        port = DEFAULT_PORT
        if port_text:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise AddressError(f"bad port in server address {text!r}")
            port = int(port_text)
        if not host:
            raise AddressError(f"no host in server address {text!r}")
        return cls(host, port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

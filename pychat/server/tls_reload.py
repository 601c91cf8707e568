"""Serving TLS with a certificate that can be replaced while the server runs.

A renewed certificate (say from an ACME client for a dynamic-DNS name) is put in place and the
server gets SIGHUP: :class:`ReloadableServerTLS` loads the new certificate and key and hands
their context to every connection made from then on.  Connections already open keep the
session they negotiated, so nobody is dropped.  A certificate that does not load, or a key
that does not match it, is logged and the old pair stays in service.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from OpenSSL import SSL
from twisted.application.service import Service
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.ssl import CertificateOptions
from twisted.logger import Logger
from zope.interface import implementer

from pychat.tls import ServerCredentials, TLSConfigError, server_options

log = Logger(namespace="pychat.tls")


@implementer(IOpenSSLServerConnectionCreator)
class ReloadableServerTLS:
    """TLS options for new connections, swapped whole by :meth:`reload`."""

    def __init__(self, load: Callable[[], ServerCredentials]) -> None:
        """:param load: reads the certificate and key (the same paths at every reload).

        :raises TLSConfigError: the first load fails (the server cannot start).
        """
        self._load = load
        self.credentials = load()
        self.options: CertificateOptions = server_options(self.credentials)
        self.reloads = 0

    def getContext(self) -> SSL.Context:
        """The current context (for code that asks an old-style context factory)."""
        return self.options.getContext()

    def serverConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        """A server-side TLS connection with the certificate in service now."""
        return SSL.Connection(self.options.getContext(), None)

    def reload(self) -> bool:
        """Read the certificate and key again; use them for new connections if they load.

        :returns: whether the new pair is now in service.
        """
        try:
            credentials = self._load()
            options = server_options(credentials)
        except (TLSConfigError, OSError) as exc:
            log.error("the TLS certificate was not reloaded, the old one stays: {e}", e=exc)
            return False
        self.credentials, self.options = credentials, options
        self.reloads += 1
        log.info(
            "reloaded the TLS certificate {path}; new connections see SHA-256 fingerprint {fp}",
            path=str(credentials.cert_path),
            fp=credentials.fingerprint,
        )
        return True


class ReloadOnHangup(Service):
    """Calls ``reload`` on the reactor thread when the process gets SIGHUP, while running."""

    def __init__(self, reactor: Any, reload: Callable[[], object]) -> None:
        self._reactor = reactor
        self._reload = reload
        self._previous: Any = None

    def startService(self) -> None:
        super().startService()
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGHUP, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._reactor.callFromThread(self._reload)

    def stopService(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGHUP, self._previous)
            self._previous = None
        super().stopService()

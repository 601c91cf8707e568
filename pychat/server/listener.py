"""Listening on Twisted endpoint strings, always behind TLS.

``ssl:PORT[:interface=..]`` without ``privateKey=`` is served with the server's own
certificate (TCP below, our TLS options above), so nobody spells out key paths.  ``tcp:``,
``tcp6:``, ``unix:`` and ``systemd:`` strings are wrapped in the same TLS layer: pyChat never
speaks plaintext on a socket.  An ``ssl:`` string that names ``privateKey=`` is handed to
Twisted unchanged, for operators who want Twisted's own TLS endpoint.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import (
    IListeningPort,
    IOpenSSLServerConnectionCreator,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import Factory
from twisted.internet.ssl import CertificateOptions
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure

log = Logger(namespace="pychat.listener")


class ListenError(ValueError):
    """An endpoint string that cannot be used; the message says why."""


def plan_endpoint(reactor: object, description: str) -> tuple[IStreamServerEndpoint, bool]:
    """Parse ``description``; return the endpoint and whether we must add TLS on top.

    :raises ListenError: the string is not a valid server endpoint description.
    """
    kind, _, rest = description.partition(":")
    wrap = True
    to_parse = description
    if kind == "ssl":
        if "privateKey=" in rest:
            wrap = False
        else:
            to_parse = "tcp:" + rest
    try:
        endpoint = serverFromString(reactor, to_parse)
    except (ValueError, TypeError, KeyError) as exc:
        raise ListenError(f"bad --listen endpoint {description!r}: {exc}") from None
    return endpoint, wrap


class TLSListenerService(Service):
    """Listens on one endpoint while running; ``when_listening()`` gives the port.

    :param description: the endpoint string, for logs and errors.
    :param endpoint: the parsed endpoint.
    :param factory: the protocol factory of the chat server.
    :param tls: TLS options to wrap connections in, or None when the endpoint does TLS itself.
    :param reactor: kept for the owner's use.
    :param on_fatal: called with one line when the port cannot be opened (twistd's tree
        passes what stops the reactor and exits non-zero; None: just log it).
    """

    def __init__(
        self,
        description: str,
        endpoint: IStreamServerEndpoint,
        factory: Factory,
        tls: CertificateOptions | IOpenSSLServerConnectionCreator | None,
        reactor: object | None = None,
        on_fatal: Callable[[str], None] | None = None,
    ) -> None:
        self.description = description
        self._reactor = reactor
        self._on_fatal = on_fatal
        self._endpoint = endpoint
        self._factory: IProtocolFactory = (
            TLSMemoryBIOFactory(tls, False, factory) if tls is not None else factory
        )
        self._port: IListeningPort | None = None
        self._waiting: list[defer.Deferred[IListeningPort]] = []
        self._listening: defer.Deferred[IListeningPort] | None = None

    def startService(self) -> None:
        super().startService()
        self._listening = self._endpoint.listen(self._factory)
        self._listening.addCallbacks(self._listened, self._failed)

    def _listened(self, port: IListeningPort) -> IListeningPort:
        self._port = port
        log.info("listening on {where} ({desc})", where=port.getHost(), desc=self.description)
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(port)
        return port

    def _failed(self, failure: Failure) -> None:
        reason = f"cannot listen on {self.description}: {failure.value}"
        log.critical("{reason}", reason=reason)
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.errback(failure)
        # A server that cannot open its port must not sit there looking healthy.
        if self._on_fatal is not None:
            self._on_fatal(reason)

    def when_listening(self) -> defer.Deferred[IListeningPort]:
        """Fires with the listening port once it is open (at once if it already is)."""
        if self._port is not None:
            return defer.succeed(self._port)
        d: defer.Deferred[IListeningPort] = defer.Deferred()
        self._waiting.append(d)
        return d

    def stopService(self) -> defer.Deferred[None] | None:
        super().stopService()
        if self._port is not None:
            port, self._port = self._port, None
            return port.stopListening()
        return None

"""Declares ``twistd pychat``; the real code is in :mod:`pychat.server.tap`."""

from twisted.application.service import ServiceMaker

pychat = ServiceMaker(
    "pyChat",
    "pychat.server.tap",
    "Self-hosted end-to-end encrypted chat server",
    "pychat",
)

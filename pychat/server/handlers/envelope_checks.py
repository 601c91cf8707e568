"""What the server checks of a key envelope before its store places it (docs/e2e.md §2
and §7): its shape and size; the rest is the members' business."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pychat import limits
from pychat.store.conversation import EpochRefused, check_place
from pychat.wire.errors import ErrorCode, ProtocolError
from pychat.wire.schema import bad_field
from pychat.wire.shapes import Envelope


def check_envelope(
    envelope: Mapping[str, Any], first: bool, max_size: int = limits.MAX_ENVELOPE
) -> Envelope:
    """An envelope's shape and size as the server needs them: an integer ``epoch`` (1 for
    ``first``), and from version 2 (and in groups) an integer ``after`` (0 for ``first``).
    Its number and place against the conversation are the store's to check
    (``check_place``), where the last seq is known for sure."""
    epoch = envelope.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool):
        raise bad_field("envelope", "must hold an integer 'epoch'")
    if "after" in envelope or envelope.get("v") == 2:
        after = envelope.get("after")
        if not isinstance(after, int) or isinstance(after, bool):
            raise bad_field("envelope", "must hold an integer 'after'")
    if len(json.dumps(envelope)) > max_size:
        raise bad_field("envelope", f"must be at most {max_size} bytes of JSON")
    placed = dict(envelope)
    if first:
        try:
            check_place(placed, 0, 0)
        except EpochRefused as exc:
            raise refused_epoch(exc) from None
    return placed


def refused_epoch(exc: EpochRefused) -> ProtocolError:
    """``bad_epoch``, with the place an envelope made now must name."""
    return ProtocolError(ErrorCode.BAD_EPOCH, str(exc), details={"after": exc.after})

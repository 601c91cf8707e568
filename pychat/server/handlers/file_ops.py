"""Files: ``file_start``, ``file_chunk`` (upload, resumable), ``file_status`` and
``file_get`` (download).  The server stores opaque chunks for a conversation's members; the
key, name and hash travel inside an end-to-end encrypted message (docs/e2e.md)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from pychat.server.handlers.common import CONVERSATION_ID_MAX, HandlerDeps, OpDef, current_user
from pychat.server.handlers.summaries import member_conversation
from pychat.server.ops import OpContext
from pychat.server.state import LOGGED_IN, stay_in
from pychat.store.files import CHUNK_BYTES, StoredFile, describe
from pychat.wire.errors import ErrorCode, ProtocolError
from pychat.wire.schema import bad_field, bounded
from pychat.wire.shapes import FileChunkData, FileReply, FileStartReply

FILE_ID_MAX = 64
#: The longest base64 chunk a request may carry.
CHUNK_B64_MAX = (CHUNK_BYTES + 2) // 3 * 4


@dataclass(frozen=True)
class StartParams:
    """``file_start``: an upload of ``size`` ciphertext bytes into a conversation."""

    conversation: str = bounded(max_len=CONVERSATION_ID_MAX)
    size: int = bounded(min=1)
    #: In a disappearing conversation: the file goes then (if before the operator's limit).
    expires: int | None = bounded(default=None, min=0)


@dataclass(frozen=True)
class ChunkParams:
    """``file_chunk``: chunk ``index`` (the next one) of an upload."""

    file: str = bounded(max_len=FILE_ID_MAX)
    index: int = bounded(min=0)
    data: str = bounded(max_len=CHUNK_B64_MAX, min_len=1)


@dataclass(frozen=True)
class FileParams:
    """``file_status`` / ``file_get``: a file (and a chunk of it)."""

    file: str = bounded(max_len=FILE_ID_MAX)
    index: int | None = bounded(default=None, min=0)


async def _file_of_member(deps: HandlerDeps, me: str, file_id: str) -> StoredFile:
    record = await deps.files.lookup(file_id)
    conv = deps.conversations.get(record.conversation) if record is not None else None
    if record is None or record.expires <= deps.clock.seconds() or conv is None:
        raise ProtocolError(ErrorCode.UNKNOWN_FILE, "no such file (or it expired)")
    if me not in conv.members:  # to others it does not exist
        raise ProtocolError(ErrorCode.UNKNOWN_FILE, "no such file (or it expired)")
    return record


async def file_start(deps: HandlerDeps, ctx: OpContext, params: StartParams) -> FileStartReply:
    """Make room for an upload; the chunks follow with ``file_chunk``."""
    me = current_user(ctx)
    conv = member_conversation(deps, me, params.conversation)
    limit = deps.config.file_max_size
    if params.size > limit:
        raise ProtocolError(
            ErrorCode.FILE_TOO_LARGE,
            f"files on this server are at most {limit} bytes",
            details={"max_file": limit},
        )
    used, quota = deps.files.bytes_of(me), deps.config.file_quota
    if used + params.size > quota:
        raise ProtocolError(
            ErrorCode.QUOTA_EXCEEDED,
            f"your files would take {used + params.size} bytes; you may keep {quota} at once "
            "(they are deleted when they expire)",
            details={"quota": quota, "used": used},
        )
    chunks = -(-params.size // CHUNK_BYTES)
    now = deps.clock.seconds()
    age = deps.config.file_max_age
    if params.expires is not None:
        if params.expires <= now:
            raise bad_field("expires", "must be a time to come")
        age = min(age, params.expires - now)
    record = await deps.files.start(me, conv.id, params.size, chunks, now, age)
    return {**describe(record), "chunk_bytes": CHUNK_BYTES}


async def file_chunk(deps: HandlerDeps, ctx: OpContext, params: ChunkParams) -> FileReply:
    """Store the next chunk of one's own upload (a chunk already stored is acknowledged
    again, so a resend after a lost reply is safe)."""
    me = current_user(ctx)
    record = await _file_of_member(deps, me, params.file)
    if record.owner != me:
        raise ProtocolError(ErrorCode.UNKNOWN_FILE, "no such upload of yours")
    if params.index < record.received:
        return describe(record)
    if params.index != record.received:
        raise ProtocolError(
            ErrorCode.BAD_CHUNK,
            f"the next chunk is {record.received}, not {params.index}",
            details={"received": record.received},
        )
    try:
        chunk = base64.b64decode(params.data, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(ErrorCode.BAD_CHUNK, "data is not base64") from None
    if params.index >= record.chunks or len(chunk) != record.chunk_length(params.index):
        raise ProtocolError(
            ErrorCode.BAD_CHUNK,
            f"chunk {params.index} must be {record.chunk_length(params.index)} bytes",
        )
    await deps.files.put(record, params.index, chunk)
    return describe(record)


async def file_status(deps: HandlerDeps, ctx: OpContext, params: FileParams) -> FileReply:
    """How far a file's upload got (for resuming, or before downloading)."""
    return describe(await _file_of_member(deps, current_user(ctx), params.file))


async def file_get(deps: HandlerDeps, ctx: OpContext, params: FileParams) -> FileChunkData:
    """Chunk ``index`` of a complete file."""
    record = await _file_of_member(deps, current_user(ctx), params.file)
    index = params.index if params.index is not None else 0
    if not record.complete or index >= record.chunks:
        raise ProtocolError(ErrorCode.BAD_CHUNK, f"the file has no chunk {index} yet")
    data = await deps.files.get(record, index)
    return {"file": record.id, "index": index, "data": base64.b64encode(data).decode()}


OPS = (
    OpDef("file_start", StartParams, stay_in(*LOGGED_IN), file_start),
    OpDef("file_chunk", ChunkParams, stay_in(*LOGGED_IN), file_chunk),
    OpDef("file_status", FileParams, stay_in(*LOGGED_IN), file_status),
    OpDef("file_get", FileParams, stay_in(*LOGGED_IN), file_get),
)

"""Sending and fetching files, encrypted end to end.

A file is encrypted with a fresh AES-256-GCM key in chunks of 32 KiB; chunk ``i`` has the
nonce ``prefix ‖ i`` (a random 4-byte prefix per file, the index as 8 bytes) and the
associated data ``"pychat-file" ‖ 0 ‖ file id ‖ 0 ‖ i ‖ 0 ‖ chunk count``, so a chunk cannot
be moved to another place or file, nor the file cut short.  The chunks go to the server
(``file_start``, ``file_chunk``; resumed from ``file_status`` after a dropped connection),
then a message of ``kind: "file"`` carries the id, key, prefix, size, name and SHA-256 of the
content to the peer.  Fetching downloads, decrypts, checks the hash and only then moves the
file into place, under a safe name that never overwrites anything.  Neither side holds a
whole file in memory.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from twisted.internet import task

from pychat.client.errors import ClientError, ReplyTimeout
from pychat.client.messaging import Messaging
from pychat.client.protocol import ConnectionClosed
from pychat.client.sending import Sender
from pychat.wire.encoding import b64decode, b64encode
from pychat.wire.ids import conversation_of
from pychat.wire.usernames import normal_form

#: Content bytes per chunk (the server's chunks are this plus the 16-byte tag).
PLAIN_CHUNK = 32 * 1024
TAG = 16
NAME_MAX = 120
#: Progress callbacks get (bytes done, bytes in all).
Progress = Callable[[int, int], None]


class FileError(ClientError):
    """A file could not be sent or fetched; the message says why."""


def safe_name(name: str) -> str:
    """A file name safe to create: no directories, no control or bidi characters, no leading
    dot, at most :data:`NAME_MAX` characters ("file" if nothing is left)."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/").split("/")[-1])
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in "CZ" or ch == " ")
    name = re.sub(r"\s+", " ", name).strip().lstrip(".").strip()
    return name[:NAME_MAX] or "file"


def _aad(file_id: str, index: int, chunks: int) -> bytes:
    return f"pychat-file\0{file_id}\0{index}\0{chunks}".encode()


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + index.to_bytes(8, "big")


@dataclass(frozen=True)
class FileOffer:
    """What a ``file`` message says, checked."""

    file: str
    key: bytes
    prefix: bytes
    size: int
    name: str
    sha256: str

    @property
    def chunks(self) -> int:
        """How many chunks the server holds."""
        return max(1, -(-self.size // PLAIN_CHUNK))

    @classmethod
    def from_data(cls, data: Any) -> FileOffer:
        """The offer in a message's data.

        :raises FileError: a field is missing or malformed.
        """
        try:
            offer = cls(
                str(data["file"]),
                b64decode(data["key"]),
                b64decode(data["prefix"]),
                int(data["size"]),
                safe_name(str(data["name"])),
                str(data["sha256"]),
            )
        except (KeyError, TypeError, ValueError):
            raise FileError("malformed file message") from None
        if len(offer.key) != 32 or len(offer.prefix) != 4 or offer.size < 0:
            raise FileError("malformed file message")
        if not re.fullmatch(r"[0-9a-f]{32}", offer.file) or not re.fullmatch(
            r"[0-9a-f]{64}", offer.sha256
        ):
            raise FileError("malformed file message")
        return offer

    def describe(self, sender: str) -> str:
        """The message as people see it."""
        return f"📎 {sender} sent {self.name} ({human_size(self.size)})"


def human_size(size: int) -> str:
    """``1.2 MB`` and the like."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} bytes"


#: After a dropped connection, an upload tries again every RESUME_WAIT seconds, this often.
RESUME_TRIES = 60
RESUME_WAIT = 1.0


@dataclass(frozen=True)
class _Upload:
    """An upload in progress: what its chunks are sealed with."""

    file_id: str
    aead: AESGCM
    prefix: bytes
    chunks: int
    size: int
    progress: Progress | None


class Files:
    """One client's file sending and fetching."""

    def __init__(self, ctx: Any, messaging: Messaging, sender: Sender) -> None:
        self._ctx = ctx
        self._messaging = messaging
        self._sender = sender
        messaging.kind_handlers["file"] = self._describe

    async def _describe(self, conv: str, peer: str, seq: int, opened: Any) -> str:
        try:
            return FileOffer.from_data(opened.data).describe(opened.sender)
        except FileError as exc:
            raise ValueError(str(exc)) from None

    async def send(self, peer: str, path: Path, progress: Progress | None = None) -> int | None:
        """Encrypt and upload ``path``, then tell ``peer`` (a ``file`` message); its seq.

        A dropped connection does not start it over: once the client is back online the
        upload goes on from the server's count of whole chunks (``file_status``).
        """
        me, data = self._ctx.require_login()
        peer = normal_form(peer)
        conv = await self._ctx.open_conversation(peer)
        size = path.stat().st_size
        chunks = max(1, -(-size // PLAIN_CHUNK))
        fields: dict[str, Any] = {"conversation": conv, "size": size + TAG * chunks}
        ttl = (data.timers.get(conv) or [0, 0])[1]
        if ttl:  # a disappearing conversation: the file goes with its messages
            fields["expires"] = int(self._ctx.now() + ttl)
        started = await self._ctx.request("file_start", **fields)
        file_id = str(started["file"])
        key, prefix = AESGCM.generate_key(bit_length=256), secrets.token_bytes(4)
        digest = hashlib.sha256()
        with open(path, "rb") as source:
            for _ in range(chunks):
                digest.update(source.read(PLAIN_CHUNK))
        upload = _Upload(file_id, AESGCM(key), prefix, chunks, size, progress)
        await self._upload(path, upload)
        offer = {
            "file": file_id,
            "key": b64encode(key),
            "prefix": b64encode(prefix),
            "size": size,
            "name": safe_name(path.name),
            "sha256": digest.hexdigest(),
        }
        body = f"📎 {me} sent {offer['name']} ({human_size(size)})"
        return await self._sender.send_kind(peer, body, "file", offer, queue=True)

    async def _upload(self, path: Path, up: _Upload) -> None:
        """Send the chunks from the server's count on; after a drop, wait and go on."""
        for attempt in range(RESUME_TRIES):
            try:
                status = await self._ctx.request("file_status", file=up.file_id)
                await self._chunks_from(path, up, int(status["received"]))
                return
            except (ConnectionClosed, ReplyTimeout) as exc:
                if attempt == RESUME_TRIES - 1:
                    raise FileError(f"the upload stopped: {exc}") from None
                await task.deferLater(self._ctx.reactor, RESUME_WAIT, lambda: None)

    async def _chunks_from(self, path: Path, up: _Upload, first: int) -> None:
        with open(path, "rb") as source:
            source.seek(first * PLAIN_CHUNK)
            for index in range(first, up.chunks):
                plain = source.read(PLAIN_CHUNK)
                sealed = up.aead.encrypt(
                    _nonce(up.prefix, index), plain, _aad(up.file_id, index, up.chunks)
                )
                await self._ctx.request(
                    "file_chunk",
                    file=up.file_id,
                    index=index,
                    data=base64.b64encode(sealed).decode(),
                )
                if up.progress is not None:
                    up.progress(min(up.size, (index + 1) * PLAIN_CHUNK), up.size)

    async def fetch(
        self, peer: str, seq: int, directory: Path, progress: Progress | None = None
    ) -> Path:
        """Download the file of message ``seq``, check it, and save it in ``directory`` under
        a new name (``name``, ``name (1)``, ...); return where it went.

        :raises FileError: no such file message, an expired file, a failed check.
        """
        me, _ = self._ctx.require_login()
        peer = normal_form(peer)
        found = await self._messaging.digests.message(conversation_of(me, peer), seq)
        if found is None:
            raise FileError(f"there is no message #{seq} with {peer}")
        checked = await self._messaging.decrypt(peer, found)
        if checked.status != "verified" or checked.kind != "file":
            raise FileError(f"message #{seq} is not a file ({checked.reason or checked.kind})")
        offer = FileOffer.from_data(checked.data)
        directory.mkdir(parents=True, exist_ok=True)
        part = directory / f".{offer.file}.part"
        with open(part, "wb") as out:
            try:
                await self._download(offer, out, progress)
            except BaseException:
                out.close()
                part.unlink(missing_ok=True)
                raise
        return _place(part, directory, offer.name)

    async def _download(self, offer: FileOffer, out: BinaryIO, progress: Progress | None) -> None:
        aead, digest = AESGCM(offer.key), hashlib.sha256()
        done = 0
        for index in range(offer.chunks):
            reply = await self._ctx.request("file_get", file=offer.file, index=index)
            try:
                plain = aead.decrypt(
                    _nonce(offer.prefix, index),
                    base64.b64decode(str(reply.get("data", ""))),
                    _aad(offer.file, index, offer.chunks),
                )
            except (InvalidTag, ValueError):
                raise FileError(f"chunk {index} of {offer.name} does not decrypt") from None
            digest.update(plain)
            out.write(plain)
            done += len(plain)
            if progress is not None:
                progress(done, offer.size)
        out.flush()
        os.fsync(out.fileno())
        if done != offer.size or digest.hexdigest() != offer.sha256:
            raise FileError(f"{offer.name} does not match its hash: not saved")


def _place(part: Path, directory: Path, name: str) -> Path:
    """Move the checked file to ``name`` in ``directory`` without replacing anything."""
    stem, dot, ext = name.rpartition(".") if "." in name[1:] else (name, "", "")
    for n in range(1000):
        candidate = directory / (name if n == 0 else f"{stem} ({n}){dot}{ext}")
        try:
            os.link(part, candidate)  # fails if the name exists: nothing is overwritten
        except FileExistsError:
            continue
        part.unlink()
        return candidate
    raise FileError(f"no free name for {name} in {directory}")

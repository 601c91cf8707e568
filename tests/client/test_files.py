"""Encrypted files: uploaded in chunks (resumable, within size and quota), fetched, checked,
saved under a safe new name; the server holds only ciphertext and deletes it when it expires."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer

from pychat.client.files import PLAIN_CHUNK, FileError, safe_name
from pychat.client.protocol import RemoteError
from pychat.store.blocking import inline_runner
from pychat.store.files import CHUNK_BYTES, FILES_DIR, FileStore
from pychat.testing import MemoryServer
from pychat.wire.ids import conversation_id
from tests.client_helpers import memory_pair


@pytest.fixture
def memory(tmp_path: Path) -> MemoryServer:
    return MemoryServer(tmp_path / "data", file_max_size=400_000, file_quota=600_000)


async def _pair(memory: MemoryServer, tmp_path: Path):  # type: ignore[no-untyped-def]
    alice, bob = await memory_pair(memory, tmp_path)
    await alice.send("bob", "here comes a file")
    return alice, bob


@pytest_twisted.ensureDeferred
async def test_a_file_goes_end_to_end_and_is_saved_without_overwriting(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice, bob = await _pair(memory, tmp_path)
    content = os.urandom(3 * PLAIN_CHUNK + 1234)
    source = tmp_path / "holiday photos.tar"
    source.write_bytes(content)
    seen: list[tuple[int, int]] = []
    seq = await alice.files.send("bob", source, progress=lambda d, t: seen.append((d, t)))
    assert seq is not None and seen[-1] == (len(content), len(content))
    (message,) = [m for m in await bob.read("alice") if m.kind == "file"]
    assert message.text == "📎 alice sent holiday photos.tar (99.5 KB)"
    downloads = tmp_path / "downloads"
    first = await bob.files.fetch("alice", seq, downloads)
    second = await bob.files.fetch("alice", seq, downloads)
    assert first.name == "holiday photos.tar" and second.name == "holiday photos (1).tar"
    assert first.read_bytes() == content == second.read_bytes()
    assert not list(downloads.glob(".*"))  # no part file left behind
    stored = b"".join(p.read_bytes() for p in (tmp_path / "data" / FILES_DIR).iterdir())
    assert content[:4096] not in stored and b"holiday" not in stored  # only ciphertext


@pytest_twisted.ensureDeferred
async def test_a_changed_chunk_or_a_stranger_gets_nothing(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice, bob = await _pair(memory, tmp_path)
    carol = await memory.signed_up(tmp_path / "carol", "carol")
    source = tmp_path / "notes.txt"
    source.write_bytes(b"secret notes " * 5000)
    seq = await alice.files.send("bob", source)
    assert seq is not None
    (data_file,) = (tmp_path / "data" / FILES_DIR).glob("*.data")
    raw = bytearray(data_file.read_bytes())
    raw[100] ^= 1
    data_file.write_bytes(bytes(raw))
    with pytest.raises(FileError, match="does not decrypt"):
        await bob.files.fetch("alice", seq, tmp_path / "down")
    assert not any((tmp_path / "down").iterdir())
    file_id = data_file.stem
    with pytest.raises(RemoteError) as caught:
        await carol.request("file_get", file=file_id, index=0)
    assert caught.value.code == "unknown_file"


@pytest_twisted.ensureDeferred
async def test_size_limit_quota_and_chunk_order_are_enforced(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice, _ = await _pair(memory, tmp_path)
    conv = conversation_id("alice", "bob")
    with pytest.raises(RemoteError) as caught:
        await alice.request("file_start", conversation=conv, size=400_001)
    assert caught.value.code == "file_too_large" and caught.value.error["max_file"] == 400_000
    await alice.request("file_start", conversation=conv, size=400_000)
    with pytest.raises(RemoteError) as caught:
        await alice.request("file_start", conversation=conv, size=300_000)
    assert caught.value.code == "quota_exceeded"
    started = await alice.request("file_start", conversation=conv, size=100)
    with pytest.raises(RemoteError) as caught:
        await alice.request("file_chunk", file=started["file"], index=1, data="AAAA")
    assert caught.value.code == "bad_chunk" and caught.value.error["received"] == 0
    with pytest.raises(RemoteError) as caught:
        await alice.request("file_chunk", file=started["file"], index=0, data="AAAA")
    assert caught.value.code == "bad_chunk"  # 3 bytes, not 100


@pytest_twisted.ensureDeferred
async def test_an_upload_cut_by_a_crash_resumes_after_its_last_whole_chunk(
    tmp_path: Path,
) -> None:
    from pychat.store.atrest import AtRestKey

    key = AtRestKey(os.urandom(32))
    store = FileStore.open(tmp_path / "files", key.sealer("files"), inline_runner)
    size = 3 * CHUNK_BYTES - 10
    record = await store.start("alice", "c" * 32, size, 3, 0.0, 60.0)
    await store.put(record, 0, b"a" * CHUNK_BYTES)
    await store.put(record, 1, b"b" * CHUNK_BYTES)
    with open(tmp_path / "files" / f"{record.id}.data", "ab") as f:
        f.write(b"c" * 1000)  # the third chunk was being written when the power went
    again = FileStore.open(tmp_path / "files", key.sealer("files"), inline_runner)
    resumed = again.files[record.id]
    assert resumed.received == 2 and not resumed.complete
    assert (tmp_path / "files" / f"{record.id}.data").stat().st_size == 2 * CHUNK_BYTES
    await again.put(resumed, 2, b"c" * (CHUNK_BYTES - 10))
    assert resumed.complete and await again.get(resumed, 2) == b"c" * (CHUNK_BYTES - 10)
    assert await again.sweep(61.0) == 1
    assert list((tmp_path / "files").iterdir()) == []  # expired: gone from disk


def test_names_from_a_peer_are_made_safe() -> None:
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("..\\..\\boot.ini") == "boot.ini"
    assert safe_name(".bashrc") == "bashrc"
    assert safe_name("a\x1b[2Jb\u202ec.txt") == "a[2Jbc.txt"
    assert safe_name("") == "file" and safe_name("/") == "file"
    assert len(safe_name("x" * 500)) == 120


@pytest_twisted.ensureDeferred
async def test_an_upload_goes_on_after_a_dropped_connection(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice, bob = await _pair(memory, tmp_path)
    content = os.urandom(5 * PLAIN_CHUNK)
    source = tmp_path / "big.bin"
    source.write_bytes(content)
    dropped: list[int] = []

    def drop_once(done: int, total: int) -> None:
        if done >= 2 * PLAIN_CHUNK and not dropped:
            dropped.append(done)
            memory.drop_connections()  # the Wi-Fi goes after two chunks

    sending = defer.ensureDeferred(alice.files.send("bob", source, progress=drop_once))
    for _ in range(5):
        memory.advance(1.0)  # alice reconnects; the upload goes on from chunk 2
    seq = await sending
    assert dropped and seq is not None
    got = await bob.files.fetch("alice", seq, tmp_path / "got")
    assert got.read_bytes() == content


@pytest_twisted.ensureDeferred
async def test_a_file_in_a_disappearing_conversation_goes_with_its_messages(
    memory: MemoryServer, tmp_path: Path
) -> None:
    alice, _ = await _pair(memory, tmp_path)
    await alice.disappearing.set("bob", "1h")
    source = tmp_path / "short-lived.txt"
    source.write_text("gone within the hour\n")
    await alice.files.send("bob", source)
    (record,) = memory.chat.store.files.records()
    assert record.expires - memory.clock.seconds() <= 3600  # not the operator's week

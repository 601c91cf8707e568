"""Re-encrypting the store under a new key: afterwards only the new key opens it; a crash at
any step leaves a store that opens with one of the two keys, and the next run settles it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer

from pychat.store import rotation
from pychat.store.blocking import inline_runner
from pychat.store.errors import StoreError
from pychat.store.rotation import check_no_rotation, rotate, settle
from pychat.store.server_store import ServerStore
from tests.chat_helpers import envelope
from tests.store_helpers import account_named, appended, done


def _made(data: Path) -> None:
    store = ServerStore.open(data, data / "store.key", inline_runner)
    for name in ("alice", "bob"):
        defer.ensureDeferred(store.accounts.create(account_named(name)))
    conv = done(defer.ensureDeferred(store.logs.create("alice", "bob", envelope(), 1.0)))
    for i in range(30):
        appended(store.conversations, conv, "alice", 1, f"m{i}", f"c{i}", 2.0 + i)
    store.conversations.set_read_nowait(conv, "bob", 12)
    blob = done(defer.ensureDeferred(store.ephemeral.put(conv.id, "vanishing", 9e9)))
    appended(
        store.conversations, conv, "alice", 1, "", "c-blob", 40.0, {"blob": blob, "expires": 9e9}
    )
    record = done(defer.ensureDeferred(store.files.start("alice", conv.id, 20, 1, 1.0, 1e9)))
    defer.ensureDeferred(store.files.put(record, 0, b"f" * 20))
    defer.ensureDeferred(store.close())


def _contents(data: Path, key: Path) -> tuple[list[str], list[str], dict[str, int], bytes]:
    store = ServerStore.open(data, key, inline_runner)
    (conv,) = list(store.logs)
    records = conv.messages.read_range(0, conv.last_seq)
    texts = [r["ciphertext"] for r in records if "blob" not in r]
    (timed,) = [r for r in records if "blob" in r]
    texts.append(done(defer.ensureDeferred(store.ephemeral.get(conv.id, timed["blob"]))))
    names = sorted(a.username for a in store.accounts)
    read = dict(conv.read)
    (record,) = store.files.records()
    chunk = done(defer.ensureDeferred(store.files.get(record, 0)))
    defer.ensureDeferred(store.close())
    return names, texts, read, chunk


WANT = (["alice", "bob"], [*(f"m{i}" for i in range(30)), "vanishing"], {"bob": 12}, b"f" * 20)


def test_after_a_rotation_only_the_new_key_opens_the_store(tmp_path: Path) -> None:
    data, key = tmp_path / "data", tmp_path / "data" / "store.key"
    _made(data)
    old = key.read_bytes()
    counts = rotate(data, key)
    assert counts == {"accounts": 2, "conversations": 1, "messages": 31}
    assert key.read_bytes() != old
    assert _contents(data, key) == WANT
    key.write_bytes(old)
    with pytest.raises(StoreError):
        ServerStore.open(data, key, inline_runner)  # the old key opens nothing now
    assert sorted(p.name for p in data.iterdir()) == [
        "accounts", "conversations", "ephemeral", "files", "store.key"
    ]  # fmt: skip


def _crash_at(monkeypatch: pytest.MonkeyPatch, name: str, after: int = 0) -> None:
    """Make a step of the rotation die (as a power cut would stop it): ``rotation.<name>`` on
    its call number after+1, or for ``replace`` the rename number after+1 of step 5."""
    calls = [0]

    def dying(real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] > after:
                raise KeyboardInterrupt("power cut")
            return real(*args, **kwargs)

        return call

    if name != "replace":
        monkeypatch.setattr(rotation, name, dying(getattr(rotation, name)))
        return
    finish = rotation._finish

    def finish_until_cut(*args: Any) -> None:
        with pytest.MonkeyPatch.context() as inner:
            inner.setattr(os, "replace", dying(os.replace))
            finish(*args)

    monkeypatch.setattr(rotation, "_finish", finish_until_cut)


@pytest.mark.parametrize(
    ("step", "after", "committed"),
    [
        ("write_atomic", 0, False),  # everything re-encrypted, the commit not written
        ("_finish", 0, True),  # committed, nothing moved yet
        ("replace", 2, True),  # accounts moved in, conversations not yet
        ("replace", 4, True),  # both moved in, the key not yet replaced
    ],
)
def test_a_crash_at_any_step_leaves_a_store_that_opens_with_one_of_the_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str, after: int, committed: bool
) -> None:
    data, key = tmp_path / "data", tmp_path / "data" / "store.key"
    _made(data)
    old = key.read_bytes()
    with monkeypatch.context() as m:
        _crash_at(m, step, after)
        with pytest.raises(KeyboardInterrupt):
            rotate(data, key)
    with pytest.raises(StoreError, match="rotate-store-key"):
        check_no_rotation(data)  # a server refuses to start beside the leftovers
    note = settle(data, key)
    assert note is not None and note.startswith("finished" if committed else "removed")
    assert (key.read_bytes() != old) == committed
    assert _contents(data, key) == WANT  # opens with the key it now has, nothing lost
    check_no_rotation(data)

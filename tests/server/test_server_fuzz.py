"""Any request a client can send gets exactly one well-formed reply and never an internal
error, in every connection state (property test over the real op table)."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.testing import MemoryReactorClock

from pychat.wire.errors import ErrorCode
from tests.accounts_helpers import login_sync, signup_fields
from tests.helpers import connect, make_server

FIELD_NAMES = [
    "username", "peer", "conversation", "envelope", "epoch", "ciphertext", "client_id", "before",
    "after", "limit", "seq", "A", "M1", "salt", "verifier", "kdf", "public_keys", "share",
    "signature", "version", "key_backup", "client", "file", "index", "data", "size",
]  # fmt: skip

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _server_with_alice_and_bob() -> tuple[Any, Any]:
    tmp = Path(tempfile.mkdtemp())
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    server = make_server(tmp, MemoryReactorClock(), signups_per_hour=0)
    for name in ("alice", "bob"):
        setup = connect(server, port=1)
        setup.request("hello", version=1)
        assert setup.request("signup", **signup_fields(name, "pw"))["ok"]
    return server, tmp


SERVER, _ = _server_with_alice_and_bob()
OPS = [*SERVER.registry.names(), "nonsense", ""]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    state=st.sampled_from(["fresh", "hello", "logged_in"]),
    op=st.sampled_from(OPS),
    fields=st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=5),
)
def test_any_request_gets_one_well_formed_reply(
    state: str, op: str, fields: dict[str, Any]
) -> None:
    SERVER.clock.advance(60)  # let the per-address login limit refill between examples
    conn = connect(SERVER, port=2)
    if state != "fresh":
        conn.request("hello", version=1)
    if state == "logged_in":
        assert login_sync(conn, "alice", "pw")["ok"]
    line = json.dumps({"id": 4242, "op": op, **fields}).encode() + b"\n"
    conn.send(line)
    replies = [r for r in conn.received() if "event" not in r]
    assert len(replies) == 1, replies
    (reply,) = replies
    assert reply["id"] == 4242 and reply["ok"] in (True, False)
    if not reply["ok"]:
        assert reply["error"]["code"] in {str(c) for c in ErrorCode}
        assert reply["error"]["code"] != "internal_error", reply
        assert isinstance(reply["error"]["message"], str) and reply["error"]["message"]
    assert not conn.closing or op == "logout"
    conn.proto.connectionLost()

"""Accounts end to end over loopback TLS with the real client code."""

from __future__ import annotations

import base64
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.logger import formatEvent, globalLogPublisher

from pychat.client import auth
from pychat.client.protocol import ClientProtocol, RemoteError
from pychat.crypto.kdf import minimum_params
from pychat.srp import GROUPS
from pychat.testing import RunningServer
from tests.accounts_helpers import public_keys
from tests.log_capture import as_observer

KDF = minimum_params()
PASSWORD = "tr0ub4dor & 3 🐎"


async def _connect(server: RunningServer) -> tuple[ClientProtocol, Any]:
    proto = await server.connect(hello=False)
    hello = await proto.request("hello", version=1)
    return proto, auth.srp_params_from_hello(hello)


async def _signup(server: RunningServer, name: str, password: str) -> None:
    proto, params = await _connect(server)
    await auth.signup(proto, params, name, password, public_keys(name), kdf=KDF)


@pytest.fixture
def server(server_on_each_backend: RunningServer) -> RunningServer:
    """These scenarios run on both backends."""
    return server_on_each_backend


@pytest_twisted.ensureDeferred
async def test_signup_login_wrong_password_unknown_user_change_password(
    server: RunningServer,
) -> None:
    await _signup(server, "Alice", PASSWORD)

    proto, params = await _connect(server)
    result = await auth.login(proto, params, "alice", PASSWORD)
    assert result.username == "alice" and len(result.session_key) == 32

    proto2, params = await _connect(server)
    with pytest.raises(RemoteError) as wrong:
        await auth.login(proto2, params, "alice", "not it")
    proto3, params = await _connect(server)
    with pytest.raises(RemoteError) as unknown:
        await auth.login(proto3, params, "nobody-here", "not it")
    assert wrong.value.error == unknown.value.error
    assert wrong.value.code == "auth_failed"

    await auth.change_password(proto, params, "alice", PASSWORD, "new secret", kdf=KDF)
    proto4, params = await _connect(server)
    with pytest.raises(RemoteError):
        await auth.login(proto4, params, "alice", PASSWORD)
    proto5, params = await _connect(server)
    assert (await auth.login(proto5, params, "ALICE", "new secret")).username == "alice"


@pytest_twisted.ensureDeferred
async def test_the_password_is_nowhere_on_the_server(server: RunningServer) -> None:
    logged: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        logged.append(formatEvent(event) + repr(event))

    globalLogPublisher.addObserver(as_observer(observe))
    try:
        await _signup(server, "carol", PASSWORD)
        proto, params = await _connect(server)
        await auth.login(proto, params, "carol", PASSWORD)
        proto2, params = await _connect(server)
        with pytest.raises(RemoteError):
            await auth.login(proto2, params, "carol", PASSWORD + "x")
    finally:
        globalLogPublisher.removeObserver(as_observer(observe))

    needles = [
        PASSWORD.encode(),
        base64.b64encode(PASSWORD.encode()),
        PASSWORD.encode().hex().encode(),
    ]
    files = [p for p in server.config.data_dir.rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        assert not any(n in data for n in needles), path
    account = server.chat.store.accounts.get("carol")
    assert account is not None
    dumped = json.dumps(asdict(account)).encode()
    assert not any(n in dumped for n in needles)
    assert not any(PASSWORD in line for line in logged)


@pytest_twisted.ensureDeferred
async def test_a_standard_srp_client_interoperates(server: RunningServer) -> None:
    srplib = pytest.importorskip("srp")
    srplib.rfc5054_enable()
    try:
        group = GROUPS["rfc5054-3072"]
        n_hex, g_hex = format(group.N, "X").encode(), format(group.g, "X").encode()
        common = {
            "hash_alg": srplib.SHA256,
            "ng_type": srplib.NG_CUSTOM,
            "n_hex": n_hex,
            "g_hex": g_hex,
        }
        salt, vkey = srplib.create_salted_verification_key(
            b"dave", b"hunter2", salt_len=16, **common
        )
        proto = await server.connect()
        await proto.request(
            "signup",
            username="dave",
            salt=base64.b64encode(salt).decode(),
            verifier=base64.b64encode(vkey).decode(),
            kdf=KDF.to_json(),
            public_keys=public_keys("dave"),
        )
        user = srplib.User(b"dave", b"hunter2", **common)
        _, A = user.start_authentication()
        start = await proto.request("login_start", username="dave", A=base64.b64encode(A).decode())
        m1 = user.process_challenge(base64.b64decode(start["salt"]), base64.b64decode(start["B"]))
        finish = await proto.request("login_finish", M1=base64.b64encode(m1).decode())
        user.verify_session(base64.b64decode(finish["M2"]))
        assert user.authenticated()
        assert finish["username"] == "dave"
    finally:
        srplib.rfc5054_enable(False)


@pytest_twisted.ensureDeferred
async def test_client_refuses_a_server_that_fakes_the_login(tmp_path: Path) -> None:
    """A server that answers login_finish with a made-up M2 is caught by the client."""
    from pychat.srp import DEFAULT_PARAMS

    class LyingProto(ClientProtocol):
        def request(self, op: str, **fields: Any):  # type: ignore[no-untyped-def]
            d = super().request(op, **fields)
            if op == "login_finish":
                d.addErrback(
                    lambda _: {"M2": base64.b64encode(b"\0" * 32).decode(), "username": "x"}
                )
            return d

    from pychat.testing import start_server

    running = await start_server(tmp_path / "data")
    try:
        await _signup(running, "erin", "pw-erin")
        proto = await running.connect(hello=False)
        proto.__class__ = LyingProto
        await proto.request("hello", version=1)
        with pytest.raises(auth.AuthError, match="impostor"):
            await auth.login(proto, DEFAULT_PARAMS, "erin", "wrong password")
    finally:
        await running.stop()

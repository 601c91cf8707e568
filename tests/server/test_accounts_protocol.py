"""Account ops on in-memory connections and a fake clock."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.testing import MemoryReactorClock

from pychat import limits, srp
from pychat.server.chat import ChatServer
from pychat.server.state import State
from tests.accounts_helpers import b64, login_sync, signup_fields
from tests.helpers import FakeConn, connect, make_server


@pytest.fixture
def clock() -> MemoryReactorClock:
    return MemoryReactorClock()


@pytest.fixture
def server(tmp_path: Path, clock: MemoryReactorClock) -> ChatServer:
    return make_server(tmp_path, clock)


def hello(server: ChatServer, host: str = "192.0.2.10", port: int = 40000) -> FakeConn:
    conn = connect(server, host=host, port=port)
    assert conn.request("hello", version=1)["ok"]
    return conn


def signup(server: ChatServer, username: str, password: str, host: str = "192.0.2.99") -> None:
    reply = hello(server, host=host).request("signup", **signup_fields(username, password))
    assert reply["ok"], reply


def test_hello_announces_srp_parameters(server: ChatServer) -> None:
    reply = connect(server).request("hello", version=1)
    assert reply["srp"] == {"group": "rfc5054-3072", "hash": "sha256"}
    assert reply["kdf_minimum"]["argon2id"]["memory_kib"] >= 19 * 1024


def test_signup_then_login(server: ChatServer) -> None:
    signup(server, "Alice", "correct horse")
    conn = hello(server)
    reply = login_sync(conn, "alice", "correct horse")
    assert reply["ok"] and reply["username"] == "alice"
    assert conn.proto.core.state is State.AUTHENTICATED
    assert server.users["alice"] == {conn.proto}


def test_wrong_password_and_unknown_user_fail_alike(server: ChatServer) -> None:
    signup(server, "alice", "right")
    wrong = login_sync(hello(server), "alice", "wrong")
    unknown = login_sync(hello(server), "nobody-here", "whatever")
    assert (
        wrong["error"]
        == unknown["error"]
        == {
            "code": "auth_failed",
            "message": "wrong username or password",
        }
    )


def test_unknown_users_challenge_is_stable_and_well_formed(server: ChatServer) -> None:
    params = srp.DEFAULT_PARAMS
    replies = []
    for _ in range(2):
        client = srp.SrpClientSession(params, b"ghost")
        conn = hello(server)
        replies.append(conn.request("login_start", username="Ghost", A=b64(params.pad(client.A))))
    signup(server, "realuser", "pw")
    client = srp.SrpClientSession(params, b"realuser")
    real = hello(server).request("login_start", username="realuser", A=b64(params.pad(client.A)))
    a, b = replies
    assert a["ok"] and b["ok"]
    assert a["salt"] == b["salt"] and a["kdf"] == b["kdf"]
    assert a["B"] != b["B"]  # B is fresh each time, as for a real account
    assert set(a) == set(real)
    assert len(base64.b64decode(a["salt"])) == len(base64.b64decode(real["salt"]))
    assert len(base64.b64decode(a["B"])) == len(base64.b64decode(real["B"])) == params.group.length


@pytest.mark.parametrize("other_form", ["ALICE", "\uff41lice", "Alice"])
def test_duplicate_username_in_any_form_is_taken(server: ChatServer, other_form: str) -> None:
    signup(server, "alice", "pw")
    reply = hello(server).request("signup", **signup_fields(other_form, "pw2"))
    assert reply["error"]["code"] == "username_taken"


@pytest.mark.parametrize(
    ("look_alike", "reason"),
    [
        ("\u0430lice", "mix scripts"),  # Cyrillic a, Latin rest
        ("a1ice", "looks like the existing account 'alice'"),  # digit one for l
        ("\u0441\u043e\u0440\u0430", "looks like the existing account 'copa'"),  # Cyrillic
        ("\u0430\u04c0ice", "mix scripts"),
    ],
)
def test_a_name_that_looks_like_an_existing_one_is_refused(
    server: ChatServer, look_alike: str, reason: str
) -> None:
    signup(server, "alice", "pw")
    signup(server, "copa", "pw")
    reply = hello(server).request("signup", **signup_fields(look_alike, "pw2"))
    assert reply["error"]["code"] == "bad_username"
    assert reason in reply["error"]["message"]


def test_look_alikes_of_accounts_made_before_a_restart_are_refused(tmp_path: Path) -> None:
    signup(make_server(tmp_path), "alice", "pw")
    reply = hello(make_server(tmp_path)).request("signup", **signup_fields("a1ice", "pw2"))
    assert reply["error"]["code"] == "bad_username"


@pytest.mark.parametrize("name", ["ab", "x" * 40, "has space", "admin", ".dot", "\u0430dmin"])
def test_bad_usernames_are_refused(server: ChatServer, name: str) -> None:
    reply = hello(server).request(
        "signup", **signup_fields("placeholder", "pw") | {"username": name}
    )
    assert reply["error"]["code"] == "bad_username"


def test_weak_kdf_and_bad_keys_are_refused(server: ChatServer) -> None:
    fields = signup_fields("carol", "pw")
    weak = fields | {
        "kdf": {"name": "argon2id", "time_cost": 1, "memory_kib": 1024, "parallelism": 1}
    }
    assert hello(server).request("signup", **weak)["error"]["code"] == "bad_kdf"
    bad_keys = fields | {"public_keys": {"encryption": "AAAA", "signing": "AAAA"}}
    assert hello(server).request("signup", **bad_keys)["error"]["code"] == "bad_keys"
    short_salt = fields | {"salt": b64(b"x" * 4)}
    assert hello(server).request("signup", **short_salt)["error"]["code"] == "bad_field"


@pytest.mark.parametrize("bad_a", [0, srp.DEFAULT_PARAMS.group.N])
def test_a_zero_or_n_is_refused(server: ChatServer, bad_a: int) -> None:
    signup(server, "alice", "pw")
    conn = hello(server)
    raw = bad_a.to_bytes(srp.DEFAULT_PARAMS.group.length + 1, "big").lstrip(b"\0") or b"\0"
    reply = conn.request("login_start", username="alice", A=b64(raw))
    assert reply["error"]["code"] in ("bad_srp_value", "bad_field")
    assert conn.proto.core.state is State.UNAUTHENTICATED


def test_a_equal_to_n_gets_bad_srp_value(server: ChatServer) -> None:
    conn = hello(server)
    reply = conn.request(
        "login_start",
        username="alice",
        A=b64(srp.DEFAULT_PARAMS.pad(srp.DEFAULT_PARAMS.group.N - 0)[-384:]),
    )
    assert reply["error"]["code"] == "bad_srp_value"


def test_m1_of_the_wrong_length_is_a_bad_field(server: ChatServer) -> None:
    signup(server, "alice", "pw")
    conn = hello(server)
    client = srp.SrpClientSession(srp.DEFAULT_PARAMS, b"alice")
    conn.request("login_start", username="alice", A=b64(srp.DEFAULT_PARAMS.pad(client.A)))
    reply = conn.request("login_finish", M1=b64(b"\1" * 5))
    assert reply["error"]["code"] == "bad_field" and "M1" in reply["error"]["message"]
    assert conn.proto.core.state is State.UNAUTHENTICATED


def test_login_finish_without_login_start_is_wrong_state(server: ChatServer) -> None:
    reply = hello(server).request("login_finish", M1=b64(b"\0" * 32))
    assert reply["error"]["code"] == "wrong_state"


def test_signup_while_logged_in_is_wrong_state(server: ChatServer) -> None:
    signup(server, "alice", "pw")
    conn = hello(server)
    login_sync(conn, "alice", "pw")
    reply = conn.request("signup", **signup_fields("other", "pw"))
    assert reply["error"]["code"] == "wrong_state"


def test_lockout_after_failures_and_its_expiry(
    server: ChatServer, clock: MemoryReactorClock
) -> None:
    signup(server, "alice", "right")
    conn = hello(server, host="198.51.100.7")
    for _ in range(limits.ACCOUNT_FREE_FAILURES):
        assert login_sync(conn, "alice", "wrong")["error"]["code"] == "auth_failed"
    assert login_sync(conn, "alice", "wrong")["error"]["code"] == "auth_failed"  # now locked
    locked = login_sync(conn, "alice", "right")
    assert locked["error"]["code"] == "rate_limited"
    assert locked["error"]["retry_after"] >= 1
    clock.advance(locked["error"]["retry_after"])
    assert login_sync(conn, "alice", "right")["ok"]


def test_hammering_from_elsewhere_blocks_the_owner_at_most_the_account_cap(
    server: ChatServer, clock: MemoryReactorClock
) -> None:
    signup(server, "alice", "right")
    for _ in range(40):
        reply = login_sync(hello(server, host="203.0.113.66"), "alice", "guess")
        if reply["error"]["code"] == "rate_limited":
            clock.advance(reply["error"]["retry_after"])
    owner = hello(server, host="192.0.2.1")
    reply = login_sync(owner, "alice", "right")
    if not reply["ok"]:
        assert reply["error"]["retry_after"] <= limits.ACCOUNT_LOCK_MAX
        clock.advance(reply["error"]["retry_after"])
        reply = login_sync(owner, "alice", "right")
    assert reply["ok"]
    # ... while the attacker's own address stays locked far longer
    assert (
        server.account_service.logins.address_failures.retry_after("203.0.113.66")
        > limits.ACCOUNT_LOCK_MAX
    )


def test_signups_per_address_are_limited(server: ChatServer, clock: MemoryReactorClock) -> None:
    for i in range(limits.SIGNUPS_PER_ADDRESS_PER_HOUR):
        signup(server, f"user{i}", "pw", host="192.0.2.50")
    reply = hello(server, host="192.0.2.50").request("signup", **signup_fields("onemore", "pw"))
    assert reply["error"]["code"] == "rate_limited"
    assert reply["error"]["retry_after"] > 0
    clock.advance(3600)
    assert hello(server, host="192.0.2.50").request("signup", **signup_fields("onemore", "pw"))[
        "ok"
    ]


def test_change_password_needs_the_old_one(server: ChatServer) -> None:
    signup(server, "alice", "old")
    conn = hello(server)
    login_sync(conn, "alice", "old")
    params = srp.DEFAULT_PARAMS

    def attempt(old: str) -> dict[str, Any]:
        client = srp.SrpClientSession(params, b"alice")
        start = conn.request("change_password_start", A=b64(params.pad(client.A)))
        salt = base64.b64decode(start["salt"])
        from tests.accounts_helpers import KDF

        x = srp.password_x(KDF, salt, b"alice", old.encode())
        m1 = client.process_challenge(salt, srp.to_int(base64.b64decode(start["B"])), x)
        new = signup_fields("alice", "new")
        return conn.request(
            "change_password",
            M1=b64(m1),
            salt=new["salt"],
            verifier=new["verifier"],
            kdf=new["kdf"],
        )

    assert attempt("not-the-old-one")["error"]["code"] == "auth_failed"
    assert attempt("old")["ok"]
    # The new verifier's table of powers came with it, and the old one's went.
    assert len(server.account_service.powers) == 1
    assert not login_sync(hello(server), "alice", "old")["ok"]
    assert login_sync(hello(server), "alice", "new")["ok"]


def test_change_password_without_start_is_refused(server: ChatServer) -> None:
    signup(server, "alice", "pw")
    conn = hello(server)
    login_sync(conn, "alice", "pw")
    f = signup_fields("alice", "x")
    reply = conn.request(
        "change_password", M1=b64(b"\0" * 32), salt=f["salt"], verifier=f["verifier"], kdf=f["kdf"]
    )
    assert reply["error"]["code"] == "wrong_state"


def test_logout_returns_to_unauthenticated(server: ChatServer) -> None:
    signup(server, "alice", "pw")
    conn = hello(server)
    login_sync(conn, "alice", "pw")
    assert conn.request("logout")["ok"]
    assert conn.proto.core.state is State.UNAUTHENTICATED
    assert "alice" not in server.users
    assert conn.request("logout")["error"]["code"] == "wrong_state"


def test_operator_can_turn_the_signup_limit_off(tmp_path: Path) -> None:
    server = make_server(tmp_path, signups_per_hour=0)
    for i in range(limits.SIGNUPS_PER_ADDRESS_PER_HOUR + 3):
        signup(server, f"family{i}", "pw", host="192.0.2.50")


def test_public_keys_of_another_account_are_refused(server: ChatServer) -> None:
    signup(server, "alice", "pw")
    fields = signup_fields("mallory", "pw") | {
        "public_keys": signup_fields("alice", "x")["public_keys"]
    }
    reply = hello(server).request("signup", **fields)
    assert reply["error"]["code"] == "bad_keys" and "another account" in reply["error"]["message"]
    half = dict(signup_fields("mallory", "pw")["public_keys"])
    half["encryption"] = signup_fields("alice", "x")["public_keys"]["encryption"]
    reply = hello(server).request(
        "signup", **signup_fields("mallory", "pw") | {"public_keys": half}
    )
    assert reply["error"]["code"] == "bad_keys"  # one of the two keys is enough to refuse
    assert hello(server).request("signup", **signup_fields("mallory", "pw"))["ok"]


def test_rotating_to_another_accounts_keys_is_refused(server: ChatServer) -> None:
    from pychat.crypto.identity import parse_public_identity, rotation_statement
    from tests.accounts_helpers import keypair

    signup(server, "alice", "pw")
    signup(server, "bob", "pw")
    conn = hello(server)
    assert login_sync(conn, "bob", "pw")["ok"]
    stolen = keypair("alice").public().to_json()
    statement = rotation_statement("bob", 2, parse_public_identity(stolen).fingerprint())
    signature = b64(keypair("bob").signing.sign(statement))
    reply = conn.request("rotate_keys", public_keys=stolen, signature=signature)
    assert reply["error"]["code"] == "bad_keys"


def _work_of_login_start(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch, username: str
) -> tuple[int, int]:
    """(modular exponentiations, HMACs) one login_start costs the server."""
    from cryptography.hazmat.primitives import hmac

    counts = {"powmod": 0, "hmac": 0}
    real_powmod, real_hmac = srp.powmod, hmac.HMAC

    def counting_powmod(*args: int) -> int:
        counts["powmod"] += 1
        return real_powmod(*args)

    def counting_hmac(*args: Any, **kw: Any) -> object:
        counts["hmac"] += 1
        return real_hmac(*args, **kw)

    monkeypatch.setattr(srp, "powmod", counting_powmod)
    monkeypatch.setattr(hmac, "HMAC", counting_hmac)
    client = srp.SrpClientSession(srp.DEFAULT_PARAMS, username.encode())
    A = b64(srp.DEFAULT_PARAMS.pad(client.A))
    counts.update(powmod=0, hmac=0)
    reply = hello(server, host="198.51.100.7").request("login_start", username=username, A=A)
    assert reply["ok"], reply
    monkeypatch.undo()
    return counts["powmod"], counts["hmac"]


def test_unknown_names_cost_the_server_exactly_what_real_ones_do(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    signup(server, "alice", "pw")
    known = _work_of_login_start(server, monkeypatch, "alice")
    unknown = _work_of_login_start(server, monkeypatch, "nobody-here")
    assert known == unknown and known[0] >= 1


def test_unknown_names_get_the_kdf_settings_real_accounts_use(server: ChatServer) -> None:
    from pychat.crypto.kdf import KdfParams

    signup(server, "alice", "pw")  # the tests' KDF: the minimum settings, not the defaults
    client = srp.SrpClientSession(srp.DEFAULT_PARAMS, b"nobody-here")
    A = b64(srp.DEFAULT_PARAMS.pad(client.A))
    real = hello(server).request("login_start", username="alice", A=A)
    fake = hello(server).request("login_start", username="nobody-here", A=A)
    assert fake["kdf"] == real["kdf"] != KdfParams("argon2id", 3, 65536, 4).to_json()


def _owner_token(server: ChatServer) -> str:
    reply = login_sync(hello(server, host="192.0.2.1"), "alice", "right")
    assert reply["ok"] and reply["device_token"]
    return str(reply["device_token"])


def _hammer(server: ChatServer, clock: MemoryReactorClock, minutes: int, host: str) -> None:
    """One wrong proof a minute, each from a fresh address (and some from ``host``)."""
    for i in range(minutes):
        clock.advance(60)
        login_sync(hello(server, host=host), "alice", "guess")
        login_sync(hello(server, host=f"203.0.113.{i % 250}"), "alice", "guess")


def test_strangers_cannot_lock_the_owner_out_of_a_device_they_logged_in_on(
    server: ChatServer, clock: MemoryReactorClock
) -> None:
    signup(server, "alice", "right")
    token = _owner_token(server)
    _hammer(server, clock, 30, host="198.51.100.9")  # the attacker shares alice's NAT address
    locked = login_sync(hello(server, host="198.51.100.9"), "alice", "right")
    assert locked["error"]["code"] == "rate_limited"  # without the token: locked out
    with_token = login_sync(hello(server, host="198.51.100.9"), "alice", "right", token)
    assert with_token["ok"]  # with it: in at once, from the same address
    assert with_token["device_token"] and with_token["device_token"] != token


def test_failures_with_a_token_are_limited_per_token_not_per_account(
    server: ChatServer, clock: MemoryReactorClock
) -> None:
    signup(server, "alice", "right")
    token = _owner_token(server)
    for _ in range(limits.DEVICE_TOKEN_FREE_FAILURES + 1):
        login_sync(hello(server, host="192.0.2.1"), "alice", "wrong", token)
    reply = login_sync(hello(server, host="192.0.2.1"), "alice", "right", token)
    assert reply["error"]["code"] == "rate_limited" and "device" in reply["error"]["message"]
    assert server.account_service.logins.account_failures.retry_after("alice") == 0
    assert login_sync(hello(server, host="192.0.2.2"), "alice", "right")["ok"]


def test_a_forged_or_outdated_token_gives_no_way_around_the_locks(
    server: ChatServer, clock: MemoryReactorClock
) -> None:
    signup(server, "alice", "right")
    token = _owner_token(server)
    forged = b64(bytes(48))
    _hammer(server, clock, 12, host="198.51.100.9")
    reply = login_sync(hello(server, host="198.51.100.9"), "alice", "right", forged)
    assert reply["error"]["code"] == "rate_limited"
    # a password change renews the salt, and the tokens given before it stop working
    account = server.store.accounts.get("alice")
    assert account is not None
    changed = account.with_changes(salt=b64(bytes(range(16))))
    assert server.account_service.logins.tokens.token_id(changed, token) is None
    assert server.account_service.logins.tokens.token_id(account, token) is not None


def test_a_longer_than_the_group_is_a_bad_field_and_minimal_a_is_accepted(
    server: ChatServer,
) -> None:
    signup(server, "alice", "pw")
    params = srp.DEFAULT_PARAMS
    too_long = b64(b"\x01" + bytes(params.group.length))
    reply = hello(server).request("login_start", username="alice", A=too_long)
    assert reply["error"]["code"] == "bad_field"
    client = srp.SrpClientSession(params, b"alice")
    minimal = client.A.to_bytes((client.A.bit_length() + 7) // 8, "big")
    assert hello(server).request("login_start", username="alice", A=b64(minimal))["ok"]

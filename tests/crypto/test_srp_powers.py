"""A login's v^u from tables of the verifiers' powers: the same numbers as an exponentiation,
tables ready before a login needs them, and the same work whether the name exists or not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import defer

from pychat import srp
from pychat.server.chat import ChatServer
from pychat.srp import powers as srp_powers
from pychat.srp import powmod_public
from pychat.srp.powers import PowerTable, VerifierPowers
from tests.accounts_helpers import login_sync, signup_fields
from tests.helpers import connect, make_server

N = srp.DEFAULT_PARAMS.group.N
SMALL_N = srp.RFC5054_TEST_PARAMS.group.N
BITS = 8 * srp.DEFAULT_PARAMS.digest_size


@settings(max_examples=60, deadline=None)
@given(
    base=st.integers(min_value=0, max_value=SMALL_N - 1),
    exponent=st.integers(min_value=0, max_value=(1 << 160) - 1),
)
def test_a_table_gives_the_same_power_as_an_exponentiation(base: int, exponent: int) -> None:
    assert PowerTable(base, SMALL_N, 160).power(exponent) == pow(base, exponent, SMALL_N)


@pytest.mark.parametrize(
    "exponent", [0, 1, 15, 16, 255, (1 << BITS) - 1, 1 << (BITS - 1), 0xF0F0F0F0 << 200]
)
def test_a_3072_bit_table_at_the_digits_edges(exponent: int) -> None:
    v = N - 12345
    assert PowerTable(v, N, BITS).power(exponent) == pow(v, exponent, N)


def test_an_exponent_beyond_the_table_is_refused() -> None:
    table = PowerTable(7, SMALL_N, 160)
    with pytest.raises(ValueError, match="outside"):
        table.power(1 << 160)
    with pytest.raises(ValueError, match="outside"):
        table.power(-1)


def test_tables_follow_the_verifiers_held_and_stop_above_the_limit() -> None:
    powers = VerifierPowers(SMALL_N, 160, limit=3)
    powers.hold([11, 12])
    assert len(powers) == 2 and powers.enabled
    assert powers.power(11, 99) == pow(11, 99, SMALL_N)
    powers.hold([12, 13, 14])
    assert len(powers) == 3
    powers.discard(14)
    assert len(powers) == 2
    powers.add(15)
    powers.add(16)  # a fourth: over the limit, so no table for anyone
    assert not powers.enabled and len(powers) == 0
    assert powers.power(16, 99) == pow(16, 99, SMALL_N)
    powers.hold([11])
    assert powers.enabled and len(powers) == 1


def test_a_verifier_without_a_table_still_gets_the_right_power() -> None:
    powers = VerifierPowers(SMALL_N, 160)
    assert powers.power(23, 12345) == pow(23, 12345, SMALL_N)
    assert len(powers) == 1


def _hello(server: ChatServer, port: int) -> Any:
    conn = connect(server, port=port)
    assert conn.request("hello", version=1)["ok"]
    return conn


def test_signup_makes_the_table_before_the_first_login(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    powers = server.account_service.powers
    assert len(powers) == 0
    assert _hello(server, 40001).request("signup", **signup_fields("alice", "pw"))["ok"]
    assert len(powers) == 1
    assert login_sync(_hello(server, 40002), "alice", "pw")["ok"]
    again = make_server(tmp_path)  # a restart makes tables for the accounts it loads
    assert len(again.account_service.powers) == 1


@pytest.mark.parametrize("name", ["alice", "zelda"])
def test_known_and_unknown_names_take_the_same_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """With tables, neither a login nor a probe of a name without an account exponentiates
    v^u: both multiply from a table made beforehand (so timing does not tell them apart)."""
    server = make_server(tmp_path)
    assert _hello(server, 40001).request("signup", **signup_fields("alice", "pw"))["ok"]
    plain: list[int] = []
    built: list[int] = []
    real_plain, real_init = powmod_public, PowerTable.__init__

    def counted_plain(*args: Any) -> int:
        plain.append(1)
        return real_plain(*args)

    def counted_init(self: PowerTable, *args: Any) -> None:
        built.append(1)
        real_init(self, *args)

    monkeypatch.setattr(srp_powers, "powmod_public", counted_plain)
    monkeypatch.setattr(srp, "powmod_public", counted_plain)
    monkeypatch.setattr(PowerTable, "__init__", counted_init)
    reply = login_sync(_hello(server, 40002), name, "pw")
    assert reply["ok"] if name == "alice" else reply["error"]["code"] == "auth_failed"
    assert (plain, built) == ([], [])


@pytest.mark.parametrize("name", ["alice", "zelda"])
def test_above_the_limit_known_and_unknown_names_both_exponentiate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(srp_powers, "MAX_TABLES", 0)
    server = make_server(tmp_path)
    assert _hello(server, 40001).request("signup", **signup_fields("alice", "pw"))["ok"]
    assert not server.account_service.powers.enabled

    def no_table(*args: Any) -> int:
        raise AssertionError("a table used above the limit")

    monkeypatch.setattr(PowerTable, "power", no_table)
    reply = login_sync(_hello(server, 40002), name, "pw")
    assert reply["ok"] if name == "alice" else reply["error"]["code"] == "auth_failed"


def test_a_reset_account_leaves_no_table_behind(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    assert _hello(server, 40001).request("signup", **signup_fields("alice", "pw"))["ok"]
    assert len(server.account_service.powers) == 1
    result: list[Any] = []
    defer.ensureDeferred(server.reset_account("alice")).addBoth(result.append)
    assert result == [True]
    assert len(server.account_service.powers) == 0
    assert not login_sync(_hello(server, 40002), "alice", "pw")["ok"]  # the decoy's path now

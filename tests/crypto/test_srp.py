"""SRP-6a against RFC 5054 Appendix B, through the functions production uses."""

from __future__ import annotations

from collections.abc import Iterator

import gmpy2
import pytest

from pychat import srp
from pychat.crypto.kdf import minimum_params


def h(text: str) -> int:
    return int("".join(text.split()), 16)


# RFC 5054 Appendix B: I = "alice", P = "password123", 1024-bit group, SHA-1.
IDENTITY, P = b"alice", b"password123"
s = bytes.fromhex("BEB25379D1A8581EB5A727673A2441EE")
k = h("7556AA04 5AEF2CDD 07ABAF0F 665C3E81 8913186F")
x = h("94B7555A ABE9127C C58CCF49 93DB6CF8 4D16C124")
v = h(
    """7E273DE8 696FFC4F 4E337D05 B4B375BE B0DDE156 9E8FA00A 9886D812 9BADA1F1 822223CA 1A605B53
    0E379BA4 729FDC59 F105B478 7E5186F5 C671085A 1447B52A 48CF1970 B4FB6F84 00BBF4CE BFBB1681
    52E08AB5 EA53D15C 1AFF87B2 B9DA6E04 E058AD51 CC72BFC9 033B564E 26480D78 E955A5E2 9E7AB245
    DB2BE315 E2099AFB"""
)
a = h("60975527 035CF2AD 1989806F 0407210B C81EDC04 E2762A56 AFD529DD DA2D4393")
b = h("E487CB59 D31AC550 471E81F0 0F6928E0 1DDA08E9 74A004F4 9E61F5D1 05284D20")
A = h(
    """61D5E490 F6F1B795 47B0704C 436F523D D0E560F0 C64115BB 72557EC4 4352E890 3211C046 92272D8B
    2D1A5358 A2CF1B6E 0BFCF99F 921530EC 8E393561 79EAE45E 42BA92AE ACED8251 71E1E8B9 AF6D9C03
    E1327F44 BE087EF0 6530E69F 66615261 EEF54073 CA11CF58 58F0EDFD FE15EFEA B349EF5D 76988A36
    72FAC47B 0769447B"""
)
B = h(
    """BD0C6151 2C692C0C B6D041FA 01BB152D 4916A1E7 7AF46AE1 05393011 BAF38964 DC46A067 0DD125B9
    5A981652 236F99D9 B681CBF8 7837EC99 6C6DA044 53728610 D0C6DDB5 8B318885 D7D82C7F 8DEB75CE
    7BD4FBAA 37089E6F 9C6059F3 88838E7A 00030B33 1EB76840 910440B1 B27AAEAE EB4012B7 D7665238
    A8E3FB00 4B117B58"""
)
u = h("CE38B959 3487DA98 554ED47D 70A7AE5F 462EF019")
S = h(
    """B0DC82BA BCF30674 AE450C02 87745E79 90A3381F 63B387AA F271A10D 233861E3 59B48220 F7C4693C
    9AE12B0A 6F67809F 0876E2D0 13800D6C 41BB59B6 D5979B5C 00A172B4 A2A5903A 0BDCAF8A 709585EB
    2AFAFA8F 3499B200 210DCC1F 10EB3394 3CD67FC8 8A2F39A4 BE5BEC4E C0A3212D C346D7E4 74B29EDE
    8A469FFE CA686E5A"""
)

PARAMS = srp.RFC5054_TEST_PARAMS


@pytest.fixture(params=["gmpy2", "python"], autouse=True)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test here runs with gmpy2's powmod_sec and with Python's pow."""
    before = srp.powmod_backend()
    srp.set_powmod_backend(request.param)
    yield request.param
    srp.set_powmod_backend(before)


def test_rfc5054_appendix_b_values() -> None:
    assert srp.multiplier(PARAMS) == k
    assert srp.rfc5054_x(PARAMS, s, IDENTITY, P) == x
    assert srp.verifier(PARAMS, x) == v
    assert srp.client_public(PARAMS, a) == A
    assert srp.server_public(PARAMS, v, b) == B
    assert srp.scrambler(PARAMS, A, B) == u
    assert srp.server_premaster(PARAMS, A, v, u, b) == S
    assert srp.client_premaster(PARAMS, x, a, B, u) == S


def test_rfc5054_appendix_b_through_the_session_objects() -> None:
    server = srp.SrpServerSession(PARAMS, IDENTITY, s, v, b=b)
    client = srp.SrpClientSession(PARAMS, IDENTITY, a=a)
    assert (client.A, server.B) == (A, B)
    m1 = client.process_challenge(s, server.B, x)
    server.accept_client_public(client.A)
    m2 = server.verify_client_proof(m1)
    assert client.verify_server_proof(m2) == server.key == srp.session_key(PARAMS, S)


def test_wrong_password_fails_the_client_proof() -> None:
    server = srp.SrpServerSession(PARAMS, IDENTITY, s, v)
    client = srp.SrpClientSession(PARAMS, IDENTITY)
    m1 = client.process_challenge(s, server.B, srp.rfc5054_x(PARAMS, s, IDENTITY, b"password124"))
    server.accept_client_public(client.A)
    with pytest.raises(srp.SrpAuthenticationError):
        server.verify_client_proof(m1)


def test_client_rejects_a_server_that_does_not_know_the_verifier() -> None:
    fake_v = srp.verifier(PARAMS, 12345)
    server = srp.SrpServerSession(PARAMS, IDENTITY, s, fake_v)
    client = srp.SrpClientSession(PARAMS, IDENTITY)
    m1 = client.process_challenge(s, server.B, x)
    server.accept_client_public(client.A)
    with pytest.raises(srp.SrpAuthenticationError):
        server.verify_client_proof(m1)
    with pytest.raises(srp.SrpAuthenticationError):
        client.verify_server_proof(b"\0" * PARAMS.digest_size)


@pytest.mark.parametrize("bad_a", [0, PARAMS.group.N, 2 * PARAMS.group.N, -1])
def test_server_rejects_a_zero_mod_n_or_out_of_range(bad_a: int) -> None:
    server = srp.SrpServerSession(PARAMS, IDENTITY, s, v)
    with pytest.raises(srp.SrpError):
        server.accept_client_public(bad_a)


@pytest.mark.parametrize("bad_b", [0, PARAMS.group.N, PARAMS.group.N * 3])
def test_client_rejects_b_zero_mod_n(bad_b: int) -> None:
    client = srp.SrpClientSession(PARAMS, IDENTITY)
    with pytest.raises(srp.SrpError):
        client.process_challenge(s, bad_b, x)


def test_proof_before_public_value_is_an_error() -> None:
    server = srp.SrpServerSession(PARAMS, IDENTITY, s, v)
    with pytest.raises(srp.SrpError):
        server.verify_client_proof(b"\0" * 20)


@pytest.mark.parametrize(
    ("password", "salt"),
    [(b"p", b"\0" * 16), ("pässwörd 🙂".encode(), bytes(range(32))), (b"x" * 200, b"\xff" * 24)],
)
def test_default_params_round_trip(password: bytes, salt: bytes) -> None:
    params = srp.DEFAULT_PARAMS
    xx = srp.rfc5054_x(params, salt, b"bob", password)
    server = srp.SrpServerSession(params, b"bob", salt, srp.verifier(params, xx))
    client = srp.SrpClientSession(params, b"bob")
    m1 = client.process_challenge(salt, server.B, xx)
    server.accept_client_public(client.A)
    assert client.verify_server_proof(server.verify_client_proof(m1)) == server.key


def test_password_x_uses_the_kdf_and_depends_on_salt_and_identity() -> None:
    kdf = minimum_params()
    one = srp.password_x(kdf, b"s" * 16, b"alice", b"pw")
    assert one == srp.password_x(kdf, b"s" * 16, b"alice", b"pw")
    assert one != srp.password_x(kdf, b"t" * 16, b"alice", b"pw")
    assert one != srp.password_x(kdf, b"s" * 16, b"alicf", b"pw")


def _pi_bits(bits: int) -> int:
    """floor(pi * 2**bits), by Machin's formula in integer arithmetic."""

    def arctan_inv(n: int, prec: int) -> int:
        total = term = (1 << prec) // n
        k, sign = 1, -1
        while term:
            term //= n * n
            total += sign * (term // (2 * k + 1))
            sign, k = -sign, k + 1
        return total

    guard = 64
    return (16 * arctan_inv(5, bits + guard) - 4 * arctan_inv(239, bits + guard)) >> guard


@pytest.mark.parametrize(
    ("name", "bits", "offset"), [("rfc5054-3072", 3072, 1690314), ("rfc5054-4096", 4096, 240904)]
)
def test_large_groups_are_the_rfc3526_primes(name: str, bits: int, offset: int) -> None:
    # RFC 3526: p = 2^n - 2^(n-64) - 1 + 2^64 * (floor(2^(n-130) * pi) + offset)
    expected = 2**bits - 2 ** (bits - 64) - 1 + 2**64 * (_pi_bits(bits - 130) + offset)
    assert srp.GROUPS[name].N == expected


@pytest.mark.parametrize("name", sorted(srp.GROUPS))
def test_every_group_is_a_safe_prime_of_its_size(name: str) -> None:
    group = srp.GROUPS[name]
    assert group.N.bit_length() == int(name.rsplit("-", 1)[1])
    assert gmpy2.is_prime(group.N) and gmpy2.is_prime((group.N - 1) // 2)

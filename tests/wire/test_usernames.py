"""Username normal form and rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pychat.wire.usernames import UsernameError, normalize, skeleton


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("alice", "alice"),
        ("Alice", "alice"),
        ("ALICE", "alice"),
        ("\uff21lice", "alice"),  # full-width A
        ("Straße", "strasse"),
        ("bob_the.builder-2", "bob_the.builder-2"),
        ("Зоя", "зоя"),
        ("李小龍", "李小龍"),
    ],
)
def test_normal_forms(raw: str, normal: str) -> None:
    assert normalize(raw) == normal


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("al", "3 to 32"),
        ("a" * 33, "3 to 32"),
        ("al ice", "only hold"),
        ("al@ice", "only hold"),
        ("alice🙂", "only hold"),
        ("_alice", "starts with"),
        ("Admin", "reserved"),
        ("ROOT", "reserved"),
        ("a\u200bb", "only hold"),  # zero-width space
    ],
)
def test_bad_names_say_which_rule(raw: str, fragment: str) -> None:
    with pytest.raises(UsernameError, match=fragment):
        normalize(raw)


@given(st.text(max_size=40))
def test_normal_form_is_stable(raw: str) -> None:
    try:
        normal = normalize(raw)
    except UsernameError:
        return
    assert normalize(normal) == normal


@pytest.mark.parametrize(
    ("one", "other"),
    [("alice", "\u0430lice"), ("alice", "a1ice"), ("mary", "rnary"), ("carol", "CAROL")],
)
def test_look_alike_names_share_a_skeleton(one: str, other: str) -> None:
    assert skeleton(one) == skeleton(other)


@pytest.mark.parametrize(("one", "other"), [("bob", "rob"), ("alice", "alicia"), ("ann", "anna")])
def test_different_names_keep_different_skeletons(one: str, other: str) -> None:
    assert skeleton(one) != skeleton(other)


@pytest.mark.parametrize("name", ["\u0430lice", "bob\u03bf", "\u0445ray"])
def test_mixed_scripts_are_refused(name: str) -> None:
    with pytest.raises(UsernameError, match="mix scripts"):
        normalize(name)


@pytest.mark.parametrize("name", ["ユーザー名", "漢字かな", "홍길동", "админ", "bob_42.x"])
def test_one_script_or_a_japanese_or_korean_mix_is_fine(name: str) -> None:
    assert normalize(name)

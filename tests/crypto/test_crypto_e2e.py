"""Each check of ``pychat.crypto.e2e`` and of the keystore's counters, one rejection a test.

Every forgery here is otherwise well formed (valid base64, a Fernet token that decrypts), so
the test reaches the check it is about and fails if that check is deleted.
"""

from __future__ import annotations

import base64
import json
from functools import cache
from typing import Any

import pytest
from cryptography.fernet import Fernet

from pychat.client.keystore import KeystoreData
from pychat.crypto.canonical import MAX_SAFE_INTEGER, NotPortable, canonical
from pychat.crypto.e2e import open_message, seal_message
from pychat.crypto.envelopes import envelope_statement, make_envelope, open_envelope
from pychat.crypto.errors import E2EError
from pychat.crypto.identity import IdentityKeyPair
from pychat.wire.ids import conversation_id

CONV = conversation_id("alice", "bob")
MEMBERS = ("alice", "bob")


@cache
def keys(name: str) -> IdentityKeyPair:
    return IdentityKeyPair.generate()


def envelope(creator: str = "alice", signer: str | None = None, **changes: Any) -> dict[str, Any]:
    env = make_envelope(
        CONV,
        1,
        creator,
        keys(signer or creator),
        {"alice": keys("alice").public(), "bob": keys("bob").public()},
        Fernet.generate_key(),
        after=0,
    )
    env.update(changes)
    return env


def opened_by_bob(env: Any, creator: str = "alice") -> Any:
    return open_envelope(
        env,
        conversation=CONV,
        me="bob",
        my_keys=[keys("bob")],
        members=MEMBERS,
        creator_identity=keys(creator).public(),
    )


def test_a_good_envelope_opens() -> None:
    assert opened_by_bob(envelope()).epoch == 1


def test_envelope_signed_by_another_key_is_refused() -> None:
    with pytest.raises(E2EError, match="signature does not verify"):
        opened_by_bob(envelope(signer="mallory"))


def test_envelope_with_a_valid_base64_garbage_signature_is_refused() -> None:
    env = envelope(signature=base64.b64encode(b"\x01" * 64).decode())
    with pytest.raises(E2EError, match="signature does not verify"):
        opened_by_bob(env)


def test_envelope_moved_to_another_epoch_is_refused() -> None:
    with pytest.raises(E2EError, match="signature does not verify"):
        opened_by_bob(envelope(epoch=2))


def test_envelope_of_another_conversation_is_refused() -> None:
    with pytest.raises(E2EError, match="another conversation"):
        opened_by_bob(envelope(conversation=conversation_id("alice", "carol")))


def test_envelope_naming_other_members_is_refused() -> None:
    env = envelope()
    env["members"] = {**env["members"], "carol": env["members"]["bob"]}
    with pytest.raises(E2EError, match="other members"):
        opened_by_bob(env)


def test_envelope_by_a_non_member_creator_is_refused() -> None:
    with pytest.raises(E2EError, match="other members"):
        opened_by_bob(envelope(creator="carol"), creator="carol")


def test_envelope_made_with_keys_the_creator_no_longer_has_is_refused() -> None:
    env = envelope()
    env["members"]["alice"]["fingerprint"] = keys("old-alice").public().fingerprint()
    with pytest.raises(E2EError, match="no longer"):
        opened_by_bob(env)


def test_envelope_of_another_version_or_shape_is_refused() -> None:
    with pytest.raises(E2EError, match="version-1 or version-2"):
        opened_by_bob(envelope(v=3))
    with pytest.raises(E2EError, match="malformed"):
        opened_by_bob(envelope(epoch="1"))
    env = envelope()
    env["members"]["bob"] = {"fingerprint": 1, "wrapped": "AAAA"}
    with pytest.raises(E2EError, match="entry is malformed"):
        opened_by_bob(env)


def test_envelope_not_wrapped_for_my_key_is_refused() -> None:
    with pytest.raises(E2EError, match="not wrapped for any of my keys"):
        open_envelope(
            envelope(),
            conversation=CONV,
            me="bob",
            my_keys=[keys("other-bob")],
            members=MEMBERS,
            creator_identity=keys("alice").public(),
        )


def test_a_version_2_envelope_whose_place_was_moved_is_refused() -> None:
    with pytest.raises(E2EError, match="signature does not verify"):
        opened_by_bob(envelope(after=7))
    with pytest.raises(E2EError, match="no valid 'after'"):
        opened_by_bob(envelope(after=-1))


def test_a_version_1_envelope_still_opens_and_fixes_no_place() -> None:
    env = envelope()
    del env["after"]
    members = env["members"]
    env["v"] = 1
    statement = envelope_statement(CONV, 1, "alice", members)
    env["signature"] = base64.b64encode(keys("alice").signing.sign(statement)).decode()
    opened_env = opened_by_bob(env)
    assert opened_env.facts.after is None and opened_env.facts.creator == "alice"


# -- messages ----------------------------------------------------------------------------------

KEY = Fernet.generate_key()


def inner(**changes: Any) -> dict[str, Any]:
    return {
        "v": 2,
        "sender": "alice",
        "device": "d1",
        "recipient": "bob",
        "conversation": CONV,
        "epoch": 1,
        "counter": 1,
        "time": 1700000000000,
        "body": "hello",
    } | changes


def opened(ciphertext: str, **expect: Any) -> Any:
    return open_message(
        ciphertext,
        KEY,
        sender=expect.get("sender", "alice"),
        sender_identity=keys("alice").public(),
        recipient=expect.get("recipient", "bob"),
        conversation=expect.get("conversation", CONV),
        epoch=expect.get("epoch", 1),
    )


def test_a_good_message_opens() -> None:
    assert opened(seal_message(KEY, keys("alice"), inner())).body == "hello"


def test_message_signed_by_another_key_in_a_valid_token_is_refused() -> None:
    with pytest.raises(E2EError, match="signature does not verify as alice's"):
        opened(seal_message(KEY, keys("mallory"), inner()))


def test_message_whose_signed_part_was_changed_is_refused() -> None:
    token = seal_message(KEY, keys("alice"), inner())
    outer = json.loads(Fernet(KEY).decrypt(token.encode()))
    outer["m"]["body"] = "send money"
    forged = Fernet(KEY).encrypt(canonical(outer)).decode()
    with pytest.raises(E2EError, match="signature does not verify"):
        opened(forged)


def test_message_delivered_as_from_someone_else_is_refused() -> None:
    with pytest.raises(E2EError, match="delivered as from"):
        opened(seal_message(KEY, keys("alice"), inner()), sender="carol")


def test_message_for_another_recipient_is_refused() -> None:
    with pytest.raises(E2EError, match="addressed to carol"):
        opened(seal_message(KEY, keys("alice"), inner(recipient="carol")))


def test_message_of_another_conversation_or_epoch_is_refused() -> None:
    other = conversation_id("alice", "carol")
    with pytest.raises(E2EError, match="another conversation or epoch"):
        opened(seal_message(KEY, keys("alice"), inner(conversation=other)))
    with pytest.raises(E2EError, match="another conversation or epoch"):
        opened(seal_message(KEY, keys("alice"), inner(epoch=2)))


def test_message_with_an_impossible_time_is_refused() -> None:
    with pytest.raises(E2EError, match="no valid time"):
        opened(seal_message(KEY, keys("alice"), inner(time=10**15)))  # after year 9999
    with pytest.raises(E2EError, match="no valid time"):
        opened(seal_message(KEY, keys("alice"), inner(v=1, time=1e300)))


def test_a_version_1_message_with_a_float_time_still_opens() -> None:
    message = opened(seal_message(KEY, keys("alice"), inner(v=1, time=1700000000.5)))
    assert message.version == 1 and message.time == 1700000000.5


def test_a_version_2_time_is_read_as_milliseconds() -> None:
    message = opened(seal_message(KEY, keys("alice"), inner(time=1700000000250)))
    assert message.version == 2 and message.time == 1700000000.25


def _sealed_unchecked(obj: dict[str, Any]) -> str:
    """A token holding ``obj`` signed by alice, sealed without the sender's number check (what
    another implementation might write)."""
    signature = base64.b64encode(keys("alice").signing.sign(canonical(obj))).decode()
    return Fernet(KEY).encrypt(canonical({"m": obj, "sig": signature})).decode()


@pytest.mark.parametrize(
    "change",
    [
        {"time": 1700000000000.0},  # a whole number written as a float
        {"counter": MAX_SAFE_INTEGER + 1},
        {"data": {"seq": 2**60}},
        {"data": {"x": [0.5]}},
    ],
)
def test_a_version_2_message_breaking_the_number_rule_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(NotPortable):
        seal_message(KEY, keys("alice"), inner(**change))
    with pytest.raises(E2EError, match="number rule"):
        opened(_sealed_unchecked(inner(**change)))


def test_a_counter_at_the_bound_opens() -> None:
    assert opened(seal_message(KEY, keys("alice"), inner(counter=MAX_SAFE_INTEGER))).counter == (
        MAX_SAFE_INTEGER
    )


def test_a_message_of_an_unknown_version_is_refused() -> None:
    with pytest.raises(E2EError, match="version 3"):
        opened(seal_message(KEY, keys("alice"), inner(v=3)))


@pytest.mark.parametrize("cut", [1, 10, 100])
def test_truncated_token_is_refused(cut: int) -> None:
    token = seal_message(KEY, keys("alice"), inner())
    with pytest.raises(E2EError, match="cannot decrypt"):
        opened(token[:-cut])


@pytest.mark.parametrize("position", [0, 20, 60, -5])
def test_bit_flipped_token_is_refused(position: int) -> None:
    raw = bytearray(base64.urlsafe_b64decode(seal_message(KEY, keys("alice"), inner())))
    raw[position] ^= 0x01
    with pytest.raises(E2EError, match="cannot decrypt"):
        opened(base64.urlsafe_b64encode(bytes(raw)).decode())


def test_decrypted_content_of_the_wrong_shape_is_refused() -> None:
    token = Fernet(KEY).encrypt(b'{"m": {"sender": "alice"}, "sig": "AAAA"}').decode()
    with pytest.raises(E2EError, match="malformed"):
        opened(token)


# -- counters (replay) -----------------------------------------------------------------------------


def store() -> KeystoreData:
    return KeystoreData(server="s", username="bob", identities=[keys("bob")])


def test_a_counter_replayed_at_another_seq_is_refused() -> None:
    data = store()
    assert data.check_counter(CONV, "alice", "d1", 1, 5) is None
    assert data.check_counter(CONV, "alice", "d1", 1, 5) is None  # the same message again
    assert "replay of message 1" in str(data.check_counter(CONV, "alice", "d1", 2, 5))


def test_a_counter_gone_backwards_across_a_keystore_restart_is_refused() -> None:
    data = store()
    assert data.check_counter(CONV, "alice", "d1", 10, 50) is None
    restarted = KeystoreData.from_json(json.loads(json.dumps(data.to_json())))
    assert "went backwards" in str(restarted.check_counter(CONV, "alice", "d1", 11, 49))


def test_an_older_message_with_a_newer_counter_is_refused() -> None:
    data = store()
    assert data.check_counter(CONV, "alice", "d1", 10, 50) is None
    assert "out of order" in str(data.check_counter(CONV, "alice", "d1", 9, 51))


@pytest.mark.parametrize(
    "change", [{"body": 5}, {"counter": "1"}, {"device": None}, {"counter": -1}, {"epoch": -1}]
)
def test_signed_message_with_fields_of_the_wrong_type_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(E2EError, match="malformed"):
        opened(seal_message(KEY, keys("alice"), inner(**change)))


def test_an_action_is_signed_as_such_and_an_unknown_kind_reads_as_text() -> None:
    assert opened(seal_message(KEY, keys("alice"), inner(kind="action"))).action
    assert not opened(seal_message(KEY, keys("alice"), inner())).action
    assert not opened(seal_message(KEY, keys("alice"), inner(kind="poll"))).action  # later kinds
    with pytest.raises(E2EError, match="malformed"):
        opened(seal_message(KEY, keys("alice"), inner(kind=["action"])))

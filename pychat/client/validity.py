"""The key-validity rule (docs/e2e.md §3, "Key validity"): which key and which epoch may speak
at each place in a conversation's log.  Pure functions: no I/O, no keystore, no clock.

Places come from the server's sequence numbers and from each version-2 envelope's signed
``after`` (the seq of the last message when its epoch began), which the server checks on
``add_epoch`` and cannot move afterwards without breaking the creator's signature.  Three
rules follow, each with the reason a reader shows:

- **placed**: a message in epoch E must come after E began (``seq > after(E)``);
- **newest epoch**: once a sender began epoch E', their messages after it in older epochs
  are refused;
- **retired keys**: a sender's key K is retired in a conversation from the first epoch whose
  envelope names, for that sender, a key the reader holds as K's successor; K's messages
  (and envelopes) placed after that are refused.

A hostile server can still withhold or delay messages and envelopes; it cannot make a
retired key speak again by reordering, since every place is signed by a holder of a newer key
(or by the reader itself) and a message's seq is checked against it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pychat.crypto.envelopes import EnvelopeFacts

#: A conversation's verified envelopes by epoch number.
Epochs = Mapping[int, EnvelopeFacts]


def retired_after(epochs: Epochs, user: str, keys: Sequence[str], key: str) -> int | None:
    """The seq after which ``user``'s ``key`` is retired in this conversation, or None.

    :param keys: ``user``'s identity fingerprints as the reader accepted them, oldest first.
    """
    if key not in keys:
        return None
    successors = set(keys[keys.index(key) + 1 :])
    places = [
        facts.after
        for facts in epochs.values()
        if facts.after is not None and facts.members.get(user) in successors
    ]
    return min(places) if places else None


def message_rule(
    epochs: Epochs, *, sender: str, keys: Sequence[str], signer: str, seq: int, epoch: int
) -> tuple[str, str] | None:
    """The rule a message whose signature verified under ``signer`` breaks at ``seq``, as
    ``(rule, reason)`` (rule ``placed``, ``newest_epoch`` or ``retired_key``), or None.

    :param keys: the sender's fingerprints as the reader accepted them, oldest first.
    """
    facts = epochs.get(epoch)
    if facts is not None and facts.after is not None and seq <= facts.after:
        why = f"placed before its key existed (epoch {epoch} began after message #{facts.after})"
        return "placed", why
    for number in sorted(epochs, reverse=True):
        newer = epochs[number]
        if number <= epoch:
            break
        if newer.creator == sender and newer.after is not None and newer.after < seq:
            why = (
                f"sent in epoch {epoch} after {sender} began epoch {number} "
                f"(after message #{newer.after}): an old key speaking again"
            )
            return "newest_epoch", why
    retired = retired_after(epochs, sender, keys, signer)
    if retired is not None and seq > retired:
        why = (
            f"signed with a key {sender} has retired (replaced after message #{retired}); "
            "whoever holds the old key is not them"
        )
        return "retired_key", why
    return None


def message_problem(
    epochs: Epochs, *, sender: str, keys: Sequence[str], signer: str, seq: int, epoch: int
) -> str | None:
    """Why a message is refused by the key-validity rule (:func:`message_rule`), or None."""
    rule = message_rule(epochs, sender=sender, keys=keys, signer=signer, seq=seq, epoch=epoch)
    return None if rule is None else rule[1]


def envelope_problem(
    epochs: Epochs, facts: EnvelopeFacts, *, keys: Sequence[str], signer: str
) -> str | None:
    """Why an envelope whose signature verified under its creator's ``signer`` key is refused,
    given the epochs verified before it, or None.

    :param keys: the creator's fingerprints as the reader accepted them, oldest first.
    """
    for number, other in epochs.items():
        if facts.after is None or other.after is None or number == facts.epoch:
            continue
        if (number < facts.epoch and other.after > facts.after) or (
            number > facts.epoch and other.after < facts.after
        ):
            return f"epoch {facts.epoch} is placed out of order with epoch {number}"
    retired = retired_after(epochs, facts.creator, keys, signer)
    if retired is None:
        return None
    anchors = [
        number
        for number, other in epochs.items()
        if other.after == retired and number < facts.epoch
    ]
    if (facts.after is not None and facts.after >= retired) or (facts.after is None and anchors):
        return f"made with a key {facts.creator} has retired (after message #{retired})"
    return None

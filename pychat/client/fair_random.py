"""Fair coin flips and dice rolls between two people who do not trust each other.

Commit, answer, reveal, over the encrypted conversation (signed messages of ``kind: "game"``):

1. The initiator picks a secret 32-byte ``nonce_a`` and sends ``commit`` with
   ``commitment = SHA-256("pychat-game-commit" ‖ 0 ‖ nonce_a ‖ request)``, where ``request``
   is the canonical JSON of the game (id, what, dice, initiator, responder).
2. The other side answers with its own random ``nonce_b`` (``answer``).
3. The initiator reveals ``nonce_a`` (``reveal``); both sides check it against the commitment
   and derive the result from SHA-256 over both nonces and the request.

Neither side can choose the result: the initiator is bound to ``nonce_a`` before seeing
``nonce_b``, and the responder sees only a hash of ``nonce_a``.  An initiator who dislikes the
outcome can only refuse to reveal, which shows: after :data:`REVEAL_TIMEOUT` the game reads
"alice did not reveal".  A reveal that does not match the commitment is shown as cheating.

This module is sans-IO: :class:`GameBook` takes verified messages and says what each one
means; :mod:`pychat.client.games` sends and fetches.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from pychat.client.errors import ClientError
from pychat.wire.encoding import b64decode, b64encode

#: After the answer, the initiator has this long (seconds) to reveal before it is said that
#: they did not.
REVEAL_TIMEOUT = 300.0
#: ``NdM``: 1 to 10 dice of 2 to 100 sides.
DICE = re.compile(r"([1-9]|10)d([2-9]|[1-9][0-9]|100)")
NONCE_BYTES = 32
_GAME_ID = re.compile(r"[0-9a-f]{32}")


class GameError(ClientError, ValueError):
    """A game message that breaks the protocol (shown as rejected, with this reason)."""


@dataclass(frozen=True)
class GameRequest:
    """What is being decided, by whom, with whom."""

    game: str
    what: str  # "flip" or "roll"
    dice: str | None
    initiator: str
    responder: str

    def canonical(self) -> bytes:
        """The bytes the commitment and the result are bound to."""
        obj = {
            "game": self.game,
            "what": self.what,
            "dice": self.dice,
            "initiator": self.initiator,
            "responder": self.responder,
        }
        return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()

    def label(self) -> str:
        """``a coin`` or ``2d6``."""
        return "a coin" if self.what == "flip" else str(self.dice)


def commitment(nonce: bytes, request: GameRequest) -> str:
    """The initiator's commitment to ``nonce`` for ``request``."""
    return b64encode(hashlib.sha256(b"pychat-game-commit\0" + nonce + request.canonical()).digest())


def outcome(request: GameRequest, nonce_a: bytes, nonce_b: bytes) -> str:
    """The result both nonces decide: ``heads``/``tails``, or the dice and their sum."""
    seed = b"pychat-game-outcome\0" + nonce_a + nonce_b + request.canonical()
    if request.what == "flip":
        return "heads" if hashlib.sha256(seed).digest()[0] & 1 else "tails"
    count, sides = (int(x) for x in str(request.dice).split("d"))
    values = _uniform(seed, count, sides)
    shown = " + ".join(str(v) for v in values)
    return f"{shown} = {sum(values)}" if count > 1 else shown


def _uniform(seed: bytes, count: int, sides: int) -> list[int]:
    """``count`` values in 1..``sides`` from a SHA-256 stream, by rejection (no modulo bias)."""
    limit = 256 - 256 % sides
    values: list[int] = []
    block = 0
    while len(values) < count:
        for byte in hashlib.sha256(seed + block.to_bytes(4, "big")).digest():
            if byte < limit and len(values) < count:
                values.append(byte % sides + 1)
        block += 1
    return values


def new_game(
    what: str, dice: str | None, me: str, peer: str
) -> tuple[GameRequest, bytes, dict[str, Any]]:
    """A new game: its request, the secret nonce to keep, and the ``commit`` message's data.

    :raises GameError: an unknown game or a malformed dice spec.
    """
    if what == "roll" and (dice is None or not DICE.fullmatch(dice)):
        raise GameError(f"dice are written NdM (1-10 dice of 2-100 sides), not {dice!r}")
    if what not in ("flip", "roll"):
        raise GameError(f"no game called {what!r}")
    request = GameRequest(secrets.token_hex(16), what, dice if what == "roll" else None, me, peer)
    nonce = secrets.token_bytes(NONCE_BYTES)
    data = {
        "game": request.game,
        "step": "commit",
        "what": what,
        "dice": request.dice,
        "commitment": commitment(nonce, request),
    }
    return request, nonce, data


@dataclass
class Game:
    """One game as seen so far."""

    request: GameRequest
    commitment: str
    commit_seq: int
    nonce_b: bytes | None = None
    answer_seq: int | None = None
    answered_at: float | None = None
    result: str | None = None
    problem: str | None = None


@dataclass
class GameBook:
    """The games of one conversation, from the verified messages of it (any order)."""

    me: str
    peer: str
    games: dict[str, Game] = field(default_factory=dict)

    def on_message(self, sender: str, seq: int, time: float, data: Any) -> str:
        """Record a verified ``game`` message; return what it means for a person.

        :raises GameError: it breaks the protocol (then nothing is recorded).
        """
        if not isinstance(data, dict) or not _GAME_ID.fullmatch(str(data.get("game"))):
            raise GameError("malformed game message")
        step = data.get("step")
        if step == "commit":
            return self._commit(sender, seq, data)
        game = self.games.get(str(data["game"]))
        if game is None:
            raise GameError("a game step for a game whose start is not known here")
        if step == "answer":
            return self._answer(game, sender, seq, time, data)
        if step == "reveal":
            return self._reveal(game, sender, data)
        raise GameError(f"unknown game step {step!r}")

    def _commit(self, sender: str, seq: int, data: dict[str, Any]) -> str:
        what, dice, commit = data.get("what"), data.get("dice"), data.get("commitment")
        if what not in ("flip", "roll") or not isinstance(commit, str) or len(commit) != 44:
            raise GameError("malformed game start")
        if what == "roll" and not (isinstance(dice, str) and DICE.fullmatch(dice)):
            raise GameError("malformed dice")
        responder = self.peer if sender == self.me else self.me
        request = GameRequest(
            str(data["game"]), what, dice if what == "roll" else None, sender, responder
        )
        known = self.games.get(request.game)
        if known is not None and known.commit_seq != seq:
            raise GameError("a second start of the same game")
        if known is None:
            self.games[request.game] = Game(request, commit, seq)
        icon = "🪙" if what == "flip" else "🎲"
        verb = "flips" if what == "flip" else "rolls"
        return f"{icon} {sender} {verb} {request.label()} (commit-reveal)"

    def _answer(self, game: Game, sender: str, seq: int, time: float, data: dict[str, Any]) -> str:
        if sender != game.request.responder:
            raise GameError(f"only {game.request.responder} may answer this game")
        nonce = _nonce(data.get("nonce"))
        if game.answer_seq is not None and game.answer_seq != seq:
            return f"{sender} answered again (the first answer counts)"
        game.nonce_b, game.answer_seq, game.answered_at = nonce, seq, time
        return f"{sender} answered {game.request.initiator}'s {game.request.what}"

    def _reveal(self, game: Game, sender: str, data: dict[str, Any]) -> str:
        initiator = game.request.initiator
        if sender != initiator:
            raise GameError(f"only {initiator} may reveal this game")
        if game.nonce_b is None:
            raise GameError(f"{initiator} revealed before the answer")
        if data.get("answer_seq") != game.answer_seq:
            raise GameError(f"{initiator} revealed against another answer than the first")
        nonce_a = _nonce(data.get("nonce"))
        if commitment(nonce_a, game.request) != game.commitment:
            game.problem = f"{initiator}'s reveal does not match the commitment: not fair"
            return f"✗ {game.problem}"
        game.result = outcome(game.request, nonce_a, game.nonce_b)
        return self.describe(game.request.game, 0.0)

    def describe(self, game_id: str, now: float) -> str:
        """Where a game stands, for a person (``now`` decides "did not reveal")."""
        game = self.games[game_id]
        request = game.request
        icon = "🪙" if request.what == "flip" else "🎲"
        if game.problem is not None:
            return f"✗ {game.problem}"
        if game.result is not None:
            both = f"{request.initiator} and {request.responder} both chose"
            return f"{icon} {game.result} — fair ({both})"
        if game.answered_at is None:
            return f"{icon} waiting for {request.responder} to answer"
        if now - game.answered_at > REVEAL_TIMEOUT:
            return f"✗ {request.initiator} did not reveal: the {request.what} does not count"
        return f"{icon} waiting for {request.initiator} to reveal"


def _nonce(value: Any) -> bytes:
    try:
        raw = b64decode(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != NONCE_BYTES:
        raise GameError("a game nonce is not 32 bytes")
    return raw

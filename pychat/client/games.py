"""Fair flips and rolls on a live client: starting a game, answering and revealing by
themselves, and telling what each game message means (the protocol is in
:mod:`pychat.client.fair_random`).

The initiator's secret nonce is kept in the keystore until it is revealed, so a game
survives a restart.  A client answers a peer's game by itself when it sees the start within
:data:`ANSWER_WINDOW` of its sending (an old game found in the history on a new device is left
alone), once per game; it reveals its own game as soon as it sees the first answer.  When the
initiator has not revealed :data:`~pychat.client.fair_random.REVEAL_TIMEOUT` after the answer,
a notice says so.
"""

from __future__ import annotations

import secrets
from typing import Any, Protocol

from twisted.internet import defer
from twisted.logger import Logger

from pychat.client.events import ClientEvent
from pychat.client.fair_random import REVEAL_TIMEOUT, GameBook, GameError, new_game
from pychat.client.keystore import KeystoreData
from pychat.client.messaging import Messaging
from pychat.client.sending import Sender
from pychat.crypto.e2e import OpenedMessage
from pychat.wire.encoding import b64encode
from pychat.wire.ids import conversation_id, group_of
from pychat.wire.usernames import normal_form

log = Logger(namespace="pychat.client")

#: A peer's game older than this (seconds) is not answered by itself.
ANSWER_WINDOW = 2 * REVEAL_TIMEOUT
#: Games this device remembers its part in (the oldest are forgotten first).
KEPT_GAMES = 200


class GameHost(Protocol):
    """What games need of the client."""

    messaging: Messaging
    sender: Sender
    reactor: Any

    def require_login(self) -> tuple[str, KeystoreData]: ...
    async def save(self) -> None: ...
    def emit(self, event: ClientEvent) -> None: ...
    def now(self) -> float: ...


#: Why there are no flips and rolls in groups (docs/features.md).
IN_GROUPS = (
    "flips and rolls are between two people: among a group's members every one of them would "
    "have to be online to take part, and one who holds back their part could spoil a result "
    "they dislike; flip with one member in your conversation with them"
)


class Games:
    """One client's games."""

    def __init__(self, client: GameHost) -> None:
        self._client = client
        self._books: dict[str, GameBook] = {}
        #: While an earlier step is fetched to make sense of a later one: no answering then.
        self._fetching = 0
        self._watched: set[str] = set()
        client.messaging.kind_handlers["game"] = self.describe

    async def start(self, peer: str, what: str, dice: str | None = None) -> str:
        """Start a flip or a roll with ``peer``; return the game's id (the result follows when
        ``peer``'s client answers and this one reveals: a ``game`` event with that id).

        :raises GameError: an unknown game or malformed dice.
        """
        me, data = self._client.require_login()
        peer = normal_form(peer)
        if group_of(peer) is not None:
            raise GameError(IN_GROUPS)
        request, nonce, start = new_game(what, dice, me, peer)
        data.games[request.game] = {"nonce": b64encode(nonce), "role": "initiator"}
        self._forget_old(data)
        await self._client.save()  # the nonce is kept before anyone sees the commitment
        body = f"{'🪙' if what == 'flip' else '🎲'} {me} {what}s {request.label()}"
        await self._client.sender.send_kind(peer, body, "game", start, queue=True)
        return request.game

    def _book(self, conversation: str, peer: str) -> GameBook:
        me, _ = self._client.require_login()
        return self._books.setdefault(conversation, GameBook(me, peer))

    async def describe(self, conversation: str, peer: str, seq: int, opened: OpenedMessage) -> str:
        """What a verified game message means (its start fetched if not seen yet); answers or
        reveals by itself when it is this device's turn."""
        if group_of(peer) is not None:
            raise ValueError(IN_GROUPS)
        book = self._book(conversation, peer)
        data = opened.data or {}
        game = str(data.get("game"))
        if data.get("step") != "commit" and game not in book.games:
            await self._fetch(peer, data.get("commit_seq"))
        if (
            data.get("step") == "reveal"
            and game in book.games
            and book.games[game].answer_seq is None
        ):
            await self._fetch(peer, data.get("answer_seq"))
        text = book.on_message(opened.sender, seq, opened.time, data)
        self._after(conversation, peer, opened, seq, data)
        return text

    async def _fetch(self, peer: str, seq: Any) -> None:
        """Read (and so record) an earlier message of the game."""
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise GameError("a game step that does not say where its game started")
        me, _ = self._client.require_login()
        found = await self._client.messaging.digests.message(conversation_id(me, peer), seq)
        if found is None:
            raise GameError(f"the game's message #{seq} is not on the server")
        self._fetching += 1
        try:
            await self._client.messaging.decrypt(peer, found)
        finally:
            self._fetching -= 1

    def _after(
        self, conversation: str, peer: str, opened: OpenedMessage, seq: int, data: dict[str, Any]
    ) -> None:
        """This device's turn, if it is one: answer a peer's fresh game, reveal its own."""
        _, keystore = self._client.require_login()
        game, step = str(data.get("game")), data.get("step")
        mine = keystore.games.get(game)
        state = self._book(conversation, peer).games[game]
        if step == "commit" and opened.sender == peer and mine is None and not self._fetching:
            if self._client.now() - opened.time < ANSWER_WINDOW:
                self._run(self._answer(peer, game, seq))
        elif step == "answer" and mine and mine.get("role") == "initiator":
            if not mine.get("revealed") and state.answer_seq == seq:
                self._run(self._reveal(peer, game, mine, state.commit_seq, seq))
        elif step == "answer" and game not in self._watched:
            self._watched.add(game)
            when = state.answered_at or opened.time
            delay = max(0.0, when + REVEAL_TIMEOUT - self._client.now()) + 1.0
            self._client.reactor.callLater(delay, self._check_revealed, conversation, peer, game)
        if step == "reveal" and (state.result or state.problem):
            text = self._book(conversation, peer).describe(game, self._client.now())
            self._client.emit(ClientEvent("game", {"peer": peer, "game": game, "text": text}))

    async def _answer(self, peer: str, game: str, commit_seq: int) -> None:
        _, keystore = self._client.require_login()
        keystore.games[game] = {"role": "responder"}
        self._forget_old(keystore)
        await self._client.save()  # answered once, even across a restart
        nonce = b64encode(secrets.token_bytes(32))
        data = {"game": game, "step": "answer", "nonce": nonce, "commit_seq": commit_seq}
        me, _ = self._client.require_login()
        what = self._book(conversation_id(me, peer), peer).games[game].request.what
        body = f"{me} answered {peer}'s {what}"
        await self._client.sender.send_kind(peer, body, "game", data, queue=True)

    async def _reveal(
        self, peer: str, game: str, mine: dict[str, Any], commit_seq: int, answer_seq: int
    ) -> None:
        me, _ = self._client.require_login()
        mine["revealed"] = True
        await self._client.save()
        book = self._book(conversation_id(me, peer), peer)
        data = {
            "game": game,
            "step": "reveal",
            "nonce": mine["nonce"],
            "commit_seq": commit_seq,
            "answer_seq": answer_seq,
        }
        result = book.on_message(me, 0, self._client.now(), data)
        self._client.emit(ClientEvent("game", {"peer": peer, "game": game, "text": result}))
        await self._client.sender.send_kind(peer, result, "game", data, queue=True)

    def _check_revealed(self, conversation: str, peer: str, game: str) -> None:
        book = self._books.get(conversation)
        if book is None or game not in book.games:
            return
        text = book.describe(game, self._client.now())
        if text.startswith("✗"):
            self._client.emit(ClientEvent("notice", {"user": peer, "text": text}))
            self._client.emit(ClientEvent("game", {"peer": peer, "game": game, "text": text}))

    def _forget_old(self, keystore: KeystoreData) -> None:
        while len(keystore.games) > KEPT_GAMES:
            del keystore.games[next(iter(keystore.games))]

    def _run(self, work: Any) -> None:
        def failed(failure: Any) -> None:
            log.failure("a game step could not be sent", failure=failure)

        defer.ensureDeferred(work).addErrback(failed)

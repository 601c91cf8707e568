"""The TUI's state, with no curses in it: conversations, messages, scroll, input, modals.

The view draws it (:mod:`pychat.tui.render`); key handlers and network events change it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pychat.tui.completion import Completer
from pychat.tui.input_line import InputLine
from pychat.tui.pictures import Picture


@dataclass(frozen=True)
class MessageItem:
    """One message as shown: ``status`` is ``verified``, ``rejected`` (then ``text`` is None),
    or for one of ours not acknowledged yet, ``pending`` (in the outbox) or ``failed`` (refused
    for good, ``reason`` says why; ``seq`` is 0 for both)."""

    seq: int
    sender: str
    time: float
    status: str
    text: str | None = None
    reason: str | None = None
    #: An emote (``/me``): ``* sender text``.
    action: bool = False
    #: ``text``, ``action``, ``reaction`` (shown under the message it names, not as a line)
    #: or ``reply`` (shown with the quote of the message it names).
    kind: str = "text"
    #: The message a reaction or reply names, and a reply's quote of it.
    ref_seq: int | None = None
    quote: str | None = None
    #: A disappearing message: when it leaves the screen.
    expires: float | None = None
    #: The sender's signed time, kept only when it differs from the server's (``time``) by
    #: more than a few minutes: then both are shown.
    their_time: float | None = None
    #: A file message's file name (as it is saved) and size in bytes.
    file_name: str | None = None
    file_size: int = 0


@dataclass(frozen=True)
class Preview:
    """A received image's preview under its message: ``loading``, ``ready`` (``picture``
    holds it) or ``failed`` (``reason`` says why)."""

    state: str
    picture: Picture | None = None
    reason: str = ""


@dataclass
class ConversationState:
    """One conversation in the list and its loaded messages."""

    peer: str
    unread: int = 0
    online: bool | None = None
    verified: bool = False
    key_changed: bool = False
    last_activity: float = 0.0
    last_seq: int = 0
    messages: dict[int, MessageItem] = field(default_factory=dict)
    #: The first message that was unread when the conversation was opened (the marker line).
    marker_seq: int | None = None
    #: The first message that arrived unseen since the conversation was last read (None when
    #: the unread count came from the server's summary).
    first_unread: int | None = None
    has_older: bool = True
    loaded: bool = False
    #: Lines scrolled up from the bottom of the message pane (0: following new messages).
    scroll: int = 0
    #: The newest message when the pane was last drawn: what arrived since is below the view
    #: (kept still while scrolled up).
    drawn_seq: int = 0
    #: Closed with /close: left out of the list until a new message comes.
    closed: bool = False
    #: Notices shown in the conversation (key rotations, new keys): (after seq, text).
    notices: list[tuple[int, str]] = field(default_factory=list)
    #: A message to bring into view at the next draw (a /search hit), or None.
    jump_to: int | None = None
    #: Our messages the server has not acknowledged, by ``client_id``, in the order written:
    #: shown after the others with ``…`` (or ``✗`` when refused).
    pending: dict[str, MessageItem] = field(default_factory=dict)
    #: Reactions by the message they name: sender -> (seq of the reaction, emoji); the newest
    #: reaction of each sender counts, and an empty one took it back.
    reactions: dict[int, dict[str, tuple[int, str]]] = field(default_factory=dict)
    #: The message /react and /reply go to (the last /search hit shown), or None.
    selected: int | None = None
    #: Signals from the peer (when both share them): typing until this time; read up to.
    typing_until: float = 0.0
    #: Who is typing (in a group, one of its members).
    typing_who: str = ""
    peer_read: int = 0
    #: The disappearing-message timer (seconds; 0: messages stay).
    timer: int = 0
    #: What the list and status line call it: empty for a pair (the peer's name), ``#NAME``
    #: for a group (whose ``peer`` is ``#`` and its id), as its verified chain names it.
    title: str = ""
    #: A group's members (as its verified chain leaves them).
    members: list[str] = field(default_factory=list)
    #: Muted with /mute: no bell or notification, except for a message that mentions you.
    muted: bool = False
    #: Image previews under their file messages, by the message's seq.
    previews: dict[int, Preview] = field(default_factory=dict)

    @property
    def is_group(self) -> bool:
        """Whether this is a group's buffer."""
        return self.peer.startswith("#")

    @property
    def label(self) -> str:
        """Its name in the list and the status line."""
        return self.title or self.peer

    def drop_expired(self, now: float) -> bool:
        """Forget the disappearing messages whose time is up (and their previews); whether
        any went."""
        gone = [s for s, m in self.messages.items() if m.expires is not None and m.expires <= now]
        for seq in gone:
            del self.messages[seq]
            self.previews.pop(seq, None)
        return bool(gone)

    def react(self, item: MessageItem) -> None:
        """Count a reaction under the message it names (a newer one of its sender wins)."""
        if item.ref_seq is None or item.status != "verified":
            return
        by_sender = self.reactions.setdefault(item.ref_seq, {})
        earlier = by_sender.get(item.sender)
        if earlier is None or earlier[0] < item.seq:
            by_sender[item.sender] = (item.seq, item.text or "")

    def reactions_to(self, seq: int) -> list[tuple[str, str]]:
        """(emoji, sender) of the reactions standing under message ``seq``."""
        standing = self.reactions.get(seq, {})
        return sorted((emoji, who) for who, (_, emoji) in standing.items() if emoji)

    def set_unread(self, count: int) -> None:
        """The server's unread count (when it differs from ours, which message was the first
        unseen is no longer known here)."""
        if count != self.unread:
            self.first_unread = None
        self.unread = count

    def sorted_messages(self) -> list[MessageItem]:
        """Loaded messages, oldest first."""
        return [self.messages[s] for s in sorted(self.messages)]

    @property
    def oldest_loaded(self) -> int:
        """The smallest loaded sequence number (0 when none)."""
        return min(self.messages, default=0)


@dataclass
class Search:
    """A /search in progress: its text, the matching messages found so far (oldest first) and
    the one on screen."""

    peer: str
    needle: str
    hits: list[int]
    index: int


@dataclass
class Modal:
    """A box over the screen that any key closes (warnings, help, safety numbers)."""

    title: str
    lines: list[str]
    warning: bool = False
    prompt: str = "(press any key)"


@dataclass
class ChatModel:
    """Everything the main screen shows."""

    me: str = ""
    server: str = ""
    connection: str = "connecting"
    reconnect_at: float | None = None
    conversations: dict[str, ConversationState] = field(default_factory=dict)
    current: str | None = None
    notice: str = ""
    notice_is_error: bool = False
    modals: list[Modal] = field(default_factory=list)
    input: InputLine = field(default_factory=InputLine)
    #: Tab completion of the input line (commands, user names).
    completer: Completer = field(default_factory=Completer)
    #: The /search being stepped through (n older, N newer), or None.
    search: Search | None = None

    # -- conversations -------------------------------------------------------------------------

    def ordered(self) -> list[ConversationState]:
        """Conversations, most recently active first (then by name)."""
        open_ = [c for c in self.conversations.values() if not c.closed]
        return sorted(open_, key=lambda c: (-c.last_activity, c.peer))

    def conversation(self, peer: str) -> ConversationState:
        """The state of the conversation with ``peer`` (created empty if new)."""
        if peer not in self.conversations:
            self.conversations[peer] = ConversationState(peer)
        return self.conversations[peer]

    @property
    def current_conversation(self) -> ConversationState | None:
        """The conversation on screen, if any."""
        return self.conversations.get(self.current) if self.current else None

    def select(self, peer: str) -> ConversationState:
        """Put ``peer``'s conversation on screen; remember where reading stopped."""
        conv = self.conversation(peer)
        conv.closed = False  # choosing a closed conversation opens it again
        if self.current != peer:
            self.current = peer
            conv.scroll = 0
            if conv.unread and conv.first_unread is not None:
                conv.marker_seq = conv.first_unread
            elif conv.unread and conv.last_seq:
                conv.marker_seq = conv.last_seq - conv.unread + 1
        return conv

    def cycle(self, step: int) -> ConversationState | None:
        """Tab / Shift-Tab: the next or previous conversation in list order."""
        order = self.ordered()
        if not order:
            return None
        peers = [c.peer for c in order]
        i = peers.index(self.current) if self.current in peers else -1
        return self.select(peers[(i + step) % len(peers)])

    def next_unread(self) -> ConversationState | None:
        """Alt-A: the next conversation (in list order, after the current) with unread
        messages, or None when there is none."""
        order = self.ordered()
        peers = [c.peer for c in order]
        start = peers.index(self.current) + 1 if self.current in peers else 0
        for conv in order[start:] + order[:start]:
            if conv.unread and conv.peer != self.current:
                return self.select(conv.peer)
        return None

    def close(self, peer: str) -> None:
        """/close: leave ``peer``'s conversation out of the list (its number is kept) and show
        the next one."""
        conv = self.conversation(peer)
        conv.closed = True
        if self.current == peer:
            self.current = None
            order = self.ordered()
            if order:
                self.select(order[0].peer)

    def number(self, peer: str) -> int:
        """The conversation's number for this session (1, 2, ...): given in the order
        conversations first appear and never changed, so Alt-2 stays the same person while
        the list is ordered by activity."""
        return list(self.conversations).index(peer) + 1

    def select_index(self, index: int) -> ConversationState | None:
        """Alt-digit: the conversation numbered ``index + 1``."""
        numbered = list(self.conversations.values())
        return self.select(numbered[index].peer) if 0 <= index < len(numbered) else None

    def add_message(self, peer: str, item: MessageItem, *, on_screen: bool) -> bool:
        """Add a message; return True if it is new.  Unread counts grow for what is not seen."""
        conv = self.conversation(peer)
        if item.kind == "reaction":
            conv.react(item)
        if item.seq in conv.messages:
            conv.messages[item.seq] = item
            return False
        conv.messages[item.seq] = item
        conv.closed = False  # a new message brings a closed conversation back
        conv.last_activity = max(conv.last_activity, item.time)
        if item.seq > conv.last_seq:
            conv.last_seq = item.seq
            if item.sender != self.me and not on_screen:
                if not conv.unread:  # the first unseen one: the marker goes above it
                    conv.first_unread = item.seq
                    if peer == self.current:  # on screen but scrolled up
                        conv.marker_seq = item.seq
                conv.unread += 1
        return True

    # -- notices and modals --------------------------------------------------------------------

    def note(self, peer: str, text: str) -> None:
        """A notice in ``peer``'s conversation, after its newest message (and in the status
        line)."""
        conv = self.conversation(peer)
        conv.notices.append((conv.last_seq, text))
        self.tell(text)

    def tell(self, text: str, *, error: bool = False) -> None:
        """Show ``text`` in the status line until the next notice."""
        self.notice, self.notice_is_error = text, error

    def warn(self, title: str, lines: list[str]) -> None:
        """Interrupt with a warning box."""
        self.modals.append(Modal(title, lines, warning=True))


@dataclass
class LoginForm:
    """The login/signup screen: fields, focus, mode and a message."""

    server: InputLine = field(default_factory=InputLine)
    username: InputLine = field(default_factory=InputLine)
    password: InputLine = field(default_factory=InputLine)
    confirm: InputLine = field(default_factory=InputLine)
    invite: InputLine = field(default_factory=InputLine)
    signup: bool = False
    focus: int = 0
    message: str = ""
    busy: bool = False
    modals: list[Modal] = field(default_factory=list)

    def fields(self) -> list[tuple[str, InputLine, bool]]:
        """(label, line, secret) of the fields shown in this mode."""
        out = [
            ("Server", self.server, False),
            ("Username", self.username, False),
            ("Password", self.password, True),
        ]
        if self.signup:
            out.append(("Confirm", self.confirm, True))
            out.append(("Invite (if the server asks)", self.invite, False))
        return out

    def last_required(self) -> int:
        """The index of the last field that must be filled (the invite is optional)."""
        return len(self.fields()) - (2 if self.signup else 1)

    def focused(self) -> InputLine:
        """The field being edited."""
        return self.fields()[self.focus][1]

    def move(self, step: int) -> None:
        """Tab / Shift-Tab between fields."""
        self.focus = (self.focus + step) % len(self.fields())

    def toggle_mode(self) -> None:
        """Switch between logging in and signing up."""
        self.signup = not self.signup
        self.focus = min(self.focus, len(self.fields()) - 1)
        self.message = ""

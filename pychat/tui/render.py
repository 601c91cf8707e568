"""Drawing the model into rows of styled text (a :class:`Frame`), with no curses in it.

The curses view copies a frame to the screen; tests read frames directly.  Styles are names
(``title``, ``status``, ``me``, ``peer``, ``rejected``, ``marker``, ``selected`` ...) that the
view maps to colours or plain attributes.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace

from pychat.text.safe import visible, visible_lines
from pychat.tui.model import (
    ChatModel,
    ConversationState,
    LoginForm,
    MessageItem,
    Modal,
    Preview,
)
from pychat.tui.pictures import Placed
from pychat.tui.width import clip, pad, text_width, wrap

Segment = tuple[str, str]  # (text, style)

#: What a password field shows for each character typed.
MASK = "•"

#: Marks the continuation lines of a multi-line message, so a line a peer wrote cannot pass
#: for a new message from someone else.
GUTTER = "│ "

#: The full layout needs this much; below it the conversation list is hidden.
FULL_WIDTH, FULL_HEIGHT = 80, 24
#: Below this nothing but a "too small" notice is drawn.
MIN_WIDTH, MIN_HEIGHT = 40, 8
LIST_WIDTH = 22


@dataclass
class Frame:
    """A screen's worth of rows (each exactly ``width`` cells) and where the cursor goes."""

    width: int
    height: int
    rows: list[list[Segment]] = field(default_factory=list)
    cursor: tuple[int, int] | None = None
    #: Image previews drawn over blank cells of the rows.
    pictures: list[Placed] = field(default_factory=list)

    def text(self) -> str:
        """The plain text, rows joined with newlines (for tests and screenshots)."""
        return "\n".join("".join(t for t, _ in row) for row in self.rows)


def _row(width: int, *segments: Segment, ellipsis: bool = False) -> list[Segment]:
    """Segments made visible (no control character reaches the screen), clipped to ``width``
    (ending in ``…`` where text was cut, with ``ellipsis``) and padded with the last
    segment's style."""
    out: list[Segment] = []
    used = 0
    style = "normal"
    for text, style in segments:
        room = width - used
        if room <= 0:
            break
        shown = visible(text)
        piece = clip(shown, room)
        if ellipsis and piece != shown and room >= 1:
            piece = clip(shown, room - 1) + "…"
        out.append((piece, style))
        used += text_width(piece)
    if used < width:
        out.append((" " * (width - used), style if segments else "normal"))
    return out


def _too_small(width: int, height: int) -> Frame:
    frame = Frame(width, height)
    note = f"terminal too small ({width}x{height}); pyChat needs at least {MIN_WIDTH}x{MIN_HEIGHT}"
    lines = wrap(note, max(1, width))
    for y in range(height):
        frame.rows.append(_row(width, (lines[y] if y < len(lines) else "", "warning")))
    return frame


def _day(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts).strftime("%a %d %b %Y")


def message_lines(
    conv: ConversationState, me: str, width: int, time_format: str
) -> list[list[Segment]]:
    """Every display line of the loaded messages, oldest first, with day separators and the
    new-messages marker."""
    lines: list[list[Segment]] = []
    last_day = None
    notices = sorted(conv.notices)
    shown = 0

    def notices_up_to(seq: float) -> None:
        nonlocal shown
        while shown < len(notices) and notices[shown][0] <= seq:
            for piece in wrap(visible(f"── {notices[shown][1]} ──"), max(8, width)):
                lines.append(_row(width, (piece, "marker")))
            shown += 1

    previous_reason: str | None = None
    repeated = 0
    for item in conv.sorted_messages():
        if item.kind == "reaction" and item.status == "verified":
            continue  # shown under the message it names
        notices_up_to(item.seq - 0.5)
        # A run of messages unreadable for the same reason (sent before a key change) is
        # shown once, with a count, not as a wall of errors.
        if item.status != "verified" and item.reason == previous_reason and lines:
            repeated += 1
            lines[-1] = _row(
                width, (f"  ✗ {repeated + 1} messages: [{visible(item.reason or '')}]", "rejected")
            )
            continue
        previous_reason = item.reason if item.status != "verified" else None
        repeated = 0
        day = _day(item.time)
        if day != last_day:
            lines.append(_row(width, (_centered(f" {day} ", width, "─"), "dim")))
            last_day = day
        if conv.marker_seq is not None and item.seq == conv.marker_seq:
            lines.append(_row(width, (_centered(" new messages ", width, "─"), "marker")))
        lines += _message(item, me, conv, width, time_format)
        preview = conv.previews.get(item.seq)
        if preview is not None:
            lines += _preview(preview, item.seq, width)
        lines += _reactions(conv, item.seq, width)
    notices_up_to(float("inf"))
    lines += _read_mark(conv, me, width)
    for item in conv.pending.values():
        lines += _message(item, me, conv, width, time_format)
    return lines


#: Where a preview starts (under the message's time), and the style of its cells: the picture
#: is drawn over them (``picture:SEQ:ROW``).
PREVIEW_INDENT = 6
PICTURE = "picture:"


def _preview(preview: Preview, seq: int, width: int) -> list[list[Segment]]:
    """The lines of a preview: blank cells the picture goes over, or what keeps it."""
    indent = " " * PREVIEW_INDENT
    picture = preview.picture
    if preview.state == "loading":
        return [_row(width, (indent + "… loading the preview", "dim"))]
    if picture is None:
        return [_row(width, (f"{indent}(no preview: {preview.reason})", "dim"), ellipsis=True)]
    if PREVIEW_INDENT + picture.cols > width:
        return [_row(width, (indent + "(preview: wider than this pane)", "dim"))]
    return [
        _row(width, (indent, "dim"), (" " * picture.cols, f"{PICTURE}{seq}:{row}"), ("", "dim"))
        for row in range(picture.rows)
    ]


def _placements(rows: list[list[Segment]], conv: ConversationState) -> list[Placed]:
    """Where the previews' pictures go in ``rows``: a half-block picture row by row, any
    other only when every row of it is on screen."""
    found: dict[int, list[tuple[int, int, int]]] = {}
    for y, row in enumerate(rows):
        x = 0
        for text, style in row:
            if style.startswith(PICTURE):
                number, _, line = style[len(PICTURE) :].partition(":")
                found.setdefault(int(number), []).append((y, x, int(line)))
            x += text_width(text)
    placed = []
    for seq, cells in found.items():
        picture = conv.previews[seq].picture
        if picture is None:
            continue
        if picture.mode == "blocks":
            placed += [Placed(y, x, picture, line) for y, x, line in cells]
        elif len(cells) == picture.rows and cells[0][2] == 0:
            placed.append(Placed(cells[0][0], cells[0][1], picture))
    return placed


def _read_mark(conv: ConversationState, me: str, width: int) -> list[list[Segment]]:
    """``read`` under the newest message: the peer's read signal reached it (or beyond)."""
    mine = [s for s, m in conv.messages.items() if m.sender == me and m.kind != "reaction"]
    if not mine or not conv.peer_read or conv.peer_read < max(mine) or conv.last_seq > max(mine):
        return []
    return [_row(width, (f"      ✓✓ read by {visible(conv.peer)}", "dim"))]


def _reactions(conv: ConversationState, seq: int, width: int) -> list[list[Segment]]:
    """The line of reactions under message ``seq`` (none when it has none)."""
    standing = conv.reactions_to(seq)
    if not standing:
        return []
    shown = " · ".join(f"{visible(emoji)} {visible(who)}" for emoji, who in standing)
    return [_row(width, (f"      ↳ {shown}", "dim"), ellipsis=True)]


def _their_clock(when: float) -> str:
    """A sender's signed time, in full (it may be any day, being their clock)."""
    try:
        return datetime.datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M")
    except (ValueError, OverflowError, OSError):
        return "????-??-?? ??:??"


def _centered(text: str, width: int, fill: str) -> str:
    room = max(0, width - text_width(text))
    return fill * (room // 2) + text + fill * (room - room // 2)


def _message(
    item: MessageItem, me: str, conv: ConversationState, width: int, time_format: str
) -> list[list[Segment]]:
    when = (
        datetime.datetime.fromtimestamp(item.time).strftime(time_format) if item.time else "--:--"
    )
    if item.their_time is not None:
        when += f" (their clock: {_their_clock(item.their_time)})"
    if item.status == "pending":
        mark, style, body = "…", "me", item.text or ""
    elif item.status == "failed":
        mark, style, body = "✗", "rejected", f"{item.text} [not sent: {item.reason}]"
    elif item.status != "verified":
        mark, style, body = "✗", "rejected", f"[rejected: {item.reason}]"
    else:
        mine = item.sender == me
        trusted = mine or conv.verified
        mark, style, body = ("✓" if trusted else "·"), ("me" if mine else "peer"), item.text or ""
    sender = visible(item.sender)
    said = f"* {sender} " if item.action and item.status != "rejected" else f"{sender}: "
    if item.kind in ("game", "file", "disappear"):  # the text names who did what
        said = ""
    if item.kind == "reaction":  # a pending or refused one of ours
        said, body = f"{sender} reacts ", f"{body} to #{item.ref_seq}"
    quoted = []
    if item.kind == "reply" and item.status != "rejected":
        quote = f"      ↪ re #{item.ref_seq}: {visible(item.quote or '')}"
        quoted = [_row(width, (quote, "dim"), ellipsis=True)]
    if item.seq and item.seq == conv.selected:
        when = "▶" + when[1:]
    head = f"{when} {mark} {said}"
    # Continuation lines are indented and carry the gutter mark, whatever the peer wrote.
    indent = " " * max(0, min(text_width(head), width // 3) - text_width(GUTTER)) + GUTTER
    body_style = "normal" if style != "rejected" else "rejected"
    paragraphs = visible_lines(body)
    first = wrap(paragraphs[0], max(8, width - text_width(head)))
    out = [
        _row(
            width,
            (f"{when} ", "dim"),
            (f"{mark} ", style),
            (said, style),
            (first[0], body_style),
        )
    ]
    rest = first[1:] + [
        piece for extra in paragraphs[1:] for piece in wrap(extra, max(8, width - len(indent)))
    ]
    for piece in rest:
        out.append(_row(width, (indent, "dim"), (piece, body_style)))
    return quoted + out


def _list_pane(model: ChatModel, height: int) -> list[list[Segment]]:
    rows = [_row(LIST_WIDTH, (" Conversations", "dim"))]
    for conv in model.ordered():
        i = model.number(conv.peer) - 1
        online = {True: "●", False: "○", None: " "}[conv.online]
        check = "!" if conv.key_changed else ("✓" if conv.verified else " ")
        unread = f" {conv.unread}" if conv.unread else ""
        number = f"{i + 1}" if i < 9 else " "
        mute = "~" if conv.muted else ""
        label = f"{number}{online}{check}{mute}{conv.label}"
        room = LIST_WIDTH - text_width(unread)
        style = (
            "selected" if conv.peer == model.current else ("unread" if conv.unread else "normal")
        )
        rows.append(
            _row(
                LIST_WIDTH, (pad(label, room), style), (unread, "unread" if conv.unread else style)
            )
        )
    while len(rows) < height:
        rows.append(_row(LIST_WIDTH))
    return rows[:height]


def visible_message_lines(
    conv: ConversationState, me: str, width: int, height: int, time_format: str
) -> tuple[list[list[Segment]], bool]:
    """The message lines in view for ``conv``'s scroll position, and whether the view is at
    the top of what is loaded (time to fetch older messages)."""
    lines = message_lines(conv, me, width, time_format)
    if conv.jump_to is not None:  # a search hit: its last line a little above the middle
        below = len(lines) - _lines_up_to(conv, conv.jump_to, me, width, time_format)
        conv.scroll, conv.jump_to = max(0, below - height // 3), None
    elif conv.scroll and conv.last_seq > conv.drawn_seq:
        conv.scroll += len(lines) - _lines_up_to(conv, conv.drawn_seq, me, width, time_format)
    conv.drawn_seq = conv.last_seq
    if conv.has_older and conv.messages:
        lines.insert(0, _row(width, ("… PgUp loads older messages", "dim")))
    # While scrolled up the bottom row says so (and how many new messages are below).
    conv.scroll = max(0, min(conv.scroll, len(lines) - height + 1))
    room = height - 1 if conv.scroll else height
    end = len(lines) - conv.scroll
    start = max(0, end - room)
    view = lines[start:end]
    at_top = start == 0
    if conv.scroll:
        new = f" more below ({conv.unread} new) · End " if conv.unread else " more below · End "
        view.append(_row(width, (_centered(new, width, "─"), "marker")))
    while len(view) < height:
        view.insert(0, _row(width))
    return view, at_top


def _lines_up_to(conv: ConversationState, seq: int, me: str, width: int, time_format: str) -> int:
    """How many display lines the messages (and notices) up to ``seq`` make: the view holds
    still by moving up by what arrived after them."""
    earlier = replace(
        conv,
        messages={s: m for s, m in conv.messages.items() if s <= seq},
        notices=[n for n in conv.notices if n[0] <= seq],
    )
    return len(message_lines(earlier, me, width, time_format))


def timer_name(seconds: int) -> str:
    """``1h`` and the like."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def status_text(model: ChatModel, now: float) -> list[Segment]:
    """The status line: connection, current peer and its trust, then a notice or hints."""
    state = model.connection
    if state == "reconnecting" and model.reconnect_at is not None:
        state = f"reconnecting in {max(0, int(model.reconnect_at - now + 0.999))}s"
    segments: list[Segment] = [(f"[{state}] ", "status")]
    conv = model.current_conversation
    if conv is not None:
        if conv.is_group:
            trust = f"{len(conv.members)} members (/members, /verify)"
        elif conv.key_changed:
            trust = "KEY CHANGED: /verify, then /trust"
        elif conv.verified:
            trust = "verified ✓"
        else:
            trust = "not verified (/verify)"
        muted = " · muted" if conv.muted else ""
        segments.append((f"{conv.label} · {trust}{muted} │ ", "status"))
        if conv.timer:
            segments.append((f"⏱ {timer_name(conv.timer)} │ ", "status"))
        if conv.typing_until > now:
            segments.append((f"{conv.typing_who or conv.peer} is typing… │ ", "status"))
    if model.notice:
        segments.append((model.notice, "status-error" if model.notice_is_error else "status"))
    else:
        segments.append(("Tab: next · PgUp/PgDn: scroll · /help", "status"))
    return segments


def _modal(frame: Frame, modal: Modal) -> None:
    lines = [visible(line) for line in modal.lines]
    width = min(
        frame.width - 4,
        max(
            30,
            max((text_width(line) for line in lines), default=0) + 4,
            text_width(modal.title) + 6,
        ),
    )
    body: list[str] = []
    for line in lines:
        body += wrap(line, width - 4) or [""]
    body.append("")
    body.append(modal.prompt)
    height = min(frame.height - 2, len(body) + 2)
    top = max(0, (frame.height - height) // 2)
    left = max(0, (frame.width - width) // 2)
    style = "warning" if modal.warning else "modal"
    title = f" {modal.title} "
    box = ["┌" + _centered(title, width - 2, "─") + "┐"]
    box += ["│ " + pad(line, width - 4) + " │" for line in body[: height - 2]]
    box.append("└" + "─" * (width - 2) + "┘")
    for i, line in enumerate(box):
        y = top + i
        if y >= frame.height:
            break
        row_text = "".join(t for t, _ in frame.rows[y])
        before = clip(row_text, left)
        before = pad(before, left)
        after_start = left + width
        after = _cells_from(row_text, after_start)
        frame.rows[y] = _row(frame.width, (before, "normal"), (line, style), (after, "normal"))
    frame.cursor = None


def _cells_from(text: str, start: int) -> str:
    used = 0
    for i, ch in enumerate(text):
        if used >= start:
            return text[i:]
        used += text_width(ch)
    return ""


def render_main(
    model: ChatModel, width: int, height: int, *, now: float, time_format: str = "%H:%M"
) -> Frame:
    """The main screen."""
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        return _too_small(width, height)
    frame = Frame(width, height)
    full = width >= FULL_WIDTH and height >= FULL_HEIGHT
    title = f" pyChat │ {model.me} @ {model.server}"
    if not full and len(model.conversations) > 1:
        title += f" │ {len(model.conversations)} conversations (Tab)"
    current = model.current_conversation
    if current is not None and current.timer:
        title += f" │ {current.label}: messages disappear after {timer_name(current.timer)}"
    frame.rows.append(_row(width, (title, "title")))
    body_height = height - 3
    pane_left = LIST_WIDTH + 1 if full else 0
    pane_width = width - pane_left
    conv = model.current_conversation
    if conv is None:
        hint = [
            "",
            " No conversation open.",
            "",
            " /new NAME   start a conversation",
            " Tab        go through your conversations",
            " /help      every command and key",
        ]
        pane = [
            _row(pane_width, (hint[i] if i < len(hint) else "", "dim")) for i in range(body_height)
        ]
    else:
        pane, _ = visible_message_lines(conv, model.me, pane_width, body_height, time_format)
    lists = _list_pane(model, body_height) if full else []
    for y in range(body_height):
        row: list[Segment] = []
        if full:
            row += lists[y] + [("│", "sep")]
        row += pane[y]
        frame.rows.append(row)
    frame.rows.append(_row(width, *status_text(model, now), ellipsis=True))
    current = model.current_conversation
    prompt = f"{current.label}> " if current is not None else "> "
    prompt = clip(prompt, max(2, width // 3))
    visible, cursor_x = model.input.view(width - text_width(prompt) - 1)
    frame.rows.append(_row(width, (prompt, "prompt"), (visible, "normal")))
    frame.cursor = (height - 1, text_width(prompt) + cursor_x)
    if model.modals:
        _modal(frame, model.modals[-1])
    elif conv is not None and conv.previews:
        frame.pictures = _placements(frame.rows, conv)
    return frame


def render_login(form: LoginForm, width: int, height: int) -> Frame:
    """The login / signup screen."""
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        return _too_small(width, height)
    frame = Frame(width, height)
    mode = "Sign up" if form.signup else "Log in"
    lines: list[list[Segment]] = [
        _row(width, (" pyChat │ end-to-end encrypted chat", "title")),
        _row(width),
        _row(width, (f"  {mode}", "title-text")),
        _row(width),
    ]
    cursor = None
    for i, (label, line, secret) in enumerate(form.fields()):
        label_text = f"  {label:>9}: "
        room = width - text_width(label_text) - 2
        if secret:  # one mark per character typed, the cursor after the last
            masked = MASK * min(len(line.text), room)
            value, cursor_x = masked, text_width(masked)
        else:
            value, cursor_x = line.view(room)
        style = "selected" if i == form.focus else "normal"
        if i == form.focus:
            cursor = (len(lines), text_width(label_text) + cursor_x)
        shown = value
        lines.append(_row(width, (label_text, "dim"), (shown, style if not secret else "dim")))
    lines.append(_row(width))
    other = "log in instead" if form.signup else "sign up instead"
    lines.append(
        _row(
            width,
            (
                f"  Enter: {mode.lower()} · Tab: next field · F2/Ctrl-N: {other} · Ctrl-C: quit",
                "dim",
            ),
        )
    )
    lines.append(_row(width))
    if form.busy:
        lines.append(_row(width, ("  working…", "status")))
    if form.message:
        for piece in wrap(visible(form.message), width - 4):
            lines.append(_row(width, ("  " + piece, "warning")))
    while len(lines) < height:
        lines.append(_row(width))
    frame.rows = lines[:height]
    frame.cursor = cursor if cursor and cursor[0] < height else None
    if form.modals:
        _modal(frame, form.modals[-1])
    return frame

"""The server's in-memory recent log (what ``whatdoyouknow`` reports): the lines that name a
user, with the text they had when they were logged, and no object kept alive by them."""

from __future__ import annotations

import gc
import weakref

from twisted.logger import Logger, LogPublisher

from pychat.server.recent_log import RecentLog


def _logger(recent: RecentLog, namespace: str = "pychat.test") -> Logger:
    publisher = LogPublisher()
    publisher.addObserver(recent)
    return Logger(namespace=namespace, observer=publisher)


def test_lines_naming_the_user_come_back_formatted_oldest_first() -> None:
    recent = RecentLog()
    log = _logger(recent)
    log.info("{user} logged in from {peer} ({count} times)", user="user-abc", peer="::1", count=3)
    log.info("{user} logged in", user="user-abcdef")
    log.info("{user} left", user="user-abc")
    first = recent.about("user-abc")
    assert [line["text"] for line in first] == [
        "user-abc logged in from ::1 (3 times)",
        "user-abc left",
    ]
    assert recent.about("user-abc") == first  # asked again: the same lines


class _Changing:
    def __init__(self) -> None:
        self.text = "user-abc at first"

    def __str__(self) -> str:
        return self.text


def test_an_object_in_a_line_is_shown_as_it_was_and_not_kept_alive() -> None:
    recent = RecentLog()
    log = _logger(recent)
    thing = _Changing()
    alive = weakref.ref(thing)
    log.info("seen {thing}", thing=thing)
    thing.text = "user-abc later"
    del thing
    gc.collect()
    assert alive() is None
    assert [line["text"] for line in recent.about("user-abc")] == ["seen user-abc at first"]


def test_other_namespaces_are_not_kept_and_old_lines_fall_off() -> None:
    recent = RecentLog(kept=2)
    _logger(recent, "twisted.internet").info("{user} elsewhere", user="user-abc")
    log = _logger(recent)
    for n in range(3):
        log.info("{user} line {n}", user="user-abc", n=n)
    assert [line["text"] for line in recent.about("user-abc")] == [
        "user-abc line 1",
        "user-abc line 2",
    ]

"""How guessable a new password is, by zxcvbn's estimate, and what to say when it is too weak.

The password guards the key backup the server keeps: whoever steals that file can test guesses
offline, one Argon2id derivation each.  zxcvbn scores 0 (found within about 10^3 guesses) to 4
(beyond 10^10); the clients refuse scores below :data:`MIN_SCORE` at signup and ``passwd``
unless told to allow a weak password (``--allow-weak-password``, for tests and scripts).
"""

from __future__ import annotations

#: zxcvbn's score 2 is "somewhat guessable: protection from unthrottled online attacks"
#: (about 10^8 guesses); with Argon2id's cost per guess that is months of one core's work.
MIN_SCORE = 2
#: zxcvbn's cost grows quickly with length; a password this long is strong enough to judge by
#: its first part.
_ESTIMATE_CHARS = 64


class WeakPassword(ValueError):
    """The password is too easy to guess; the message says why and how to pick a better one."""


def check_password(password: str, *, username: str = "") -> None:
    """Refuse a password zxcvbn scores below :data:`MIN_SCORE`.

    :raises WeakPassword: with zxcvbn's warning and suggestions.
    """
    from zxcvbn import zxcvbn  # its word lists take 40 ms to load: not at every start

    inputs = [username] if username else []
    result = zxcvbn(password[:_ESTIMATE_CHARS], user_inputs=inputs)
    if result["score"] >= MIN_SCORE:
        return
    feedback = result.get("feedback") or {}
    warning = str(feedback.get("warning") or "").strip()
    hints = [str(s).strip() for s in feedback.get("suggestions") or [] if str(s).strip()]
    parts = ["this password is too easy to guess"]
    if warning:
        parts.append(warning.rstrip(".").lower())
    message = ": ".join(parts) + "."
    advice = " ".join(hints) or "Use a few uncommon words, or a password manager's passphrase."
    raise WeakPassword(f"{message} {advice}")

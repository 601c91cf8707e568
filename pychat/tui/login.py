"""The login / sign-up screen: its keys, and submitting it (which makes the chat client)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet import defer

from pychat.client.address import AddressError, ServerAddress
from pychat.client.password_strength import WeakPassword, check_password
from pychat.client.session import ChatClient
from pychat.tui.actions import EDITS
from pychat.tui.keys import BINDINGS, Key
from pychat.tui.model import Modal
from pychat.usernames import UsernameError, normalize

if TYPE_CHECKING:
    from pychat.tui.app import TuiApp


#: The password's place in the form's fields (server, username, password, confirm).
PASSWORD_FIELD = 2


def login_key(app: TuiApp, key: Key) -> None:
    """A key on the login screen."""
    form = app.form
    if form.busy:
        if key.name == "ctrl-c":
            app.quit()
        return
    field = form.focused()
    name = key.name
    if name == "ctrl-c":
        app.quit()
    elif name in ("tab", "down"):
        form.move(1)
    elif name in ("btab", "up"):
        form.move(-1)
    elif name in ("f2", "ctrl-n"):
        form.toggle_mode()
    elif name == "enter":
        if form.focus < form.last_required():
            form.move(1)
        else:
            app.guard(lambda: submit_login(app))
    elif name in ("char", "paste"):
        field.insert(key.text.replace("\n", ""))
    else:
        action = BINDINGS.get(name)
        if action in EDITS:
            getattr(field, EDITS[action])()


def _form_problem(app: TuiApp) -> str | None:
    """Why the form cannot be submitted as it is, or None."""
    form = app.form
    username, password = form.username.text.strip(), form.password.text
    if not username or not password:
        return "enter a username and a password"
    if form.signup and password != form.confirm.text:
        return "the passwords do not match"
    if form.signup:
        try:
            normalize(username)
            check_password(password, username=username)
        except (UsernameError, WeakPassword) as exc:
            return str(exc)
    return None


async def submit_login(app: TuiApp) -> None:
    """Log in (or sign up, then log in) with what the form holds."""
    form = app.form
    problem = _form_problem(app)
    if problem is not None:
        form.message = problem
        return
    username, password = form.username.text.strip(), form.password.text
    try:
        address = ServerAddress.parse(form.server.text)
    except AddressError as exc:
        form.message = str(exc)
        return
    form.busy, form.message = True, ""
    app.redraw()
    client = ChatClient(
        address, app.home, ca=app.args.ca, on_new_server=lambda s, f: ask_new_server(app, s, f)
    )
    try:
        if form.signup:
            await client.signup(username, password, invite=form.invite.text.strip() or None)
        await client.login(username, password)
    except Exception:
        await client.close()
        # A failed try must not leave the old password to be typed after (and sent again).
        form.password.take()
        form.confirm.take()
        form.focus = PASSWORD_FIELD
        raise
    finally:
        form.busy = False
    form.password.take()
    form.confirm.take()
    await app.logged_in(client, username)


def ask_new_server(app: TuiApp, server: str, fingerprint: str) -> defer.Deferred[bool]:
    """First contact: show the certificate's fingerprint and ask before anything is sent."""
    lines = [
        f"First contact with {server}. Its certificate fingerprint (SHA-256) is:",
        fingerprint,
        "Compare it with the one the server printed when it started.",
        "Accept and pin it? (y/n)",
    ]
    return app.ask(Modal("New server", lines, warning=False, prompt="(y: accept · n: refuse)"))

"""The login / sign-up screen: its form, its keys, and submitting it (which makes the chat
client and hands it to the app, which then shows the main screen)."""

from __future__ import annotations

from twisted.internet import defer

from pychat.client.address import AddressError, ServerAddress
from pychat.client.password_strength import WeakPassword, check_password
from pychat.tui.actions import EDITS
from pychat.tui.context import ScreenHost
from pychat.tui.keys import BINDINGS, Key
from pychat.tui.model import LoginForm, Modal
from pychat.tui.render import Frame, render_login
from pychat.tui.server_check import ServerCheck
from pychat.wire.usernames import UsernameError, normalize

#: The password's place in the form's fields (server, username, password, confirm).
PASSWORD_FIELD = 2


class LoginScreen:
    """The form a session starts with: server, username, password (and for a sign-up, the
    password again and an invite)."""

    def __init__(self, host: ScreenHost, server: str, username: str) -> None:
        self.host = host
        self.form = LoginForm()
        self.form.server.insert(server)
        self.form.username.insert(username)
        self.form.focus = 1 if not self.form.username.text else 2
        #: The server looked at before the password is typed.
        self.check = ServerCheck(host, self.ask_new_server)

    def started(self) -> None:
        """The form is on screen: with the password next, check the server now."""
        self._check_soon()

    def _check_soon(self) -> None:
        """On reaching the password field, check the server the form names (its certificate
        shown and asked about on first contact), unless that is done or under way."""
        if self.form.focus == PASSWORD_FIELD and not self.form.busy:
            self.check.start(self.form.server.text)

    @property
    def modals(self) -> list[Modal]:
        """The boxes open over this screen, the top one last."""
        return self.form.modals

    def frame(self, width: int, height: int) -> Frame:
        """What the screen shows now."""
        return render_login(self.form, width, height)

    def tell_error(self, text: str) -> None:
        """An error, shown under the form."""
        self.form.message = text

    def key(self, key: Key) -> None:
        """A key on the login screen, no box open."""
        form = self.form
        if form.busy:
            if key.name == "ctrl-c":
                self.host.quit()
            return
        field = form.focused()
        name = key.name
        if name == "ctrl-c":
            self.host.quit()
        elif name in ("tab", "down"):
            form.move(1)
            self._check_soon()
        elif name in ("btab", "up"):
            form.move(-1)
            self._check_soon()
        elif name in ("f2", "ctrl-n"):
            form.toggle_mode()
        elif name == "enter":
            if form.focus < form.last_required():
                form.move(1)
                self._check_soon()
            else:
                self.host.guard(self.submit)
        elif name in ("char", "paste"):
            field.insert(key.text.replace("\n", ""))
        else:
            action = BINDINGS.get(name)
            if action in EDITS:
                getattr(field, EDITS[action])()

    def _problem(self) -> str | None:
        """Why the form cannot be submitted as it is, or None."""
        form = self.form
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

    async def submit(self) -> None:
        """Log in (or sign up, then log in) with what the form holds."""
        form = self.form
        problem = self._problem()
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
        self.host.redraw()
        client = await self.check.client_for(form.server.text, address)
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
        await self.host.logged_in(client, username)

    def ask_new_server(self, server: str, fingerprint: str) -> defer.Deferred[bool]:
        """First contact: show the certificate's fingerprint and ask before anything is sent."""
        lines = [
            f"First contact with {server}. Its certificate fingerprint (SHA-256) is:",
            fingerprint,
            "Compare it with the one the server printed when it started.",
            "Accept and pin it? (y/n)",
        ]
        modal = Modal("New server", lines, warning=False, prompt="(y: accept · n: refuse)")
        return self.host.ask(modal)

"""``python -m pychat`` for the pty tests, with the cheapest password stretching accepted.

The TUI under test runs in its own process, where the tests' in-process shortcut for Argon2id
(conftest's ``remembered_password_stretching``) cannot reach: each signup, login and keystore
opening stretched the password for real, about 0.2 s of CPU each.  New accounts and keystores
made here use :func:`pychat.crypto.kdf.minimum_params` instead; everything read back (a
keystore's or an account's own parameters) is stretched as it says, as the ``cheap_kdf``
fixture does for tests in-process; the defaults keep their own tests.
"""

from pychat.client import auth, keystore
from pychat.crypto.kdf import minimum_params
from pychat.entry import main

auth.default_params = keystore.default_params = minimum_params  # type: ignore[assignment]
main()

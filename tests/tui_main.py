"""``python -m pychat`` for the pty tests, with the cheapest password stretching accepted and
identity keys from the test pool.

The TUI under test runs in its own process, where the tests' in-process shortcuts
(conftest's ``remembered_password_stretching`` and ``pooled_client_rsa_keys``) cannot
reach: each signup, login and keystore opening stretched the password for real, about 0.2 s
of CPU each, and each signup generated an RSA-3072 key, 0.2 to 0.9 s.  New accounts and
keystores made here use :func:`pychat.crypto.kdf.minimum_params` instead; everything read
back (a keystore's or an account's own parameters) is stretched as it says, as the
``cheap_kdf`` fixture does for tests in-process; the defaults keep their own tests.  The RSA
half of a new identity is pool key ``PYCHAT_TEST_KEY_SLOT`` (then the next one, for a
rotation), which tests/tui_terminal.py gives each TUI process it starts in turn.
"""

import os

from cryptography.hazmat.primitives.asymmetric import rsa

from pychat.client import auth, keystore
from pychat.crypto import identity
from pychat.crypto.kdf import minimum_params
from pychat.entry import main
from tests.key_pool import pooled

setattr(auth, "default_params", minimum_params)  # noqa: B010 - the cheapest KDF here
setattr(keystore, "default_params", minimum_params)  # noqa: B010
slot = int(os.environ["PYCHAT_TEST_KEY_SLOT"])
identity.rsa.generate_private_key = pooled(iter((slot, slot + 1)), rsa.generate_private_key)  # type: ignore[attr-defined]
main()

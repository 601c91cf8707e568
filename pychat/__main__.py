"""``python -m pychat``: the same as the ``pychat`` command."""

from pychat.client.cli import main

main()

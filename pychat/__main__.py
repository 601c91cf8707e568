"""``python -m pychat``: the same as the ``pychat`` command."""

from pychat.entry import main

main()

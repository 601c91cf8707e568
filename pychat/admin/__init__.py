"""``pychat-admin``: what an operator does to a pyChat data dir, without editing files."""

"""Text that came from someone else, made safe: to show on a terminal (``safe``) and to write
into a log line (``log``)."""

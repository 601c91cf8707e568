"""The full-screen curses client."""

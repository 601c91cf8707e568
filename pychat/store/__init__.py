"""Server storage: flat JSON files in the data dir, encrypted at rest.

:mod:`pychat.store.interfaces` is the small interface the protocol code uses; the modules here
are its one backend.
"""

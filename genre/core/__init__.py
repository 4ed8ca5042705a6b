"""What every other part stands on: user-input errors and the one-line command-line edge, the lock and
atomic writes of shared files, ``key=value`` overrides, objective directions, worker processes that die
with their parent, passwords in URLs, and every private API of another library (``upstream``)."""

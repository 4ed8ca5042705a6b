"""optuna-dashboard on a shared machine: a read-only snapshot of the study, served on a private Unix socket.

``optuna-dashboard <storage URL>`` has no authentication. On ``127.0.0.1:8080`` every local user can
read the study and, through its HTTP API, delete it, rename it or tell its trials -- with the rights of
whoever started the dashboard, so even a user who cannot write the database file. This serves it instead:

- from a snapshot: the studies are copied (:func:`optuna.copy_study`) into a SQLite file in a fresh
  private folder (mode 0700), opened read-only (SQLite's ``mode=ro``); nothing sent to the dashboard
  reaches the real study, and the snapshot itself refuses every write;
- on a Unix socket in that folder: only its user (and root) can connect. A browser elsewhere reaches it
  over SSH, which authenticates: ``ssh -L 8080:<socket> <this host>``, then ``http://127.0.0.1:8080/``.

    python -m genre.sweeps.optuna.dashboard sqlite:///optuna/genre-demo.db [--study NAME] [--dir DIR]

The snapshot is taken when it starts: start it again to see newer trials. The password of a PostgreSQL
study comes from where the sweeper's does (``~/.pgpass``, ``PGPASSFILE``, ``GENRE_STUDY_PASSWORD``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socketserver
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler

from genre.core.errors import ConfigError

SNAPSHOT_NAME = "snapshot.db"
SOCKET_NAME = "dashboard.sock"
# The longest Unix socket path Linux accepts (sun_path is 108 bytes, with the final NUL).
MAX_SOCKET_PATH = 107


def take_snapshot(storage: str, folder: Path, study_names: Sequence[str] = ()) -> Path:
    """Copy the studies ``study_names`` (all when empty) of ``storage`` into ``folder/snapshot.db``; return it.

    Raises :class:`ConfigError` naming ``storage`` when it holds none of them.
    """
    import optuna

    from genre.sweeps.optuna.storage_url import masked, with_password_from_environment
    from genre.sweeps.optuna.study_storage import job_storage

    source = job_storage(with_password_from_environment(storage))
    available = optuna.get_all_study_names(source)
    names = list(study_names) or available
    missing = [name for name in names if name not in available]
    if missing or not names:
        raise ConfigError(
            "storage",
            f"{masked(storage)} holds no study {', '.join(missing)}".rstrip(),
            f"Its studies: {', '.join(available) or 'none'}",
        )
    snapshot = folder / SNAPSHOT_NAME
    for name in names:
        optuna.copy_study(from_study_name=name, from_storage=source, to_storage=f"sqlite:///{snapshot}")
    return snapshot


def read_only_app(snapshot: Path) -> Callable[..., Any]:
    """optuna-dashboard's WSGI application on ``snapshot``, opened read-only by SQLite itself."""
    from optuna.storages import RDBStorage
    from optuna_dashboard import wsgi

    url = f"sqlite:///file:{snapshot}?mode=ro&uri=true"
    return wsgi(RDBStorage(url, skip_table_creation=True, skip_compatibility_check=True))


class _Handler(WSGIRequestHandler):
    """wsgiref's request handler, on a Unix socket (which has no client address)."""

    def setup(self) -> None:
        self.client_address = ("local", 0)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the dashboard polls every few seconds: no line per request


class UnixWSGIServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """A WSGI server on a Unix socket: reachable only by who may enter the socket's folder."""

    daemon_threads = True

    def __init__(self, path: Path, app: Callable[..., Any]) -> None:
        if len(os.fsencode(path)) > MAX_SOCKET_PATH:
            raise ConfigError("--dir", f"the socket path {path} is over {MAX_SOCKET_PATH} bytes", "Use a shorter one")
        old = os.umask(0o177)  # the socket is created 0600: only its user may connect
        try:
            super().__init__(str(path), _Handler)
        finally:
            os.umask(old)
        self.app = app
        self.base_environ = {
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "8080",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "REMOTE_HOST": "",
            "CONTENT_LENGTH": "",
            "SCRIPT_NAME": "",
        }

    def get_app(self) -> Callable[..., Any]:
        """The WSGI application (what wsgiref's handler asks its server for)."""
        return self.app


def private_folder(parent: Path | None) -> Path:
    """A fresh folder only its user may enter (mode 0700), under ``parent`` (default: the temporary folder)."""
    if parent is not None and not parent.is_dir():
        raise ConfigError("--dir", f"{parent} is not a folder", "Give an existing folder of your own")
    return Path(tempfile.mkdtemp(prefix="genre-dashboard-", dir=parent))


def main(argv: Sequence[str] | None = None) -> int:
    """Snapshot the study, serve it on a private socket until Ctrl-C (or SIGTERM), then delete the snapshot."""
    parser = argparse.ArgumentParser(
        prog="python -m genre.sweeps.optuna.dashboard", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("storage", help="the study's storage URL, e.g. sqlite:///optuna/genre-demo.db")
    parser.add_argument("--study", action="append", default=[], help="a study to show (repeatable; default: all)")
    parser.add_argument("--dir", type=Path, default=None, help="where the private folder is made (default: $TMPDIR)")
    args = parser.parse_args(argv)
    folder = private_folder(args.dir)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` too ends it through the clean-up below
    try:
        app = read_only_app(take_snapshot(args.storage, folder, args.study))
        socket_path = folder / SOCKET_NAME
        with UnixWSGIServer(socket_path, app) as server:
            print(f"Serving a read-only snapshot of the study on {socket_path}", flush=True)
            print(
                f"From your computer: ssh -L 8080:{socket_path} <this host>, then open http://127.0.0.1:8080/",
                flush=True,
            )
            with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C or SIGTERM: the normal end
                server.serve_forever()
        return 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    from genre.core.cli_errors import one_line_user_errors

    sys.exit(one_line_user_errors(main)())

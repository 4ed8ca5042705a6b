"""Study URLs (``hydra.sweeper.storage``) without their passwords in the open.

A URL such as ``postgresql://user:secret@host/db`` would be shown in the sweep log and copied into
every job's world-readable ``.hydra/`` files. The better way is a URL without a password, the
password coming from where libpq (PostgreSQL's client) looks itself: ``~/.pgpass`` or the file
``PGPASSFILE`` names (mode 0600), or ``PGPASSWORD``; for other databases, ``GENRE_STUDY_PASSWORD``
(see :func:`with_password_from_environment`). A URL that does hold a password still works, and is
masked (``user:***@host``) wherever genre shows it: :func:`masked` for one URL,
:func:`~genre.core.url_passwords.mask_text` for any text and :func:`mask_files` for files Hydra already
wrote.

Nothing genre writes holds the password: the Optuna sweeper takes it out of the URL before anything is
written and hands it to its jobs in their environment (:func:`move_password_to_environment`), so the
jobs' configs, ``.hydra/`` files, checkpoints and TensorBoard text carry the URL without it; and what
a run stores of its config passes through :func:`genre.core.url_passwords.without_passwords` all the same.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from genre.core.errors import ConfigError
from genre.core.filesystem import atomic_write_text
from genre.core.url_passwords import mask_text

PASSWORD_VARIABLE = "GENRE_STUDY_PASSWORD"


def move_password_to_environment(url: str) -> tuple[str, bool]:
    """``url`` without its password, and whether it had one; the password goes to ``GENRE_STUDY_PASSWORD``
    in this process's environment, which every job inherits (a joblib worker, a submitit process, a
    SLURM job: sbatch exports the environment) and :func:`with_password_from_environment` reads back.

    The environment of a process is readable by its user (and root) only, unlike its command line.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return url, False
    if not parsed.password:
        return url, False
    os.environ[PASSWORD_VARIABLE] = str(parsed.password)
    return parsed._replace(password=None).render_as_string(hide_password=False), True  # set() skips None


def masked(url: object) -> str:
    """The URL as it may be shown: its password (if any) replaced by ``***``."""
    return mask_text(str(url))


def with_password_from_environment(url: str) -> str:
    """``url`` with the password of ``GENRE_STUDY_PASSWORD`` filled in, when it has none and that is set.

    PostgreSQL URLs need no help: libpq reads ``~/.pgpass``, ``PGPASSFILE`` and ``PGPASSWORD`` itself.
    """
    password = os.environ.get(PASSWORD_VARIABLE)
    if not password or "://" not in url:
        return url
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.password is not None or parsed.username is None:
        return url
    return parsed.set(password=password).render_as_string(hide_password=False)


def mask_files(paths: Iterable[Path]) -> None:
    """Rewrite each existing file among ``paths`` with its URL passwords masked (files without any are left alone)."""
    for path in paths:
        try:
            text = path.read_text()
        except OSError:
            continue
        clean = mask_text(text)
        if clean != text:
            atomic_write_text(path, clean)


def check_reachable(url: str, key: str = "hydra.sweeper.storage") -> None:
    """Raise :class:`ConfigError` (one line, password masked) when the study database cannot be reached."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    if not url.startswith(("postgresql", "mysql")):
        return
    try:
        engine = create_engine(with_password_from_environment(url), connect_args=_timeout(url))
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except SQLAlchemyError as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        raise ConfigError(
            key,
            f"cannot reach the study database {masked(url)} ({mask_text(reason)[:200]})",
            "Check the host, port and user, that the server runs, and the password in ~/.pgpass "
            "(or PGPASSFILE / PGPASSWORD)",
        ) from None


def _timeout(url: str) -> dict[str, int]:
    # Fail in seconds, not after the operating system's TCP timeout (minutes) for a host that drops packets.
    return {"connect_timeout": 10} if url.startswith("postgresql") else {}

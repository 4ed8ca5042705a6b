"""The command line's one error path: a user error becomes one line on stderr and exit status 2.

Every command (``run.py``, ``genre.cli.predict``, ``genre.cli.prepare``, ``genre.cli.report``) wraps its
``main`` in :func:`one_line_user_errors`; sweep jobs record :func:`user_error_line` in ``status.json``.
User errors are:

* our :class:`~genre.core.errors.UserInputError` / :class:`~genre.core.errors.ConfigError` (they name the key);
* a full disk (:class:`~genre.core.filesystem.DiskFullError`: it names the file, and the fix is the user's), and a
  planted link at a lock or temporary file's name (:class:`~genre.core.filesystem.UnsafeFileError`, likewise);
* Hydra's ``InstantiationException`` whose cause is a library ``ValueError``/``TypeError``: the node's
  key (Hydra appends ``full_key: <key>`` to the message, the cause is chained) joined with the
  parameter the library error names, e.g. ``model`` + ``dropout: ...`` -> ``model.dropout: ...``;
* Hydra's composition errors (an unknown group option, an override that does not parse or names no key)
  and OmegaConf's errors for a value left unset or an interpolation that does not resolve.

Anything else is a bug, and keeps its traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from hydra.errors import (
    ConfigCompositionException,
    InstantiationException,
    MissingConfigException,
    OverrideParseException,
)
from omegaconf.errors import (
    GrammarParseError,
    InterpolationResolutionError,
    MissingMandatoryValue,
    OmegaConfBaseException,
)

from genre.core.errors import ConfigError, UserInputError, one_line
from genre.core.filesystem import DiskFullError, UnsafeFileError
from genre.core.upstream import instantiation_error_key

P = ParamSpec("P")
R = TypeVar("R")


def user_error_line(error: BaseException) -> str | None:
    """The one line (without ``error: ``) that tells the user what to fix, or None for a bug."""
    if isinstance(error, (UserInputError, DiskFullError, UnsafeFileError)):
        return one_line(str(error))
    if isinstance(error, InstantiationException):
        return _instantiation_line(error)
    if isinstance(error, MissingConfigException):
        group = (error.missing_cfg_file or "").rpartition("/")[0]
        problem = one_line(str(error).split("\n\n")[0])
        if error.options:
            return f"{group or 'config'}: {problem}. Use one of {', '.join(error.options)}"
        return f"{group or 'config'}: {problem}"
    if isinstance(error, OverrideParseException):
        return f"{error.override}: {_sentences(error.message)}"
    if isinstance(error, ConfigCompositionException):
        # e.g. "Could not override 'model.nokey'.\nTo append to your config use +model.nokey=1", caused by
        # OmegaConf's "Key 'nokey' is not in struct" (which knows the key).
        cause = error.__cause__
        first, _, rest = str(error).partition("\n")
        if isinstance(cause, OmegaConfBaseException):
            first = f"{first.rstrip('.')} ({_omegaconf_problem(cause)})"
            key = getattr(cause, "full_key", None)
            if key:
                first = f"{key}: {first}"
        return _sentences(f"{first}\n{rest}")
    if isinstance(error, (MissingMandatoryValue, InterpolationResolutionError, GrammarParseError)):
        key = getattr(error, "full_key", None)
        return f"{key}: {_omegaconf_problem(error)}" if key else _omegaconf_problem(error)
    return None


def _instantiation_line(error: InstantiationException) -> str | None:
    cause = error.__cause__
    if isinstance(cause, UserInputError):
        return one_line(str(cause))
    if not isinstance(cause, (ValueError, TypeError)):
        return None  # e.g. a _target_ that does not import: not something a value override fixes
    return str(ConfigError.from_library(instantiation_error_key(error) or "", cause))


def _sentences(text: str) -> str:
    """Hydra's message lines as sentences of one line."""
    lines = [line.strip().rstrip(".") for line in text.splitlines() if line.strip()]
    return ". ".join(lines)


def _omegaconf_problem(error: OmegaConfBaseException) -> str:
    """OmegaConf's own message, without the ``full_key:``/``object_type=`` lines it appends."""
    message = getattr(error, "msg", None) or str(error)
    return one_line(str(message).split("\n")[0])


def one_line_user_errors(main: Callable[P, R]) -> Callable[P, R | int]:
    """Wrap a command's ``main``: a user error prints ``error: <line>`` on stderr and returns 2 (its exit
    status); any other exception propagates with its traceback."""

    @functools.wraps(main)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | int:
        try:
            return main(*args, **kwargs)
        except Exception as exc:
            line = user_error_line(exc)
            if line is None:
                raise
            return report_user_error(line)

    return wrapper


def report_user_error(line: str) -> int:
    """Print ``error: <line>`` on stderr; return the exit status of a user error, 2."""
    print(f"error: {line}", file=sys.stderr)
    return 2

"""Errors that mean "the user's input is wrong", reported as one line instead of a traceback.

Library code (models, features, augmentations, splits, sources, schedules) does not know the config key
it was configured under, so it raises ``ValueError`` (or ``TypeError``) naming its own parameter first:
``"dropout: 2.0 is outside [0, 1). Use e.g. 0.3"``. Whoever built the object from the config knows the
key and adds it: Hydra's ``instantiate`` records the node's key (``genre.core.cli_errors`` reads it there),
and run-level code wraps other calls in :func:`config_keys`. Either way the user reads
``model.dropout: 2.0 is outside [0, 1). Use e.g. 0.3``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

# "<parameter>: <problem>. <fix>": a lowercase (dotted) identifier, so that a sentence such as
# "Invalid: ..." from a third-party library is not mistaken for one.
_PARAMETER = re.compile(r"(?P<name>[a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*): (?P<rest>.+)", re.DOTALL)


class UserInputError(Exception):
    """Bad input the user can fix. The message is one line naming the key or file and the fix."""


def exit_with_one_line(error: UserInputError) -> None:
    """End the program with ``error: <message>`` on stderr and exit status 2.

    For errors raised where Hydra, not ``run.py``, would catch them (callbacks, sweepers) and print
    a traceback instead.
    """
    import logging
    import sys

    logging.getLogger("genre").error("%s", error)
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)


class ConfigError(UserInputError):
    """A config value is invalid; the message starts with the dotted config key."""

    def __init__(self, key: str, problem: str, fix: str | None = None) -> None:
        self.key = key
        super().__init__(f"{key}: {problem}. {fix}" if fix else f"{key}: {problem}")

    @classmethod
    def from_library(cls, node_key: str, error: BaseException, keys: Mapping[str, str] | None = None) -> ConfigError:
        """The error ``error`` of the object configured at ``node_key``, named by its full config key.

        ``keys`` maps a parameter to the config key it was interpolated from (the folder source's
        ``root: ${dataset.root}``), so the message names the key the user sets.
        """
        parameter, rest = split_parameter(error)
        if parameter is None:
            return cls(node_key or "config", rest)
        key = (keys or {}).get(parameter) or ".".join(part for part in (node_key, parameter) if part)
        return cls(key, rest)


class DamagedFileError(UserInputError):
    """A file a tool reads back from a run dir (``metrics.json``, ``cv.json``, ``status.json``, ``.hydra/*.yaml``)
    that is not what genre writes there: unreadable, or data of the wrong shape. The message names the file."""


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; continuing would only waste the run."""


class TrainingInterrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after saving ``last.pt``; ``python run.py resume=<run dir>`` continues it."""

    def __init__(self, signum: int, message: str) -> None:
        self.signum = signum
        super().__init__(message)


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(text.split())


def split_parameter(error: BaseException) -> tuple[str | None, str]:
    """The parameter a library error names first, and the rest of its message, on one line.

    ``ValueError("dropout: 2.0 is outside [0, 1). Use e.g. 0.3")`` gives ``("dropout", "2.0 is outside
    [0, 1). Use e.g. 0.3")``; a message that names no parameter gives ``(None, message)``.
    """
    message = one_line(str(error))
    match = _PARAMETER.fullmatch(message)
    if match is None:
        return None, message or type(error).__name__
    return match["name"], match["rest"]


@contextmanager
def config_keys(node_key: str, keys: Mapping[str, str] | None = None) -> Iterator[None]:
    """Re-raise a library ``ValueError`` (or a ``TypeError`` naming a parameter) as a :class:`ConfigError`.

    For calls made outside ``instantiate`` on an object configured at ``node_key``:
    ``with config_keys("trainer.early_stopping"): EarlyStopping(patience=0)`` raises
    ``trainer.early_stopping.patience: 0 is not a positive epoch count. ...``.
    """
    try:
        yield
    except (ValueError, TypeError) as exc:
        if isinstance(exc, TypeError) and split_parameter(exc)[0] is None:
            raise  # a TypeError that names no parameter is a bug, not bad input
        raise ConfigError.from_library(node_key, exc, keys) from exc

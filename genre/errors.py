"""Errors that mean "the user's input is wrong", reported as one line instead of a traceback."""

from __future__ import annotations


class UserInputError(Exception):
    """Bad input the user can fix. The message is one line naming the key or file and the fix."""


class ConfigError(UserInputError):
    """A config value is invalid; the message starts with the dotted config key."""

    def __init__(self, key: str, problem: str, fix: str) -> None:
        self.key = key
        super().__init__(f"{key}: {problem}. {fix}")


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; continuing would only waste the run."""


class TrainingInterrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after saving ``last.pt``; ``python run.py resume=<run dir>`` continues it."""

    def __init__(self, signum: int, message: str) -> None:
        self.signum = signum
        super().__init__(message)

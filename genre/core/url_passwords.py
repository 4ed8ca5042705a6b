"""Passwords in URLs (``scheme://user:password@host``) found in any text or stored config, and masked or removed.

A foundation every part may use: the sweeps mask them in logs and Hydra's files
(:mod:`genre.sweeps.optuna.storage_url`), a run removes them from the config its checkpoints and TensorBoard
files keep, so that no URL password travels with a file someone copies or sends.
"""

from __future__ import annotations

import re
from typing import Any

# scheme://user:password@ -- the password is everything up to the last @ before the host. Hydra writes
# overrides with escaped colons (postgresql\://user\:password@host), which match too.
_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*\\?://[^/\s:@'\"\\]*\\?:)(?P<password>[^\s'\"/]*)(?=@)")
MASK = "***"


def mask_text(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` URL in it replaced by ``***``."""
    return _PASSWORD.sub(lambda match: match.group("head") + MASK, text)


def strip_text(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` URL in it removed (``user@host``)."""
    return _PASSWORD.sub(lambda match: match.group("head").removesuffix(":").removesuffix("\\"), text)


def without_passwords(value: Any) -> Any:
    """``value`` (a config as plain containers) with every URL password in its strings removed, keys included.

    What a run stores of its config (checkpoints, TensorBoard) goes through this: a URL keeps its
    user and host, so a resumed run still reaches its study with the password from the environment.
    """
    if isinstance(value, str):
        return strip_text(value)
    if isinstance(value, dict):
        return {without_passwords(key): without_passwords(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(without_passwords(item) for item in value)
    return value

"""Command-line overrides: reading one (``key=value``), and the Hydra settings that follow from how
``run.py`` was launched, added to its command line.

* ``resume=<run dir>``: Hydra runs in that same directory (its log appends to ``run.log``) and does
  not rewrite ``.hydra/``, which keeps the original run's composed config and overrides.
* a ``torchrun`` process other than rank 0: no output directory or log file of its own, so a
  multi-process run has exactly one (rank 0's, which it shares with the others).

Kept free of heavy imports: ``run.py --help`` stays fast.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_/\-+.~]+")


def parse_override(override: str) -> tuple[str, str]:
    """``(key, value)`` of a Hydra override such as ``model=cnn``, ``+trainer.x=1`` or ``~augment``."""
    key, _, value = override.lstrip("+~").partition("=")
    return key, value


def _quote(value: str) -> str:
    """A Hydra override value for ``value`` (quoted when it holds characters the grammar reserves).

    A value the user already quoted for Hydra (``resume='my runs/a'``) is passed on as it is:
    quoting it again would make the quotes part of the path.
    """
    if _PLAIN_VALUE.fullmatch(value) or _is_quoted(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _is_quoted(value: str) -> bool:
    """Whether ``value`` is one Hydra-quoted string ('...' or "..."), inner quotes escaped."""
    if len(value) < 2 or value[0] not in "'\"" or value[-1] != value[0]:
        return False
    inner = value[1:-1].replace("\\\\", "")
    return not any(char == value[0] and (i == 0 or inner[i - 1] != "\\") for i, char in enumerate(inner))


def hydra_overrides(args: Sequence[str]) -> list[str]:
    """Overrides to append to ``args`` (the command line after ``run.py``)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and os.environ.get("RANK", "0") != "0":
        return ["hydra.run.dir=.", "hydra.output_subdir=null", "hydra/job_logging=disabled"]
    for arg in args:
        if arg.startswith("resume=") and arg != "resume=null":
            return [f"hydra.run.dir={_quote(arg.partition('=')[2])}", "hydra.output_subdir=null"]
    return []

"""The checkout under test: its root (``run.py``, ``README.md``, ``.ci/`` are not in the package)."""

from __future__ import annotations

import os
from pathlib import Path

# tests/helpers/checkout.py -> the checkout's root.
REPO = Path(__file__).resolve().parents[2]
RUN_PY = REPO / "run.py"


def python_env(**extra: str) -> dict[str, str]:
    """The environment for a ``python -c`` child that must import this checkout's ``genre``.

    ``pip install -e .`` makes ``genre`` importable everywhere, but several checkouts may share one
    environment: putting this checkout first on ``PYTHONPATH`` makes the child run the code under test.
    """
    paths = [str(REPO), *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), **extra}

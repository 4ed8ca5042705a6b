"""Shared fixtures: one cache dir per session and tiny datasets in their real layouts.

Plain shared values and functions (the repo root, tiny run settings, ``run_cli``) are in ``tests/helpers/``.

Under pytest-xdist (``make test`` runs ``-n 2``) "per session" means per test run, not per worker:
each worker's temporary root sits in one folder of the run (``getbasetemp().parent``), and what the
session builds is built there once, by whichever worker comes first, the others waiting on its lock.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from filelock import FileLock

Built = TypeVar("Built")


def _run_root(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """The temporary folder the xdist workers of this run share; None when there are no workers."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return None
    return tmp_path_factory.getbasetemp().parent


def _built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Built]) -> Built:
    """``build(folder)``'s result, built once per test run even with xdist workers (the others load it)."""
    root = _run_root(tmp_path_factory)
    if root is None:
        return build(tmp_path_factory.mktemp(name))
    result = root / f"{name}.pickle"  # written last: a worker killed mid-build leaves none
    with FileLock(str(root / f"{name}.lock")):
        if not result.exists():
            built = build(root / name)
            result.write_bytes(pickle.dumps(built))
        return pickle.loads(result.read_bytes())


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache dir for the whole test run, so the tiny demo corpus is generated once.

    Shared by xdist workers as it is by tests: genre's own build locks make concurrent users of one
    cache dir wait for the first builder and load its result (tests/data/test_cache.py checks that).
    """
    root = _run_root(tmp_path_factory)
    if root is None:
        return tmp_path_factory.mktemp("genre-cache")
    (root / "genre-cache").mkdir(exist_ok=True)
    return root / "genre-cache"


@pytest.fixture(scope="session")
def gtzan_trees(tmp_path_factory: pytest.TempPathFactory):
    """Both GTZAN copies (WAV and AU) in their real layouts, built once per test run; do not modify."""
    from helpers.dataset_trees import make_gtzan_trees

    return _built_once(tmp_path_factory, "gtzan", make_gtzan_trees)


@pytest.fixture(scope="session")
def fma_tree(tmp_path_factory: pytest.TempPathFactory):
    """An FMA metadata folder and audio folder in their real layouts, built once per test run; do not modify."""
    from helpers.dataset_trees import make_fma_tree

    return _built_once(tmp_path_factory, "fma", make_fma_tree)

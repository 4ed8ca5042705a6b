"""Shared fixtures: one cache dir per session and tiny datasets in their real layouts.

Plain shared values and functions (the repo root, tiny run settings, ``run_cli``) are in ``tests/helpers/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache dir for the whole session, so the tiny demo corpus is generated once."""
    return tmp_path_factory.mktemp("genre-cache")


@pytest.fixture(scope="session")
def gtzan_trees(tmp_path_factory: pytest.TempPathFactory):
    """Both GTZAN copies (WAV and AU) in their real layouts, built once per session; do not modify."""
    from helpers.dataset_trees import make_gtzan_trees

    return make_gtzan_trees(tmp_path_factory.mktemp("gtzan"))


@pytest.fixture(scope="session")
def fma_tree(tmp_path_factory: pytest.TempPathFactory):
    """An FMA metadata folder and audio folder in their real layouts, built once per session; do not modify."""
    from helpers.dataset_trees import make_fma_tree

    return make_fma_tree(tmp_path_factory.mktemp("fma"))

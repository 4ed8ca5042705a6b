"""Shared fixtures: a tiny demo corpus configuration and a helper to run ``run.py`` for real."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# A demo corpus small enough for tests: 6 genres x 4 clips of 4 s ...
TINY_DEMO = [
    "dataset.source.clips_per_genre=4",
    "dataset.source.clip_seconds=4.0",
    "dataset.clip_seconds=4.0",
]
# ... and a small model trained for 1 epoch on 2-s crops.
TINY_TRAINING = [
    "trainer.segment_seconds=2.0",
    "trainer.epochs=1",
    "trainer.batch_size=8",
    "trainer.progress=false",
    "model.channels=[8,16]",
]
TINY_RUN = TINY_DEMO + TINY_TRAINING


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache dir for the whole session, so the tiny demo corpus is generated once."""
    return tmp_path_factory.mktemp("genre-cache")


def run_cli(args: Sequence[str], cwd: Path, cache: Path, timeout: float = 600,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python run.py ARGS`` in ``cwd`` (outputs land there) with ``GENRE_CACHE=cache``."""
    env = {**os.environ, "GENRE_CACHE": str(cache), "HYDRA_FULL_ERROR": "0"}
    result = subprocess.run([sys.executable, str(REPO / "run.py"), *args], cwd=cwd, env=env, text=True,
                            capture_output=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"run.py {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def compose_run(overrides: Sequence[str], run_dir: Path, cache: Path):
    """Compose the root config as ``run.py`` would and make it current, for in-process runs."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "genre" / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True,
                      overrides=[*overrides, f"hydra.runtime.output_dir={run_dir}", f"paths.cache_dir={cache}"])
    HydraConfig.instance().set_config(cfg)
    return cfg


@pytest.fixture(scope="session")
def gtzan_trees(tmp_path_factory: pytest.TempPathFactory):
    """Both GTZAN copies (WAV and AU) in their real layouts, built once per session; do not modify."""
    from dataset_trees import make_gtzan_trees

    return make_gtzan_trees(tmp_path_factory.mktemp("gtzan"))


@pytest.fixture(scope="session")
def fma_tree(tmp_path_factory: pytest.TempPathFactory):
    """An FMA metadata folder and audio folder in their real layouts, built once per session; do not modify."""
    from dataset_trees import make_fma_tree

    return make_fma_tree(tmp_path_factory.mktemp("fma"))

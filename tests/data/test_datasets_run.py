"""Datasets through the command lines: every split option composes with every dataset,
``python -m genre.cli.prepare`` builds the cache a run then reuses, the run log and TensorBoard
record the cache and the skipped files, and bad dataset input is a one-line error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.utils import instantiate
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from genre import CONFIG_DIR
from helpers import REPO, TINY_TRAINING, compose_run, run_cli
from helpers.dataset_trees import gtzan_names

GTZAN_TINY = ["dataset.sample_rate=8000", "dataset.clip_seconds=3", "dataset.min_seconds=1"]
DATASETS = sorted(p.stem for p in (CONFIG_DIR / "dataset").glob("*.yaml"))
SPLITS = sorted(p.stem for p in (CONFIG_DIR / "dataset" / "split").glob("*.yaml"))


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_split_option_composes_with_every_dataset(dataset: str, tmp_path: Path) -> None:
    assert {"stratified", "fault_filtered", "official"} <= set(SPLITS)
    for split in SPLITS:
        cfg = compose_run([f"dataset={dataset}", f"dataset/split={split}"], tmp_path, tmp_path / "cache")
        assert cfg.hydra.runtime.choices["dataset/split"] == split
        assert hasattr(instantiate(cfg.dataset.split), "assign")


def _prepare_cli(args: list[str], cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GENRE_CACHE": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "genre.cli.prepare", *args],
        cwd=REPO,
        env=env,
        text=True,
        capture_output=True,
        timeout=600,
    )


def _text(run_dir: Path, tag: str) -> str:
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    return events.Tensors(f"{tag}/text_summary")[0].tensor_proto.string_val[0].decode()


@pytest.mark.slow
def test_prepare_builds_the_cache_the_run_reuses_and_logs_record_it(gtzan_trees, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    dataset = ["dataset=gtzan", f"dataset.root={gtzan_trees.wav}", *GTZAN_TINY]
    built = _prepare_cli([*dataset, "--quiet"], cache)
    assert built.returncode == 0, built.stderr
    n_files = sum(len(names) for names in gtzan_names().values())
    assert f"built by this run: {n_files} files decoded" in built.stdout
    assert "jazz.00054.wav: undecodable" in built.stdout

    run_cli([*dataset, *TINY_TRAINING], tmp_path, cache)
    run_dir = next(p for p in (tmp_path / "outputs").glob("*/*") if p.is_dir())
    cache_dir = next(p for p in (cache / "audio").iterdir() if not p.name.startswith(".") and p.suffix != ".lock")
    for record in ((run_dir / "run.log").read_text(), _text(run_dir, "data")):
        assert f"audio cache: {cache_dir} (reused: nothing decoded)" in record
        assert "skipped files: 1" in record
        assert f"{gtzan_trees.wav.resolve()}/jazz/jazz.00054.wav: undecodable (no decoder reads it" in record
        assert "in no split: 8 files" in record
    assert json.loads((run_dir / "metrics.json").read_text())["skipped"] == 1


@pytest.mark.slow
def test_prepare_cli_reports_bad_input_in_one_line(tmp_path: Path) -> None:
    result = _prepare_cli(
        ["dataset=fma", f"dataset.metadata_root={tmp_path}", f"dataset.audio_root={tmp_path}"], tmp_path / "cache"
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: dataset.metadata_root: '{tmp_path}' holds no tracks.csv. "
        "Point it at the fma_metadata/ folder unpacked from fma_metadata.zip"
    )


@pytest.mark.slow
def test_run_reports_a_missing_tracks_csv_in_one_line(tmp_path: Path) -> None:
    # One run.py case (each costs a process start); the other dataset errors are tested in-process.
    result = run_cli(
        ["dataset=fma", f"dataset.metadata_root={tmp_path}", f"dataset.audio_root={tmp_path}", *TINY_TRAINING],
        tmp_path,
        tmp_path / "cache",
        check=False,
    )
    assert result.returncode == 2
    assert (
        f"error: dataset.metadata_root: '{tmp_path}' holds no tracks.csv. Point it at the fma_metadata/ "
        "folder unpacked from fma_metadata.zip"
    ) in result.stderr
    assert "Traceback" not in result.stderr + result.stdout

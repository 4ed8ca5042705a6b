"""provenance.json: the split that actually divided the clips (every parameter, the fold), the audio cache and
clip counts, the code version (git commit and dirty flag only inside genre's own checkout) and library versions,
the command line; a resumed run keeps the launches before it. No training here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import torch

from genre.core.versions import git_state, library_versions
from genre.data.prepare import prepare_data
from genre.experiment.provenance import split_used, write_provenance
from genre.run_files import PROVENANCE_FILE, Provenance
from helpers import TINY_DEMO, compose_run


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_a_run_records_the_kfold_split_its_fold_the_cache_and_clip_counts(tmp_path: Path, cache_dir: Path) -> None:
    overrides = [*TINY_DEMO, "dataset/split=kfold", "dataset.split.folds=3", "dataset.split.fold=2"]
    cfg = compose_run(overrides, tmp_path / "run", cache_dir)
    prepared = prepare_data(cfg.dataset, cfg.paths.cache_dir, progress=False)
    write_provenance(tmp_path / "run", cfg.dataset.split, prepared)
    data = json.loads((tmp_path / "run" / PROVENANCE_FILE).read_text())
    record = Provenance.read(tmp_path / "run", strict=True)
    assert record is not None and record.split == data["split"] == "genre.data.splits.KFoldSplit"
    assert record.fold == 2
    assert record.split_parameters == {"folds": 3, "fold": 2, "seed": 0, "val": 0.15, "group": "group"}
    assert record.split_description() == "KFoldSplit(folds=3, fold=2, seed=0, val=0.15, group='group')"
    assert prepared.cache.directory.is_dir() and record.audio_cache == prepared.cache.directory.name
    assert record.n_clips == {"train": len(prepared.splits["train"]), "val": len(prepared.splits["val"]), "test": 8}
    assert sum(record.n_clips.values()) == 24  # 6 genres x 4 clips: every clip in one split
    assert record.command == sys.argv and record.resumed_from is None and record.earlier == []
    assert record.libraries["torch"] == torch.__version__ and record.libraries["numpy"] == numpy.__version__
    assert record.libraries["python"] == ".".join(map(str, sys.version_info[:3]))


def test_the_recorded_command_line_keeps_no_url_password(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = compose_run(TINY_DEMO, tmp_path / "run", cache_dir)
    prepared = prepare_data(cfg.dataset, cfg.paths.cache_dir, progress=False)
    url = "hydra.sweeper.storage=postgresql://genre:s3cret-pw@db.example/studies"
    monkeypatch.setattr(sys, "argv", ["run.py", "-m", url])
    write_provenance(tmp_path / "run", cfg.dataset.split, prepared)
    assert "s3cret-pw" not in (tmp_path / "run" / PROVENANCE_FILE).read_text()
    record = Provenance.read(tmp_path / "run", strict=True)
    assert (
        record is not None and record.command[-1] == "hydra.sweeper.storage=postgresql://genre:***@db.example/studies"
    )


def test_a_split_without_parameters_on_the_command_line_records_its_defaults(tmp_path: Path, cache_dir: Path) -> None:
    cfg = compose_run(TINY_DEMO, tmp_path / "run", cache_dir)
    stratified = ("genre.data.splits.StratifiedSplit", {"val": 0.15, "test": 0.15, "seed": 0})
    assert split_used(cfg.dataset.split) == stratified
    cfg.dataset.split = {"_target_": "genre.data.splits.KFoldSplit", "folds": 4}
    assert split_used(cfg.dataset.split)[1] == {"folds": 4, "fold": 0, "seed": 0, "val": 0.15, "group": "group"}


def test_git_state_names_the_commit_and_changes_of_genres_own_checkout_only(tmp_path: Path) -> None:
    repo = tmp_path / "checkout"
    package = repo / "genre"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    assert git_state(package) == (None, None)  # no checkout at all
    _git(repo, "init", "-q")
    assert git_state(package) == (None, None)  # a checkout without a commit
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    head = _git(repo, "log", "-1", "--format=%H")
    assert git_state(package) == (head, False)
    (package / "new.py").write_text("x = 1\n")
    assert git_state(package) == (head, True)
    # A genre installed somewhere inside another repository is not that repository's code.
    nested = repo / "venv" / "site-packages" / "genre"
    nested.mkdir(parents=True)
    assert git_state(nested) == (None, None)


def test_library_versions_name_python_and_each_library() -> None:
    versions = library_versions()
    libraries = ["torch", "torchaudio", "hydra-core", "optuna", "numpy", "scikit-learn", "librosa"]
    assert list(versions) == ["python", *libraries]
    assert versions["scikit-learn"] == __import__("sklearn").__version__


def test_a_resumed_run_keeps_the_launches_before_it(tmp_path: Path, cache_dir: Path) -> None:
    cfg = compose_run(TINY_DEMO, tmp_path / "run", cache_dir)
    prepared = prepare_data(cfg.dataset, cfg.paths.cache_dir, progress=False)
    first = write_provenance(tmp_path / "run", cfg.dataset.split, prepared)
    second = write_provenance(tmp_path / "run", cfg.dataset.split, prepared, resumed_from="run/last.pt")
    third = write_provenance(tmp_path / "run", cfg.dataset.split, prepared, resumed_from="run/last.pt")
    record = Provenance.read(tmp_path / "run")
    assert record is not None and record.resumed_from == "run/last.pt"
    assert record.earlier == [first.launch(), second.launch()] and third.earlier == record.earlier
    # A fresh run in the same dir starts a new history.
    write_provenance(tmp_path / "run", cfg.dataset.split, prepared)
    assert Provenance.read(tmp_path / "run").earlier == []  # type: ignore[union-attr]


@pytest.mark.parametrize("damage", ['{"split": 3}', "[]", '{"version": 99}'])
def test_a_damaged_provenance_file_reads_as_none(tmp_path: Path, damage: str) -> None:
    (tmp_path / PROVENANCE_FILE).write_text(damage)
    assert Provenance.read(tmp_path) is None

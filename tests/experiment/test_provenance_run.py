"""Provenance end to end: a real cross-validation job (``cv.folds=2`` on the tiny demo corpus) names its k-fold
split in cv.json and .hydra/config.yaml, each fold's provenance.json names its fold, the code and the command,
and the job's last line is test accuracy's mean ± 95 % t-interval over the folds' own metrics.json."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from genre.core.versions import git_state
from genre.run_files import CrossValidationMetrics, Provenance, RunMetrics
from helpers import TINY_RUN, run_cli

pytestmark = pytest.mark.slow

LAST_LINE = re.compile(
    r"Cross-validation: test/acc (\d\.\d{3}) ± (\d\.\d{3}) \(95 % t-interval, n = 2 folds\); "
    r"val/acc (\d\.\d{3}) \(the objective\)"
)


def test_a_cross_validation_job_names_its_kfold_split_and_ends_with_test_accuracy_and_its_interval(
    tmp_path: Path, cache_dir: Path
) -> None:
    job = tmp_path / "job"
    result = run_cli([*TINY_RUN, "model=cnn", "cv.folds=2", f"hydra.run.dir={job}"], tmp_path, cache_dir)
    folds = [RunMetrics.read(job / f"fold{fold}") for fold in range(2)]
    assert all(folds)
    test_acc = [m.scores["test/acc"] for m in folds if m]
    val_acc = [m.scores["val/acc"] for m in folds if m]
    match = LAST_LINE.fullmatch(result.stdout.strip().splitlines()[-1])
    assert match is not None, result.stdout
    half = stats.t.ppf(0.975, 1) * np.std(test_acc, ddof=1) / np.sqrt(2)
    assert [float(value) for value in match.groups()] == pytest.approx(
        [np.mean(test_acc), half, np.mean(val_acc)], abs=6e-4
    )
    record = CrossValidationMetrics.read(job)
    assert record is not None and record.finished
    hydra_config = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
    for split in (record.config["dataset"]["split"], hydra_config["dataset"]["split"]):
        assert split["_target_"] == "genre.data.splits.KFoldSplit" and split["folds"] == 2 and split["fold"] is None
    commit, _ = git_state()
    for fold in range(2):
        provenance = Provenance.read(job / f"fold{fold}", strict=True)
        assert provenance is not None and provenance.split == "genre.data.splits.KFoldSplit"
        assert provenance.fold == fold and provenance.split_parameters["folds"] == 2
        assert provenance.n_clips == folds[fold].n_clips  # type: ignore[union-attr]
        assert "cv.folds=2" in provenance.command and provenance.git_commit == commit
        assert provenance.libraries["torch"] and provenance.package_version

"""Comparisons end to end on the tiny demo corpus: a k-fold grid ends with a grouped summary, an Optuna search
optimises cross-validated trials (and a trial resumes per fold), genre.cli.compare on two of the runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from genre.cli.compare import main as compare_main
from genre.run_files import CrossValidationMetrics, Predictions, RunMetrics
from helpers import TINY_RUN, run_cli

pytestmark = pytest.mark.slow


def test_kfold_grid_ends_with_a_grouped_summary_and_compare_pairs_its_runs(
    tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    sweep = tmp_path / "grid"
    result = run_cli(
        [
            "-m",
            *TINY_RUN,
            "feature=mel,chroma",  # before the folds: jobs 0-2 are mel's folds, 3-5 chroma's
            "model=cnn",
            "dataset/split=kfold",
            "dataset.split.folds=3",
            "dataset.split.fold=0,1,2",
            f"hydra.sweep.dir={sweep}",
        ],
        tmp_path,
        cache_dir,
    )
    grouped = pd.read_csv(sweep / "configurations.csv")
    assert sorted(grouped["feature"]) == ["chroma", "mel"] and list(grouped["n"]) == [3, 3]
    assert grouped["test"].iloc[1] == "corrected resampled t-test" and 0.0 <= grouped["p"].iloc[1] <= 1.0
    # The interval is the folds' t-interval around their mean.
    low, mean, high = grouped["test/acc low"], grouped["test/acc mean"], grouped["test/acc high"]
    assert ((low <= mean) & (mean <= high)).all()
    assert "Configurations: 6 runs in 2 configurations" in result.stdout and " ± " in result.stdout
    # Every job wrote its clips' predictions, in the split's order, one probability per genre.
    for job in range(6):
        metrics = RunMetrics.read(sweep / str(job))
        predictions = Predictions.read(sweep / str(job))
        assert metrics is not None and predictions is not None
        test = predictions.of_split("test")
        assert len(test.clip_id) == metrics.n_clips["test"]
        assert (test.y_pred == test.y_true).mean() == pytest.approx(metrics.scores["test/acc"])
        assert "test/balanced_acc" in metrics.scores and "test/acc_low" in metrics.scores
    events = EventAccumulator(str(sweep / "0" / "tensorboard"))
    events.Reload()
    for tag in ("test/balanced_acc", "test/macro_f1", "val/macro_f1", "test/acc_high"):
        assert events.Scalars(tag)[-1].value == pytest.approx(RunMetrics.read(sweep / "0").scores[tag])
    capsys.readouterr()
    # Jobs 0 (mel) and 3 (chroma) tested fold 0: McNemar; jobs 0 and 1 tested other clips: refused.
    assert compare_main([str(sweep / "0"), str(sweep / "3")]) == 0
    assert "McNemar's exact test on 8 test clips" in capsys.readouterr().out
    assert compare_main([str(sweep / "0"), str(sweep / "1")]) == 2
    assert "tested on different clips" in capsys.readouterr().err


def test_optuna_optimises_cross_validated_trials_and_a_trial_resumes_per_fold(tmp_path: Path, cache_dir: Path) -> None:
    sweep = tmp_path / "search"
    run_cli(
        [
            "-m",
            "hparams_search=optuna",
            "hydra.sweeper.n_trials=2",
            "cv.folds=3",
            *TINY_RUN,
            "model=cnn",
            "feature=choice(mel,mfcc)",
            f"hydra.sweep.dir={sweep}",
        ],
        tmp_path,
        cache_dir,
    )
    study = optuna.load_study(study_name="genre-demo", storage=f"sqlite:///{tmp_path / 'optuna' / 'genre-demo.db'}")
    assert len(study.trials) == 2
    for trial in study.trials:
        job = sweep / str(trial.number)
        record = CrossValidationMetrics.read(job)
        assert record is not None and record.finished
        folds = [RunMetrics.read(job / f"fold{fold}") for fold in range(3)]
        # The trial's value is the mean of its folds' objectives, each fold a run of its own.
        assert trial.value == pytest.approx(sum(m.objective_value for m in folds if m) / 3)
        assert all((job / f"fold{fold}" / "tensorboard").is_dir() for fold in range(3))
    assert (sweep / "configurations.csv").is_file()
    # Resume: a lost fold is trained again (identically), one without metrics is finished from last.pt.
    job = sweep / "0"
    before = json.loads((job / "fold1" / "metrics.json").read_text())
    shutil.rmtree(job / "fold1")
    (job / "fold2" / "metrics.json").unlink()
    result = run_cli([f"resume={job}"], tmp_path, cache_dir)
    assert "Fold 0 of 3 finished already" in result.stderr + result.stdout
    after = json.loads((job / "fold1" / "metrics.json").read_text())
    assert (after["val/acc"], after["test/loss"]) == (before["val/acc"], before["test/loss"])
    record = CrossValidationMetrics.read(job)
    assert record is not None and record.finished and RunMetrics.read(job / "fold2") is not None

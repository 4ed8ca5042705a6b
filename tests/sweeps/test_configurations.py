"""Sweep summaries that group and test, and ``genre.cli.compare``, on run folders written through the typed run
files (no training): folds -> Nadeau-Bengio with each fold's clip counts, single runs -> McNemar on
predictions.csv, cross-validation jobs' folds grouped, runs on different clips refused."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from genre.cli.compare import main as compare_main
from genre.comparison.grouping import NOT_WORSE_MEANING
from genre.run_files import CrossValidationMetrics, Predictions
from genre.sweeps.results.configurations import CONFIGURATIONS_FILE
from genre.sweeps.results.summary import summarise_sweep
from helpers.records import make_metrics

LABELS = ["a", "b"]
TRUE = np.array([0, 1] * 10)


def _run(
    run_dir: Path,
    test_acc: float,
    y_pred: np.ndarray | None = None,
    clips: list[str] | None = None,
    n_train: int = 40,
    n_test: int = 20,
) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    make_metrics(
        scores={"val/acc": test_acc, "test/acc": test_acc, "val/loss": 1.0, "test/loss": 1.0},
        labels=LABELS,
        n_clips={"train": n_train, "val": 5, "test": n_test},
    ).write(run_dir)
    if y_pred is not None:
        clips = clips or [f"c{i}.wav" for i in range(len(TRUE))]
        probabilities = np.eye(2)[y_pred]
        Predictions(
            labels=LABELS,
            split=["test"] * len(TRUE),
            clip_id=clips,
            path=[f"/x/{c}" for c in clips],
            y_true=TRUE,
            y_pred=y_pred,
            probabilities=probabilities,
        ).write(run_dir)


def _hydra(run_dir: Path, num: int, overrides: list[str]) -> None:
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(overrides), run_dir / ".hydra" / "overrides.yaml")
    OmegaConf.save(
        OmegaConf.create({"hydra": {"job": {"num": num}, "runtime": {"choices": {"model": "cnn"}}}}),
        run_dir / ".hydra" / "hydra.yaml",
    )
    OmegaConf.save(
        OmegaConf.create({"seed": 42, "objective": "val/acc", "objective_mode": "max"}),
        run_dir / ".hydra" / "config.yaml",
    )


def _predictions(right: int) -> np.ndarray:
    """Predictions getting the first ``right`` clips right and the rest wrong."""
    pred = TRUE.copy()
    pred[right:] = 1 - pred[right:]
    return pred


def test_a_fold_sweep_groups_into_configurations_tested_by_nadeau_bengio(tmp_path: Path) -> None:
    scores = {"mel": [0.80, 0.70, 0.75], "chroma": [0.55, 0.60, 0.40]}
    num = 0
    for feature, values in scores.items():
        for fold, value in enumerate(values):
            _hydra(tmp_path / str(num), num, [f"feature={feature}", f"dataset.split.fold={fold}"])
            _run(tmp_path / str(num), value, n_train=30 + fold, n_test=10)
            num += 1
    summary = summarise_sweep(tmp_path)
    grouped = pd.read_csv(tmp_path / CONFIGURATIONS_FILE)
    assert list(grouped["feature"]) == ["mel", "chroma"] and list(grouped["n"]) == [3, 3]
    assert grouped["test/acc mean"].iloc[0] == pytest.approx(0.75)
    half = stats.t.ppf(0.975, 2) * np.std(scores["mel"], ddof=1) / math.sqrt(3)
    assert grouped["test/acc ±"].iloc[0] == pytest.approx(half)
    # Nadeau-Bengio by its formula, with the folds' mean clip counts (n_train 31, n_test 10).
    d = np.array(scores["chroma"]) - np.array(scores["mel"])
    t = d.mean() / math.sqrt((1 / 3 + 10 / 31) * d.var(ddof=1))
    assert grouped["test"].iloc[1] == "corrected resampled t-test"
    assert grouped["p"].iloc[1] == pytest.approx(2 * stats.t.sf(abs(t), 2))
    assert len(summary.frame) == 6, "summary.csv keeps one row per job"
    markdown = (tmp_path / "summary.md").read_text()
    assert "Configurations: 6 runs in 2 configurations" in markdown and NOT_WORSE_MEANING in markdown
    assert "0.750 ± 0.124" in markdown, "the narrow table: mean ± the t half-interval"
    assert (tmp_path / "intervals.png").is_file() and (tmp_path / "intervals.pdf").is_file(), "one swept key"


def test_single_runs_are_compared_by_mcnemar_on_their_predictions(tmp_path: Path) -> None:
    right = {"mel": 18, "chroma": 12, "mfcc": 16}
    for num, (feature, n_right) in enumerate(right.items()):
        _hydra(tmp_path / str(num), num, [f"feature={feature}"])
        _run(tmp_path / str(num), n_right / 20, _predictions(n_right))
    summary = summarise_sweep(tmp_path)
    table = summary.configurations
    assert table is not None and list(table["feature"]) == ["mel", "mfcc", "chroma"]
    expected = []
    for other in ("mfcc", "chroma"):
        a, b = _predictions(right[other]) == TRUE, _predictions(right["mel"]) == TRUE
        contingency = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
        expected.append(mcnemar(contingency, exact=True).pvalue)
    assert list(table["test"][1:]) == ["McNemar exact"] * 2
    assert list(table["p"][1:]) == pytest.approx(expected)
    assert list(table["p (Holm)"][1:]) == pytest.approx(list(multipletests(expected, method="holm")[1]))
    # One run per configuration: the jobs table itself carries the test; the narrow table follows it.
    rows = [line for line in summary.table.splitlines() if line.startswith("|")]
    assert len(rows) == 2 * (2 + 3) and "p (Holm)" in rows[0] and "not worse" in rows[0]
    assert NOT_WORSE_MEANING in summary.table


def test_single_runs_on_different_clips_get_no_mcnemar(tmp_path: Path) -> None:
    for num, feature in enumerate(("mel", "chroma")):
        _hydra(tmp_path / str(num), num, [f"feature={feature}"])
        _run(
            tmp_path / str(num),
            0.5 + num / 10,
            _predictions(10 + num),
            clips=[f"{feature}{i}.wav" for i in range(len(TRUE))],
        )
    table = summarise_sweep(tmp_path).configurations
    assert table is not None and table["test"].iloc[1] == "none" and math.isnan(table["p"].iloc[1])


def _cv_job(job_dir: Path, values: list[float]) -> None:
    CrossValidationMetrics(
        folds=len(values),
        config={},
        objective="val/acc",
        objective_mode="max",
        completed=list(range(len(values))),
        objective_values=values,
    ).write(job_dir)
    for fold, value in enumerate(values):
        _run(job_dir / f"fold{fold}", value, _predictions(int(value * 20)), clips=[f"f{fold}-{i}" for i in range(20)])


def test_cross_validation_jobs_row_is_the_fold_mean_and_their_folds_are_repeats(tmp_path: Path) -> None:
    for num, (feature, values) in enumerate({"mel": [0.8, 0.9, 0.7], "mfcc": [0.6, 0.65, 0.5]}.items()):
        _hydra(tmp_path / str(num), num, [f"feature={feature}", "cv.folds=3"])
        _cv_job(tmp_path / str(num), values)
    summary = summarise_sweep(tmp_path)
    assert list(summary.frame["test/acc"]) == pytest.approx([0.8, 0.5833333])
    table = summary.configurations
    assert table is not None and list(table["n"]) == [3, 3] and table["test"].iloc[1] == "corrected resampled t-test"


def test_compare_two_single_runs_prints_mcnemar_and_refuses_other_clips(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _run(tmp_path / "a", 0.9, _predictions(18))
    _run(tmp_path / "b", 0.6, _predictions(12))
    assert compare_main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    a, b = _predictions(12) == TRUE, _predictions(18) == TRUE
    p = mcnemar([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]], exact=True).pvalue
    assert "McNemar exact" in out and f"p = {p:.4g}" in out
    assert "| a right |" in out and "b wrong" in out
    _run(tmp_path / "c", 0.6, _predictions(12), clips=[f"other{i}" for i in range(len(TRUE))])
    assert compare_main([str(tmp_path / "a"), str(tmp_path / "c")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: dirs: ") and "tested on different clips" in error and error.count("\n") == 1


def test_when_validation_and_test_disagree_every_output_names_the_validation_best(tmp_path: Path) -> None:
    """Selecting on test scores is selection on the test set: the best is the validation best everywhere
    (configurations.csv, summary.md and .tex, the figure, the last line, optimization_results.yaml)."""
    import optuna
    from PIL import Image

    from genre.sweeps.optuna.sweeper import write_results

    # (val, test) per fold: mel is best on validation, chroma on test; mfcc is worst on both.
    scores = {
        "mel": [(0.90, 0.60), (0.86, 0.62), (0.88, 0.58)],
        "chroma": [(0.70, 0.80), (0.72, 0.84), (0.68, 0.82)],
        "mfcc": [(0.50, 0.40), (0.52, 0.42), (0.48, 0.38)],
    }
    study = optuna.create_study(direction="maximize", study_name="disagree")
    num = 0
    for feature, folds in scores.items():
        for fold, (val, test) in enumerate(folds):
            run_dir = tmp_path / str(num)
            _hydra(run_dir, num, [f"feature={feature}", f"dataset.split.fold={fold}"])
            make_metrics(
                scores={"val/acc": val, "test/acc": test, "val/loss": 1 - val, "test/loss": 1 - test},
                labels=LABELS,
                n_clips={"train": 40, "val": 10, "test": 10},
            ).write(run_dir)
            num += 1
        # One trial per configuration, its value the folds' mean objective, as a cross-validated search tells it.
        study.add_trial(
            optuna.trial.create_trial(
                params={"feature": feature},
                distributions={"feature": optuna.distributions.CategoricalDistribution(list(scores))},
                value=float(np.mean([val for val, _ in folds])),
            )
        )
    summary = summarise_sweep(tmp_path)
    best_on_test = max(scores, key=lambda f: np.mean([t for _, t in scores[f]]))
    assert best_on_test == "chroma", "the fixture must make the two disagree"

    assert pd.read_csv(tmp_path / CONFIGURATIONS_FILE)["feature"].iloc[0] == "mel"
    markdown = (tmp_path / "summary.md").read_text()
    first_row = next(line for line in markdown.splitlines() if line.startswith("| feature=mel"))
    assert "| best " in first_row, "the first row of the narrow table is the reference the others are tested against"
    assert summary.table.rstrip().splitlines()[-1].startswith("Best configuration, chosen on val/acc: feature=mel ")
    assert markdown.rstrip().splitlines()[-1].startswith("Best configuration, chosen on val/acc: feature=mel ")
    latex = (tmp_path / "summary.tex").read_text()
    body = latex.split(r"\midrule")[1].strip().splitlines()
    assert body[0].strip().startswith("feature=mel & 3 & 0.880 $\\pm$ 0.050 &") and r"\bottomrule" in latex
    for figure in ("intervals.png", "intervals.pdf"):
        assert (tmp_path / figure).stat().st_size > 1000
    assert "best on val/acc, feature=mel" in Image.open(tmp_path / "intervals.png").text["Title"]
    # Chroma is 0.22 better on test than the chosen one: reported and tested, never chosen.
    chroma = pd.read_csv(tmp_path / CONFIGURATIONS_FILE).set_index("feature").loc["chroma"]
    assert chroma["difference"] == pytest.approx(0.22) and chroma["test"] == "corrected resampled t-test"
    results = OmegaConf.load(write_results(study, tmp_path))
    assert results.best_params == {"feature": "mel"}

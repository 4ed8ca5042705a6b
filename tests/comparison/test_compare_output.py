"""genre.cli.compare's labels and formats, on run dirs written by hand (no training): each configuration is named
by the config keys and choices that differ among the runs (the folder only when nothing does), and the grouped
table comes as markdown, CSV, JSON or a booktabs LaTeX tabular with the same numbers."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from statsmodels.stats.contingency_tables import mcnemar

from genre.cli.compare import main as compare_main
from genre.comparison.labels import Described, differing_labels
from genre.run_files import Predictions
from helpers.records import make_metrics
from helpers.waiting import SAFETY_TIMEOUT

LABELS = ["a", "b"]
TRUE = np.array([0, 1] * 10)
FEATURES = {
    "mel": {"_target_": "genre.features.spectral.MelSpectrogram", "n_mels": 64},
    "mfcc": {"_target_": "genre.features.spectral.MFCC", "n_mfcc": 20},
}


def _predictions(right: int) -> np.ndarray:
    """Predictions getting the first ``right`` of the 20 test clips right and the rest wrong."""
    pred = TRUE.copy()
    pred[right:] = 1 - pred[right:]
    return pred


def _run(run_dir: Path, right: int, feature: str = "mel", seed: int = 0, num: int = 0, **keys: Any) -> Path:
    """A finished run of ``feature`` that got ``right`` of 20 test clips right, with Hydra's files."""
    run_dir.mkdir(parents=True)
    acc = right / len(TRUE)
    make_metrics(
        # A bootstrap interval as a run records it (its own clips' resampling), asymmetric on purpose.
        scores={"val/acc": acc, "test/acc": acc, "val/loss": 1.0, "test/loss": 1.0}
        | {"test/acc_low": acc - 0.1, "test/acc_high": min(1.0, acc + 0.05)},
        labels=LABELS,
        n_clips={"train": 40, "val": 5, "test": len(TRUE)},
    ).write(run_dir)
    clips = [f"c{i}.wav" for i in range(len(TRUE))]
    y_pred = _predictions(right)
    Predictions(LABELS, ["test"] * len(TRUE), clips, [f"/x/{c}" for c in clips], TRUE, y_pred, np.eye(2)[y_pred]).write(
        run_dir
    )
    config: dict[str, Any] = {
        "seed": seed,
        "feature": FEATURES[feature],
        "model": {"_target_": "genre.models.cnn.CNN", "channels": [8, 16]},
        "trainer": {"epochs": 2, "grad_clip": None},
        "paths": {"output_dir": str(run_dir)},  # differs between any two runs: never a label
    }
    for key, value in keys.items():
        OmegaConf.update(config := OmegaConf.create(config), key.replace("__", "."), value)  # type: ignore[assignment]
        config = OmegaConf.to_container(config)  # type: ignore[assignment]
    hydra = run_dir / ".hydra"
    hydra.mkdir()
    OmegaConf.save(OmegaConf.create(config), hydra / "config.yaml")
    choices = {"feature": feature, "model": "cnn", "hydra/launcher": "basic"}
    OmegaConf.save(
        OmegaConf.create({"hydra": {"job": {"num": num}, "runtime": {"choices": choices}}}), hydra / "hydra.yaml"
    )
    OmegaConf.save(OmegaConf.create([f"feature={feature}"]), hydra / "overrides.yaml")
    return run_dir


def _compare(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert compare_main(list(args)) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def _mcnemar_p(right_a: int, right_b: int) -> float:
    a, b = _predictions(right_a) == TRUE, _predictions(right_b) == TRUE
    return float(mcnemar([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]], exact=True).pvalue)


def test_runs_are_labelled_by_the_choice_that_differs_and_every_format_agrees(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mel, mfcc = _run(tmp_path / "2026-12-03" / "07-51-24", 18, "mel"), _run(tmp_path / "other" / "run", 12, "mfcc")
    table = _compare(capsys, str(mfcc), str(mel))
    assert "| feature=mel " in table and "| feature=mfcc " in table and str(mel) not in table
    assert "McNemar's exact test on 20 test clips: feature=mfcc (a) vs the best, feature=mel (b)" in table
    p = _mcnemar_p(12, 18)
    csv = pd.read_csv(io.StringIO(_compare(capsys, str(mfcc), str(mel), "--format", "csv")))
    assert list(csv["configuration"]) == ["feature=mel", "feature=mfcc"] and list(csv["n"]) == [1, 1]
    assert list(csv["test/acc mean"]) == pytest.approx([0.9, 0.6]) and csv["p (Holm)"].iloc[1] == pytest.approx(p)
    document = json.loads(_compare(capsys, str(mfcc), str(mel), "--format", "json"))
    assert (document["metric"], document["mode"], document["runs"]) == ("test/acc", "max", 2)
    assert [row["configuration"] for row in document["configurations"]] == ["feature=mel", "feature=mfcc"]
    assert document["configurations"][0]["p"] is None and document["configurations"][1]["p"] == pytest.approx(p)
    a, b = _predictions(12) == TRUE, _predictions(18) == TRUE
    (mcnemar_table,) = document["mcnemar"]
    assert mcnemar_table["table"] == [
        [int(np.sum(a & b)), int(np.sum(a & ~b))],
        [int(np.sum(~a & b)), int(np.sum(~a & ~b))],
    ]
    assert (mcnemar_table["a"], mcnemar_table["b"], mcnemar_table["p"]) == (
        "feature=mfcc",
        "feature=mel",
        pytest.approx(p),
    )


def test_latex_is_the_reports_booktabs_table_with_escaped_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [
        _run(tmp_path / "a", 18, trainer__grad_clip=0.5),
        _run(tmp_path / "b", 12, trainer__grad_clip=None),
    ]
    lines = [line.strip() for line in _compare(capsys, *map(str, runs), "--format", "latex").splitlines()]
    assert lines[0] == r"\begin{table}[t]" and lines[2] == r"\begin{tabular}{lrrrrr}"
    assert lines[3] == r"\toprule" and lines[5] == r"\midrule" and lines[-4:-2] == [r"\bottomrule", r"\end{tabular}"]
    header = lines[4]
    assert header == r"configuration & n & val/acc & test/acc & $\Delta$ test/acc vs best & p (Holm) \\"
    rows = lines[6:-4]
    assert [row.split(" & ")[0] for row in rows] == [r"trainer.grad\_clip=0.5", r"trainer.grad\_clip=null"]
    # A single run's interval is its bootstrap over its clips ([low, high] from its metrics).
    assert rows[0].split(" & ")[1] == "1" and rows[0].split(" & ")[3] == "0.900 [0.800, 0.950]"
    assert rows[0].endswith(r"best &  \\") and rows[1].split(" & ")[-2] == "-0.300"
    assert float(rows[1].split(" & ")[-1].removesuffix(r" \\")) == pytest.approx(_mcnemar_p(12, 18), rel=1e-2)
    assert all(row.count(" & ") == header.count(" & ") for row in rows)


def test_runs_differing_in_nothing_but_their_folder_keep_the_folder_as_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = _run(tmp_path / "first", 18, seed=0), _run(tmp_path / "second", 12, seed=1)
    csv = pd.read_csv(io.StringIO(_compare(capsys, str(first), str(second), "--format", "csv")))
    assert list(csv["configuration"]) == [str(first), str(second)]


def test_a_key_the_choice_does_not_explain_is_named_and_shared_labels_add_the_seed_then_the_folder() -> None:
    def described(feature: str, **config: Any) -> Described:
        return Described(config={"feature": dict(FEATURES[feature]), **config}, choices={"feature": feature})

    runs = {
        "a": described("mel", seed=0),
        "b": described("mfcc", seed=0),
        "c": Described(config={"feature": {**FEATURES["mel"], "n_mels": 128}, "seed": 0}, choices={"feature": "mel"}),
    }
    fallback = {name: f"dir/{name}" for name in ("a", "b", "c", "d", "e")}
    assert differing_labels(runs, fallback, ["seed"]) == {
        "a": "feature=mel feature.n_mels=64",
        "b": "feature=mfcc",
        "c": "feature=mel feature.n_mels=128",
    }
    runs = {
        "a": described("mel", seed=0),
        "b": described("mel", seed=1),
        "c": described("mfcc", seed=0),
        "d": described("mfcc", seed=0, paths={"output_dir": "x"}),
        "e": described("mfcc", seed=0, optimizer={"lr": 0.01}),
    }
    assert differing_labels(runs, fallback, ["seed"]) == {
        "a": "feature=mel seed=0",
        "b": "feature=mel seed=1",
        "c": "feature=mfcc (dir/c)",
        "d": "feature=mfcc (dir/d)",
        "e": "feature=mfcc optimizer.lr=0.01",
    }


def test_an_unknown_format_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        compare_main([str(tmp_path), "--format", "xlsx"])
    assert info.value.code == 2 and "invalid choice: 'xlsx'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
def test_the_latex_table_compiles_with_booktabs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = [_run(tmp_path / "a", 18, "mel", trainer__grad_clip=0.5), _run(tmp_path / "b", 12, "mfcc")]
    (tmp_path / "table.tex").write_text(_compare(capsys, *map(str, runs), "--format", "latex"))
    (tmp_path / "paper.tex").write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n\\input{table.tex}\n\\end{document}\n"
    )
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=SAFETY_TIMEOUT,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert (tmp_path / "paper.pdf").stat().st_size > 0


def test_the_configurations_of_two_sweeps_are_labelled_by_what_differs_across_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for num, (feature, right) in enumerate((("mel", 18), ("mfcc", 12))):
        _run(tmp_path / "sweep" / str(num), right, feature, num=num)
    _run(tmp_path / "other" / "0", 15, "mfcc", optimizer__lr=0.01)
    csv = pd.read_csv(
        io.StringIO(_compare(capsys, str(tmp_path / "sweep"), str(tmp_path / "other"), "--format", "csv"))
    )
    assert list(csv["configuration"]) == ["feature=mel", "feature=mfcc optimizer.lr=0.01", "feature=mfcc"]
    assert list(csv["test/acc mean"]) == pytest.approx([0.9, 0.75, 0.6])


def _rescore(run_dir: Path, val: float, objective: str = "val/acc") -> None:
    """Give ``run_dir``'s metrics another validation score (and objective), its test predictions as they are."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    make_metrics(
        scores={**{k: v for k, v in metrics.items() if "/" in k}, "val/acc": val},
        objective=objective,
        objective_mode="min" if objective.endswith("loss") else "max",
        labels=LABELS,
        n_clips={"train": 40, "val": 5, "test": len(TRUE)},
    ).write(run_dir)


def test_compare_picks_the_best_on_the_runs_objective_not_on_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # mel is better on validation, mfcc on test: the reference is mel, and mfcc's lead shows as a difference.
    mel, mfcc = _run(tmp_path / "a", 12, "mel"), _run(tmp_path / "b", 18, "mfcc")
    _rescore(mel, 0.9)
    _rescore(mfcc, 0.7)
    csv = pd.read_csv(io.StringIO(_compare(capsys, str(mel), str(mfcc), "--format", "csv")))
    assert list(csv["configuration"]) == ["feature=mel", "feature=mfcc"]
    assert csv["difference"].iloc[1] == pytest.approx(0.3) and csv["test"].iloc[1] == "McNemar exact"
    assert "best first by val/acc" in _compare(capsys, str(mel), str(mfcc)).splitlines()[0]
    _rescore(mfcc, 0.7, objective="val/loss")
    assert compare_main([str(mel), str(mfcc)]) == 2
    assert "chose their best checkpoints on different objectives (val/acc, val/loss)" in capsys.readouterr().err

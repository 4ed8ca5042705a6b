"""Cross-validation as one job without training: the folds' configs equal the grid form's, fixed splits are
refused in one line, and the fold loop skips finished folds, resumes an interrupted one, starts a
never-checkpointed one over, and points Ctrl-C at the job dir."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from scipy import stats

from genre.core.errors import ConfigError, TrainingInterrupted
from genre.experiment.cross_validation import (
    cross_validation_folds,
    fold_config,
    is_cross_validation_dir,
    resume_cross_validation,
    run_cross_validation,
)
from genre.run_files import LAST_CHECKPOINT, CrossValidationMetrics, RunMetrics
from helpers import TINY_DEMO, compose_run
from helpers.records import make_metrics


def _job(tmp_path: Path, cache_dir: Path, *overrides: str) -> DictConfig:
    cfg = compose_run([*TINY_DEMO, *overrides], tmp_path / "job", cache_dir)
    return OmegaConf.create(
        OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    )


def _metrics(acc: float) -> RunMetrics:
    return make_metrics(
        scores={"val/acc": acc, "test/acc": acc / 2},
        n_parameters=3,
        n_clips={"train": 8, "val": 2, "test": 4},
    )


def test_each_fold_is_the_grid_forms_run(tmp_path: Path, cache_dir: Path) -> None:
    job = _job(tmp_path, cache_dir, "cv.folds=3")
    for fold in range(3):
        grid = _job(tmp_path, cache_dir, "dataset/split=kfold", "dataset.split.folds=3", f"dataset.split.fold={fold}")
        config = fold_config(job, 3, fold)
        assert config.dataset.split == grid.dataset.split
        assert config.paths.output_dir == str(tmp_path / "job" / f"fold{fold}")
        assert config.cv.folds is None and config.model == grid.model and config.seed == grid.seed
    # A user's k-fold settings are kept; cv.folds sets the count.
    custom = _job(tmp_path, cache_dir, "cv.folds=4", "dataset/split=kfold", "dataset.split.seed=7")
    assert (fold_config(custom, 4, 2).dataset.split.seed, fold_config(custom, 4, 2).dataset.split.folds) == (7, 4)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["cv.folds=1"], "cv.folds: 1 is not a whole number of at least 2"),
        (["cv.folds=two"], "cv.folds: 'two' is not"),
    ],
)
def test_bad_fold_counts_are_one_line(overrides: list[str], message: str, tmp_path: Path, cache_dir: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        cross_validation_folds(_job(tmp_path, cache_dir, *overrides))
    assert cross_validation_folds(_job(tmp_path, cache_dir)) == 0


def test_a_fixed_split_is_refused(tmp_path: Path, cache_dir: Path) -> None:
    job = _job(tmp_path, cache_dir, "cv.folds=3")
    job.dataset.split = {"_target_": "genre.data.splits.PredefinedSplit"}
    with pytest.raises(ConfigError, match=r"cv\.folds: dataset\.split is PredefinedSplit, a fixed split") as info:
        run_cross_validation(job, lambda cfg, resume: 0.0)
    assert "\n" not in str(info.value) and not (tmp_path / "job" / "fold0").exists()


def test_folds_run_in_turn_and_resume_continues_the_unfinished_ones(tmp_path: Path, cache_dir: Path) -> None:
    job = _job(tmp_path, cache_dir, "cv.folds=3")
    calls: list[tuple[str, str | None]] = []

    def run_one(cfg: DictConfig, resume_from: str | None) -> float:
        calls.append((Path(cfg.paths.output_dir).name, resume_from))
        Path(cfg.paths.output_dir).mkdir(parents=True, exist_ok=True)
        fold = int(cfg.dataset.split.fold)
        if fold == 1 and len(calls) == 2:  # the first attempt at fold 1 is interrupted after a checkpoint
            (Path(cfg.paths.output_dir) / LAST_CHECKPOINT).write_bytes(b"")
            raise TrainingInterrupted(2, "interrupted by SIGINT")
        _metrics(0.1 * (fold + 1)).write(Path(cfg.paths.output_dir))
        return 0.1 * (fold + 1)

    with pytest.raises(TrainingInterrupted, match=f"resume={tmp_path / 'job'}") as info:
        run_cross_validation(job, run_one)
    assert info.value.signum == 2
    job_dir = tmp_path / "job"
    assert is_cross_validation_dir(job_dir)
    record = CrossValidationMetrics.read(job_dir)
    assert record is not None and record.completed == [0] and not record.finished
    # A fold that started but never saved a checkpoint starts over in an empty dir.
    (job_dir / "fold2").mkdir()
    (job_dir / "fold2" / "stale.txt").write_text("old")
    resume = OmegaConf.create({"resume": str(job_dir)})
    HydraConfig.instance().cfg = None  # type: ignore[assignment]  # a plain `resume=<job dir>` launch: no overrides
    assert resume_cross_validation(resume, run_one) == pytest.approx((0.1 + 0.2 + 0.3) / 3)
    assert calls == [
        ("fold0", None),
        ("fold1", None),
        ("fold1", str(job_dir / "fold1" / LAST_CHECKPOINT)),
        ("fold2", None),
    ]
    assert not (job_dir / "fold2" / "stale.txt").exists()
    record = CrossValidationMetrics.read(job_dir)
    assert record is not None and record.finished and record.objective_values == pytest.approx([0.1, 0.2, 0.3])
    assert record.mean["test/acc"] == pytest.approx(0.1) and record.low["val/acc"] < 0.2 < record.high["val/acc"]
    # Resuming a finished job trains nothing and returns the same mean.
    assert resume_cross_validation(resume, run_one) == pytest.approx(0.2) and len(calls) == 4


def test_resume_needs_a_cross_validation_record(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"resume: .* holds no readable cv\.json"):
        resume_cross_validation(OmegaConf.create({"resume": str(tmp_path)}), lambda cfg, resume: 0.0)


def _hydra_config(tmp_path: Path, cache_dir: Path, *overrides: str) -> Path:
    """The job's ``.hydra/config.yaml`` as Hydra writes it: the composed config, interpolations unresolved."""
    cfg = compose_run([*TINY_DEMO, *overrides], tmp_path / "job", cache_dir)
    path = tmp_path / "job" / ".hydra" / "config.yaml"
    path.parent.mkdir(parents=True)
    OmegaConf.save(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), path)
    return path


def test_a_jobs_records_name_its_kfold_split_and_its_last_line_is_test_accuracy_with_an_interval(
    tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hydra_file = _hydra_config(tmp_path, cache_dir, "cv.folds=3")
    composed = yaml.safe_load(hydra_file.read_text())
    assert composed["dataset"]["split"]["_target_"] == "genre.data.splits.StratifiedSplit"
    job = _job(tmp_path, cache_dir, "cv.folds=3")
    test_acc, val_acc = [0.5, 0.7, 0.95], [0.6, 0.8, 0.7]

    def run_one(cfg: DictConfig, resume_from: str | None) -> float:
        fold = int(cfg.dataset.split.fold)
        Path(cfg.paths.output_dir).mkdir(parents=True)
        make_metrics(scores={"val/acc": val_acc[fold], "test/acc": test_acc[fold]}).write(cfg.paths.output_dir)
        return val_acc[fold]

    run_cross_validation(job, run_one)
    grid = _job(tmp_path, cache_dir, "dataset/split=kfold", "dataset.split.folds=3")
    expected = {**OmegaConf.to_container(grid.dataset.split), "fold": None}
    # cv.json's config and .hydra/config.yaml name the k-fold split the folds ran, not the composed one.
    record = CrossValidationMetrics.read(tmp_path / "job")
    assert record is not None and record.config["dataset"]["split"] == expected
    rewritten = yaml.safe_load(hydra_file.read_text())
    assert rewritten["dataset"]["split"] == expected
    assert {key: value for key, value in rewritten.items() if key != "dataset"} == {
        key: value for key, value in composed.items() if key != "dataset"
    }
    assert rewritten["dataset"]["source"] == composed["dataset"]["source"]
    assert "StratifiedSplit" in hydra_file.read_text().splitlines()[0]
    # The last line: test accuracy's mean ± the 95 % t half-width over the 3 folds, and the objective's mean.
    half = stats.t.ppf(0.975, 2) * np.std(test_acc, ddof=1) / np.sqrt(3)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == (
        f"Cross-validation: test/acc {np.mean(test_acc):.3f} ± {half:.3f} (95 % t-interval, n = 3 folds); "
        f"val/acc {np.mean(val_acc):.3f} (the objective)"
    )
    # Resuming the finished job trains nothing, keeps the k-fold split and ends with the same line.
    HydraConfig.instance().cfg = None  # type: ignore[assignment]
    resume_cross_validation(OmegaConf.create({"resume": str(tmp_path / "job")}), run_one)
    assert capsys.readouterr().out.strip().splitlines()[-1] == last
    assert fold_config(OmegaConf.create(record.config), 3, 1).dataset.split == {**expected, "fold": 1}


@pytest.mark.parametrize("text", [b"dataset: [unclosed", b"\xff\xfe", b"- a list\n"])
def test_a_hydra_config_genre_cannot_read_is_left_as_it_is(tmp_path: Path, cache_dir: Path, text: bytes) -> None:
    hydra_file = _hydra_config(tmp_path, cache_dir, "cv.folds=2")
    hydra_file.write_bytes(text)
    job = _job(tmp_path, cache_dir, "cv.folds=2")

    def run_one(cfg: DictConfig, resume_from: str | None) -> float:
        Path(cfg.paths.output_dir).mkdir(parents=True)
        make_metrics(scores={"val/acc": 0.5, "test/acc": 0.5}).write(cfg.paths.output_dir)
        return 0.5

    assert run_cross_validation(job, run_one) == 0.5
    assert hydra_file.read_bytes() == text
    record = CrossValidationMetrics.read(tmp_path / "job")
    assert record is not None and record.config["dataset"]["split"]["_target_"] == "genre.data.splits.KFoldSplit"

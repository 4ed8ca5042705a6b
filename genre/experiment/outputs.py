"""What a finished run computes from its predictions: ``predictions.csv`` and the scores beyond accuracy.

Balanced accuracy, macro-F1 and per-class recall/F1 (FMA is unbalanced: accuracy alone rewards the
big genres), and a seeded bootstrap 95 % interval for the clip-level test accuracy, all from
:mod:`genre.comparison.metrics`. Scores that are undefined (the recall of a genre the split lacks) are
left out rather than written as NaN: a NaN score means a diverged run everywhere else.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from omegaconf import DictConfig, OmegaConf

from genre.comparison.metrics import bootstrap_accuracy, classification_metrics
from genre.core.url_passwords import without_passwords
from genre.data.prepare import PreparedData
from genre.run_files import Predictions, RunMetrics
from genre.training.evaluation import EvalResult
from genre.training.trainer import FitResult

if TYPE_CHECKING:  # genre.experiment.spec imports stored_config from here: no import back at run time
    from genre.experiment.spec import RunSpec

# The bootstrap's own seed, fixed: two runs with the same predictions get the same interval.
BOOTSTRAP_SEED = 0


def stored_config(cfg: DictConfig) -> dict[str, Any]:
    """The run config as checkpoints store it: plain containers, with no URL password in it (a study URL
    that still held one would otherwise travel with every checkpoint someone copies or sends)."""
    return cast(dict[str, Any], without_passwords(OmegaConf.to_container(cfg)))


def clip_ids(paths: Sequence[str], all_paths: Sequence[str]) -> list[str]:
    """Each path relative to the deepest folder holding every clip of ``all_paths`` (POSIX separators)."""
    root = os.path.commonpath([os.path.dirname(path) for path in all_paths])
    return [PurePath(os.path.relpath(path, root)).as_posix() for path in paths]


def run_predictions(prepared: PreparedData, results: Mapping[str, EvalResult]) -> Predictions:
    """The predictions of ``results`` (split name -> evaluation, rows in the split's order) as one record."""
    every_path = [path for split in prepared.splits.values() for path in split.paths]
    split, paths, segment, true, pred, probabilities = [], [], [], [], [], []
    per_segment = any(result.rows_per_clip > 1 for result in results.values())
    for name, result in results.items():
        clips = prepared.splits[name].paths
        rows = len(result.targets)
        if result.probabilities is None or rows != len(clips) * result.rows_per_clip:
            raise ValueError(f"results: {name} has {rows} rows for {len(clips)} clips")
        split += [name] * rows
        paths += [clips[row // result.rows_per_clip] for row in range(rows)]
        segment.append(np.arange(rows) % result.rows_per_clip)
        true.append(result.targets)
        pred.append(result.predictions)
        probabilities.append(result.probabilities)
    return Predictions(
        labels=list(prepared.labels),
        split=split,
        clip_id=clip_ids(paths, every_path),
        path=paths,
        y_true=np.concatenate(true).astype(np.int64),
        y_pred=np.concatenate(pred).astype(np.int64),
        probabilities=np.concatenate(probabilities),
        segment=np.concatenate(segment).astype(np.int64) if per_segment else None,
    )


def prediction_scores(results: Mapping[str, EvalResult], labels: Sequence[str]) -> dict[str, float]:
    """Per split: ``<split>/balanced_acc``, ``macro_f1``, ``recall/<genre>``, ``f1/<genre>``; for test, the
    bootstrap interval of its accuracy as ``test/acc_low``/``test/acc_high`` (clip-level results only:
    the segments of one clip are no independent draws)."""
    scores: dict[str, float] = {}
    for name, result in results.items():
        metrics = classification_metrics(result.targets, result.predictions, labels).flat(f"{name}/")
        del metrics[f"{name}/acc"]  # the run's own <split>/acc stays the one reported
        scores.update({key: value for key, value in metrics.items() if not math.isnan(value)})
        if name == "test" and result.rows_per_clip == 1:
            interval = bootstrap_accuracy(result.targets, result.predictions, seed=BOOTSTRAP_SEED)
            scores.update({"test/acc_low": interval.low, "test/acc_high": interval.high})
    return scores


def collect_metrics(
    spec: RunSpec,
    *,
    fit: FitResult,
    val: EvalResult,
    test: EvalResult,
    prepared: PreparedData,
    n_parameters: int,
    world_size: int,
    resumed: bool,
    fingerprints: list[str] | None,
) -> RunMetrics:
    """A finished run's ``metrics.json`` record: the best checkpoint's val/test results, the last epoch's
    training numbers, the prediction scores, the objective(s) and the run's facts."""
    last_epoch = fit.history[-1]
    scores = {
        **val.metrics("val"),
        **test.metrics("test"),
        "train/loss": last_epoch["train/loss"],
        "train/acc": last_epoch["train/acc"],
        **prediction_scores({"val": val, "test": test}, prepared.labels),
    }
    objectives = spec.objectives
    several = len(objectives) > 1
    return RunMetrics(
        scores=scores,
        objective=spec.objective.name,
        objective_mode=spec.objective.mode,
        objectives=[objective.name for objective in objectives] if several else None,
        objective_modes=[objective.mode for objective in objectives] if several else None,
        best_epoch=fit.best_epoch,
        epochs=spec.training.epochs,
        epochs_run=int(last_epoch["epoch"]),
        stopped_early=fit.stopped_early,
        n_parameters=n_parameters,
        train_seconds=fit.seconds,
        labels=prepared.labels,
        n_clips={name: len(split) for name, split in prepared.splits.items()},
        skipped=len(prepared.skipped),
        aggregate=spec.aggregate,
        world_size=world_size,
        resumed=resumed,
        perf=fit.perf,
        final_state_sha256_per_rank=fingerprints,
    )


def sweep_objective(metrics: RunMetrics) -> float | list[float]:
    """The value a sweep optimises (several objectives: their values); a diverged run raises instead."""
    # A sweep must see a failure, never a number, from a diverged run: a NaN val/loss beside a finite
    # val/acc is still one (and a NaN objective crashes a sweeper, Hydra issue #2237).
    non_finite = [f"{key}={value}" for key, value in metrics.scores.items() if not math.isfinite(value)]
    if non_finite:
        raise FloatingPointError(
            f"non-finite final metrics ({', '.join(non_finite)}): the run diverged; lower "
            f"optimizer.lr or set trainer.grad_clip"
        )
    values = metrics.objective_values()
    return values if len(values) > 1 else values[0]

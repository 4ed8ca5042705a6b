"""What a run writes beyond metrics.json's accuracy: predictions.csv (typed Predictions), the scores computed
from the predictions, and the seed/split independence repeats rely on. No training here."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score

from genre.data.clips import ClipDataset
from genre.data.prepare import PreparedData, SplitClips, prepare_data
from genre.experiment.outputs import clip_ids, prediction_scores, run_predictions
from genre.experiment.pipeline import build_pipeline
from genre.run_files import PREDICTIONS_FILE, Predictions, RunMetrics
from genre.training.evaluation import summarize
from genre.training.seeding import seed_everything
from helpers import TINY_DEMO, TINY_TRAINING, compose_run
from helpers.records import make_metrics

LABELS = ["blues", "jazz", "rock"]


def _prepared(root: str = "/data/corpus") -> PreparedData:
    paths = {
        name: [f"{root}/{genre}/{name}{i}.wav" for i, genre in enumerate(LABELS)] for name in ("train", "val", "test")
    }
    splits = {name: SplitClips(rows=np.arange(3), targets=np.arange(3), paths=p) for name, p in paths.items()}
    return PreparedData(cache=None, labels=LABELS, splits=splits)  # type: ignore[arg-type]


def _results(aggregate: str) -> dict:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 2, 3, generator=generator)  # 3 clips, 2 segments, 3 classes
    return {name: summarize(logits, torch.arange(3), aggregate) for name in ("val", "test")}


def test_clip_ids_are_paths_below_the_folder_holding_every_clip() -> None:
    every = ["/a/b/blues/1.wav", "/a/b/rock/2.wav", "/a/b/rock/deep/3.wav"]
    assert clip_ids(every[1:], every) == ["rock/2.wav", "rock/deep/3.wav"]
    # Two copies of one dataset give the same ids.
    assert clip_ids(["/elsewhere/blues/1.wav"], ["/elsewhere/blues/1.wav", "/elsewhere/rock/2.wav"]) == ["blues/1.wav"]


def test_predictions_round_trip_in_split_order_with_probabilities(tmp_path: Path) -> None:
    results = _results("mean")
    predictions = run_predictions(_prepared(), results)
    path = predictions.write(tmp_path)
    assert path.name == PREDICTIONS_FILE
    header = path.read_text().splitlines()[0].split(",")
    assert header == ["split", "clip_id", "path", "true", "predicted", "p/blues", "p/jazz", "p/rock"]
    read = Predictions.read(tmp_path)
    assert read is not None and not read.per_segment and read.labels == LABELS
    test = read.of_split("test")
    assert test.clip_id == ["blues/test0.wav", "jazz/test1.wav", "rock/test2.wav"]
    assert list(test.y_true) == [0, 1, 2] and list(test.y_pred) == list(results["test"].predictions)
    np.testing.assert_allclose(test.probabilities.sum(axis=1), 1.0, atol=1e-5)
    # The probabilities are the softmax of the mean segment logits, whose argmax is the prediction.
    assert list(test.probabilities.argmax(axis=1)) == list(test.y_pred)


def test_aggregate_none_writes_one_row_per_segment() -> None:
    predictions = run_predictions(_prepared(), _results("none"))
    test = predictions.of_split("test")
    assert predictions.per_segment and len(test.clip_id) == 6
    assert list(test.segment) == [0, 1, 0, 1, 0, 1]
    assert test.clip_id[:2] == ["blues/test0.wav"] * 2 and list(test.y_true) == [0, 0, 1, 1, 2, 2]


def test_a_damaged_predictions_file_reads_as_none(tmp_path: Path) -> None:
    (tmp_path / PREDICTIONS_FILE).write_text("split,clip_id\nval,a\n")
    assert Predictions.read(tmp_path) is None
    assert Predictions.read(tmp_path / "nowhere") is None


def test_scores_beyond_accuracy_match_scikit_learn_and_leave_out_undefined_ones() -> None:
    results = _results("mean")
    # A class missing from val: its recall is undefined and must not appear (a NaN score means divergence).
    results["val"].targets = np.array([0, 0, 1])
    scores = prediction_scores(results, LABELS)
    test = results["test"]
    assert scores["test/balanced_acc"] == pytest.approx(balanced_accuracy_score(test.targets, test.predictions))
    assert scores["test/macro_f1"] == pytest.approx(
        f1_score(test.targets, test.predictions, average="macro", labels=[0, 1, 2], zero_division=0)
    )
    recall = recall_score(test.targets, test.predictions, labels=[0, 1, 2], average=None, zero_division=0)
    assert [scores[f"test/recall/{name}"] for name in LABELS] == pytest.approx(list(recall))
    assert "val/recall/rock" not in scores and "val/recall/blues" in scores
    assert all(math.isfinite(value) for value in scores.values())
    assert scores["test/acc_low"] <= test.acc <= scores["test/acc_high"]
    assert "test/acc" not in scores and "val/acc" not in scores  # the run's own keys stay as they are
    # Per-segment results get no bootstrap interval (segments of one clip are no independent draws).
    assert "test/acc_low" not in prediction_scores(_results("none"), LABELS)


def test_mean_of_fold_metrics() -> None:
    def run(acc: float, seconds: float) -> RunMetrics:
        return make_metrics(
            scores={"val/acc": acc},
            n_parameters=3,
            train_seconds=seconds,
            labels=LABELS,
            n_clips={"train": 4},
        )

    mean = RunMetrics.mean([run(0.5, 1.0), run(0.7, 2.0)])
    assert mean.objective_value == pytest.approx(0.6) and mean.train_seconds == 3.0
    with pytest.raises(ValueError, match="runs"):
        RunMetrics.mean([])


def test_seed_changes_initialisation_and_crops_but_not_the_split(tmp_path: Path, cache_dir: Path) -> None:
    def prepared(*overrides: str):
        cfg = compose_run([*TINY_DEMO, *TINY_TRAINING, *overrides], tmp_path, cache_dir)
        return cfg, prepare_data(cfg.dataset, cfg.paths.cache_dir, progress=False)

    def weights(cfg) -> torch.Tensor:
        seed_everything(int(cfg.seed), True)
        model = build_pipeline(cfg, 6, torch.device("cpu")).model
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    def crops(cfg, data) -> list:
        train = data.splits["train"]
        dataset = ClipDataset(data.cache, train.rows, train.targets, segment_samples=22050, seed=int(cfg.seed))
        return [dataset[i][0][:8].tolist() for i in range(4)]

    splits = {}
    cases = (("seed1", ["seed=1"]), ("seed2", ["seed=2"]), ("split1", ["seed=1", "dataset.split.seed=1"]))
    for name, overrides in cases:
        cfg, data = prepared(*overrides)
        splits[name] = (cfg, data, {side: clips.paths for side, clips in data.splits.items()})
    (one, d1, s1), (two, d2, s2), (_, _, other_split) = splits["seed1"], splits["seed2"], splits["split1"]
    assert s1 == s2, "the training seed must not change the split"
    assert other_split != s1, "dataset.split.seed is the split's own seed"
    assert not torch.equal(weights(one), weights(two))
    assert torch.equal(weights(one), weights(one))
    assert crops(one, d1) != crops(two, d2)
    # k-fold folds, too, ignore the training seed.
    folds = [
        prepared("dataset/split=kfold", "dataset.split.folds=3", f"seed={seed}")[1].splits["test"].paths
        for seed in (1, 2)
    ]
    assert folds[0] == folds[1]

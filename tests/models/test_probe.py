"""The closed-form probe: its torch forward is scikit-learn's fitted model, C comes from inner CV on the
training examples, and bad settings name their parameter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from genre.models import ClosedFormProbe


def _clips(n_classes: int, per_class: int, bands: int = 6, frames: int = 5, seed: int = 0):
    """Feature maps ``(clips, bands, frames)`` whose class shifts a few bands, their targets and a noisy
    constant band (band 0 never varies, as a unit that never fires)."""
    gen = np.random.default_rng(seed)
    targets = np.repeat(np.arange(n_classes), per_class)
    x = gen.normal(size=(len(targets), bands, frames))
    x[np.arange(len(targets)), 1 + targets % (bands - 1)] += 1.5
    x[:, 0] = 0.0
    return torch.tensor(x, dtype=torch.float32), targets


def _solved(estimator: str, n_classes: int = 3, pooling: str = "meanmax", per_class: int = 8):
    x, targets = _clips(n_classes, per_class)
    probe = ClosedFormProbe(6, n_classes, estimator=estimator, pooling=pooling, inner_folds=4)
    pooled = probe.pool(x).double().numpy()
    solution = probe.solve(pooled, targets, np.arange(len(targets)), seed=0)
    return probe, x, pooled, targets, solution


@pytest.mark.parametrize("n_classes", [2, 3])
@torch.no_grad()
def test_logreg_logits_give_scikit_learns_probabilities_at_the_chosen_c(n_classes: int) -> None:
    probe, x, pooled, targets, solution = _solved("logreg", n_classes)
    assert solution.c in probe.c_grid and set(solution.inner_accuracy) == set(probe.c_grid)
    # Solved to a tight tolerance: the optimum itself, which the probe's (warm-started, reduced) refit must reach.
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=solution.c, tol=1e-10, max_iter=10000))
    reference.fit(pooled, targets)
    probabilities = probe(x).softmax(dim=1).double().numpy()
    np.testing.assert_allclose(probabilities, reference.predict_proba(pooled), atol=1e-5)
    # Features it never saw: the scaler's centre and scale travel with the module.
    unseen, _ = _clips(n_classes, 3, seed=7)
    np.testing.assert_allclose(
        probe(unseen).softmax(dim=1).double().numpy(),
        reference.predict_proba(probe.pool(unseen).double().numpy()),
        atol=1e-5,
    )


@torch.no_grad()
def test_with_more_dimensions_than_clips_the_solution_is_scikit_learns_on_the_full_vectors() -> None:
    # 16 clips, 80 dimensions: the probe solves in the clips' span; the weights must still be the optimum.
    x, targets = _clips(2, 8, bands=40)
    probe = ClosedFormProbe(40, 2, inner_folds=4)
    pooled = probe.pool(x).double().numpy()
    solution = probe.solve(pooled, targets, np.arange(len(targets)), seed=0)
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=solution.c, tol=1e-10, max_iter=10000))
    reference.fit(pooled, targets)
    unseen, _ = _clips(2, 3, bands=40, seed=5)
    np.testing.assert_allclose(
        probe(unseen).softmax(dim=1).double().numpy(),
        reference.predict_proba(probe.pool(unseen).double().numpy()),
        atol=1e-5,
    )


def test_the_inner_accuracy_of_every_c_is_scikit_learns_grid_search_on_the_same_folds() -> None:
    x, targets = _clips(3, 10)
    probe = ClosedFormProbe(6, 3, inner_folds=4)
    pooled, groups = probe.pool(x).double().numpy(), np.arange(len(targets))
    solution = probe.solve(pooled, targets, groups, seed=0)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
        {"logisticregression__C": list(probe.c_grid)},
        cv=StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=0),
        scoring="accuracy",
    ).fit(pooled, targets, groups=groups)
    assert list(solution.inner_accuracy.values()) == pytest.approx(search.cv_results_["mean_test_score"])


@torch.no_grad()
def test_svm_logits_are_scikit_learns_decision_values() -> None:
    probe, x, pooled, targets, solution = _solved("svm", 3)
    reference = make_pipeline(StandardScaler(), LinearSVC(C=solution.c, max_iter=5000, random_state=0))
    reference.fit(pooled, targets)
    np.testing.assert_allclose(probe(x).double().numpy(), reference.decision_function(pooled), atol=1e-4)


def test_the_chosen_c_is_the_best_inner_accuracy_and_ties_go_to_the_smaller_c() -> None:
    _, _, _, _, solution = _solved("logreg", 3)
    best = max(solution.inner_accuracy.values())
    assert solution.c == min(c for c, accuracy in solution.inner_accuracy.items() if accuracy == best)
    assert solution.inner_folds == 4 and solution.examples == 24


@pytest.mark.parametrize("pooling, width", [("mean", 6), ("max", 6), ("meanmax", 12)])
def test_pooling_over_frames(pooling: str, width: int) -> None:
    x = torch.arange(2 * 6 * 4, dtype=torch.float32).reshape(2, 6, 4)
    pooled = ClosedFormProbe(6, 3, pooling=pooling).pool(x)
    assert pooled.shape == (2, width)
    if pooling != "max":
        torch.testing.assert_close(pooled[:, :6], x.mean(dim=2))
    if pooling != "mean":
        torch.testing.assert_close(pooled[:, -6:], x.amax(dim=2))


def test_a_genre_absent_from_training_is_never_predicted_and_its_logit_stays_finite() -> None:
    x, targets = _clips(3, 6)
    probe = ClosedFormProbe(6, 4, inner_folds=3)  # genre 3 has no training clip
    probe.solve(probe.pool(x).double().numpy(), targets, np.arange(len(targets)), seed=0)
    logits = probe(x)
    assert torch.isfinite(logits).all() and (logits.argmax(dim=1) != 3).all()


def test_the_segments_of_one_clip_stay_in_one_inner_fold() -> None:
    # 3 genres x 2 clips, each clip cut into 4 segments: by clip there are 2 per genre, so 2 inner folds
    # (by segment there would be 8 per genre, enough for the 5 asked).
    x, targets = _clips(3, 8)
    probe = ClosedFormProbe(6, 3, inner_folds=5)
    clips = np.repeat(np.arange(6), 4)
    solution = probe.solve(probe.pool(x).double().numpy(), targets, clips, seed=0)
    assert solution.inner_folds == 2


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        ({"estimator": "forest"}, "estimator"),
        ({"pooling": "median"}, "pooling"),
        ({"c_grid": []}, "c_grid"),
        ({"c_grid": [1.0, -1.0]}, "c_grid"),
        ({"inner_folds": 1}, "inner_folds"),
        ({"max_iter": 0}, "max_iter"),
    ],
)
def test_bad_settings_name_their_parameter(kwargs: dict, parameter: str) -> None:
    with pytest.raises(ValueError, match=rf"^{parameter}: "):
        ClosedFormProbe(6, 3, **kwargs)


def test_too_few_training_clips_for_inner_cross_validation_is_refused() -> None:
    x, targets = _clips(3, 1)
    probe = ClosedFormProbe(6, 3)
    with pytest.raises(ValueError, match=r"^targets: a genre has fewer than 2 training clips"):
        probe.solve(probe.pool(x).double().numpy(), targets, np.arange(3), seed=0)


def test_late_fusion_solves_each_part_on_its_own_and_averages_their_probabilities() -> None:
    from genre.models import LateFusionProbe

    generator = torch.Generator().manual_seed(4)
    x = torch.randn(60, 5, 3, generator=generator)
    targets = torch.arange(60) % 3
    x[:, :2] += targets[:, None, None].float()  # part 0 (2 bands) carries the genre; part 1 (3 bands) noise
    fused = LateFusionProbe(5, 3, part_bands=[2, 3], pooling="mean", c_grid=[0.01, 1.0], inner_folds=3)
    pooled = fused.pool(x)
    groups = np.arange(60)
    solution = fused.solve(pooled.double().numpy(), targets.numpy(), groups, seed=0)
    alone = [ClosedFormProbe(b, 3, pooling="mean", c_grid=[0.01, 1.0], inner_folds=3) for b in (2, 3)]
    parts = x.split([2, 3], 1)
    solved = [p.solve(p.pool(part).double().numpy(), targets.numpy(), groups, 0) for p, part in zip(alone, parts)]
    assert [part.c for part in solution.parts] == [s.c for s in solved]
    assert set(solution.scalars()) == {"train/C_part0", "train/C_part1"}
    with torch.no_grad():
        expected = torch.stack([p(part).softmax(1) for p, part in zip(alone, parts)]).mean(0)
        assert torch.allclose(fused(x).softmax(1), expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"^part_bands: late fusion averages one probe per part"):
        LateFusionProbe(5, 3)
    with pytest.raises(ValueError, match=r"^part_bands: \[2, 2\] do not split the feature's 5 bands"):
        LateFusionProbe(5, 3, part_bands=[2, 2])

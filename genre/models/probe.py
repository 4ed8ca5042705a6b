"""Closed-form linear probes: the protocol behind the published frozen-embedding results.

Each example's features are pooled over time (mean, max, or both concatenated), standardised, and a
convex model (scikit-learn's multinomial logistic regression, or a linear SVM) is fitted in one solve,
its regularisation ``C`` chosen by cross-validation inside the training split (whole clips stay in one
inner fold). The solution is then held as plain torch tensors (the scaler's centre and scale, the
weights and biases), so checkpoints, evaluation, ``genre.predict`` and cross-validation treat the
probe as any other model: ``logits = W · (pool(x) - centre) / scale + b``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from genre.models.base import GenreModel, positive_int

POOLINGS = ("mean", "max", "meanmax")
ESTIMATORS = ("logreg", "svm")
# Logit given to a genre absent from the training split: never predicted, softmax stays finite.
_ABSENT_LOGIT_MARGIN = 30.0
# The kept model's solver tolerance (scikit-learn's default, 1e-4, is for the inner folds' many fits):
# warm-started or cold, the refit then lands on the same optimum to ~1e-6 in its probabilities.
_REFIT_TOLERANCE = 1e-7


@dataclass(frozen=True)
class ProbeSolution:
    """What one solve chose: ``C``, the inner cross-validation accuracy of every ``C`` tried, and the
    number of inner folds and training examples it used."""

    c: float
    inner_accuracy: dict[float, float]
    inner_folds: int
    examples: int
    # A late-fusion probe's: each part's own solution (then ``c`` is NaN and ``inner_accuracy`` empty).
    parts: tuple[ProbeSolution, ...] = ()

    def scalars(self) -> dict[str, float]:
        """The chosen ``C`` as ``train/C``, or each part's as ``train/C_part<i>``."""
        if not self.parts:
            return {"train/C": self.c}
        return {f"train/C_part{i}": part.c for i, part in enumerate(self.parts)}

    def describe(self) -> str:
        """One line per solve: each ``C`` tried and its inner accuracy, the chosen one first."""
        if self.parts:
            return "; ".join(f"part {i}: {part.describe()}" for i, part in enumerate(self.parts))
        tried = ", ".join(f"C={c:g}: {acc:.3f}" for c, acc in self.inner_accuracy.items())
        return f"C={self.c:g} (inner accuracy {tried})"


class ClosedFormProbe(GenreModel):
    """A linear probe on pooled features, fitted by :meth:`solve` instead of gradient steps.

    Args:
        n_bands: feature dimensions (a pretrained layer's units, or a spectrogram's bands).
        n_classes: number of genres.
        estimator: ``"logreg"`` (multinomial logistic regression, lbfgs) or ``"svm"`` (``LinearSVC``,
            one-vs-rest; its decision values are the logits, so its probabilities and loss are a softmax
            of margins, not calibrated).
        pooling: over the frames (patches) of an example: ``"mean"``, ``"max"`` or ``"meanmax"``
            (the two concatenated, jukemir's choice for musicnn).
        c_grid: the inverse regularisation strengths tried by the inner cross-validation, ascending
            (a tie goes to the stronger regularisation).
        inner_folds: inner cross-validation folds over the training clips (fewer when the smallest
            genre has fewer training clips; at least 2).
        max_iter: the solver's iteration cap.
    """

    # Declares to the run that this model is fitted by solve(), not by an optimizer.
    closed_form: ClassVar[bool] = True
    center: torch.Tensor
    scale: torch.Tensor

    def __init__(
        self,
        n_bands: int,
        n_classes: int,
        estimator: str = "logreg",
        pooling: str = "meanmax",
        c_grid: Sequence[float] = (0.001, 0.01, 0.1, 1.0, 10.0),
        inner_folds: int = 5,
        max_iter: int = 5000,
    ) -> None:
        super().__init__(n_bands, n_classes)
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator: {estimator!r} is not one of {', '.join(ESTIMATORS)}. Use logreg")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling: {pooling!r} is not one of {', '.join(POOLINGS)}. Use meanmax")
        grid = tuple(float(c) for c in c_grid)
        if not grid or any(not np.isfinite(c) or c <= 0 for c in grid):
            raise ValueError(
                f"c_grid: {list(c_grid)} is not a non-empty list of positive numbers. Use e.g. [0.1, 1, 10]"
            )
        self.estimator = estimator
        self.pooling = pooling
        self.c_grid = tuple(sorted(grid))
        self.inner_folds = positive_int("inner_folds", inner_folds)
        if self.inner_folds < 2:
            raise ValueError(f"inner_folds: {inner_folds} is below 2. Use e.g. 5")
        self.max_iter = positive_int("max_iter", max_iter)
        width = n_bands * (2 if pooling == "meanmax" else 1)
        self.register_buffer("center", torch.zeros(width))
        self.register_buffer("scale", torch.ones(width))
        self.linear = nn.Linear(width, n_classes)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, bands, frames)`` features -> ``(batch, width)`` pooled vectors."""
        self._check_input(x)
        x = x.float()
        if self.pooling == "mean":
            return x.mean(dim=2)
        if self.pooling == "max":
            return x.amax(dim=2)
        return torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1)

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, width)`` pooled vectors (:meth:`pool`) to ``(batch, n_classes)`` logits."""
        return self.linear((pooled - self.center) / self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, bands, frames)`` features to ``(batch, n_classes)`` logits."""
        return self.classify(self.pool(x))

    def solve(self, pooled: np.ndarray, targets: np.ndarray, groups: np.ndarray, seed: int) -> ProbeSolution:
        """Fit the probe on ``pooled`` training vectors ``(examples, width)`` with genre indices
        ``targets``; ``groups`` names each example's clip (its segments stay in one inner fold).

        Chooses ``C`` from :attr:`c_grid` by stratified group k-fold accuracy on these examples only
        (each inner fold standardised on its own training part), refits on all of them and copies the
        scaler and linear model into this module's tensors.
        """
        from sklearn.model_selection import StratifiedGroupKFold
        from threadpoolctl import threadpool_limits

        pooled = np.asarray(pooled, dtype=np.float64)
        targets = np.asarray(targets)
        width = self.center.numel()
        if pooled.ndim != 2 or pooled.shape[1] != width or not len(pooled) == len(targets) == len(groups):
            raise ValueError(
                f"pooled: shape {pooled.shape} with {len(targets)} targets and {len(groups)} groups; the probe "
                f"takes (examples, {width}) vectors, one target and group each"
            )
        folds = min(self.inner_folds, _smallest_class_in_clips(targets, groups))
        if folds < 2:
            raise ValueError(
                "targets: a genre has fewer than 2 training clips, too few for the inner cross-validation "
                "that chooses C. Use a larger dataset or split"
            )
        splits = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(pooled, targets, groups)
        # One BLAS thread: these are small dense problems (hundreds of examples), where OpenBLAS's worker
        # threads cost more than they give, and on a busy 2-core machine far more (42 s -> 4.8 s per
        # 5 x 5-fold search on the development set's 222 x 1506 training vectors; same C and accuracy).
        with threadpool_limits(limits=1):
            accuracy = np.zeros(len(self.c_grid))
            for train, test in splits:
                for i, fitted in enumerate(self._path(pooled[train], targets[train], seed)):
                    accuracy[i] += np.mean(fitted.predict(pooled[test]) == targets[test]) / folds
            best = int(np.argmax(accuracy))  # the first maximum: a tie goes to the smaller C
            *_, fitted = self._path(pooled, targets, seed, steps=best + 1, polish=True)
        self._copy_solution(fitted)
        return ProbeSolution(
            c=self.c_grid[best],
            inner_accuracy={c: float(score) for c, score in zip(self.c_grid, accuracy, strict=True)},
            inner_folds=folds,
            examples=len(pooled),
        )

    def _path(
        self, x: np.ndarray, y: np.ndarray, seed: int, steps: int | None = None, polish: bool = False
    ) -> Iterator[_Fitted]:
        """The probe fitted on ``x``, ``y`` at each ``C`` of the grid in turn (the first ``steps``; with
        ``polish``, the last of them solved to a tighter tolerance: the model the run keeps).

        Standardised as scikit-learn's ``StandardScaler`` does, then solved on the vectors' coordinates
        in their own span: an L2-penalised linear model's weights lie in the span of its training
        vectors, so with fewer examples than dimensions (a few hundred clips, 1506 musicnn mean‖max
        dimensions) the solution is the same and each solver step is that much cheaper. Logistic
        regression starts each ``C`` from the previous one's solution (warm start along the path, as
        ``LogisticRegressionCV`` does). The yielded fit is reused by the next step: use it before that.
        """
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import LinearSVC

        scaler = StandardScaler().fit(x)
        scaled = scaler.transform(x)
        _, _, basis = np.linalg.svd(scaled, full_matrices=False)  # (rank, width), orthonormal rows
        classifier = (
            LogisticRegression(max_iter=self.max_iter, random_state=seed, warm_start=True)
            if self.estimator == "logreg"
            else LinearSVC(max_iter=self.max_iter, random_state=seed)
        )
        coordinates = scaled @ basis.T
        grid = self.c_grid[:steps]
        for step, c in enumerate(grid):
            classifier.set_params(C=c)
            if polish and step == len(grid) - 1:
                classifier.set_params(tol=_REFIT_TOLERANCE)
            classifier.fit(coordinates, y)
            yield _Fitted(scaler.mean_, scaler.scale_, basis, classifier)

    @torch.no_grad()
    def _copy_solution(self, fitted: _Fitted) -> None:
        """The fitted scaler and classifier as this module's centre, scale, weight and bias."""
        classifier = fitted.classifier
        coef = np.asarray(classifier.coef_, dtype=np.float64) @ fitted.basis  # back from the span
        intercept = np.asarray(classifier.intercept_, dtype=np.float64).reshape(-1)
        classes = np.asarray(classifier.classes_, dtype=np.int64)
        if len(classes) == 2 and coef.shape[0] == 1:
            # Two genres: one decision value z for classes_[1]; logits (0, z) give softmax = sigmoid(z).
            coef = np.concatenate([np.zeros_like(coef), coef])
            intercept = np.concatenate([[0.0], intercept])
        weight = np.zeros((self.n_classes, coef.shape[1]))
        bias = np.full(self.n_classes, intercept.min() - _ABSENT_LOGIT_MARGIN)
        weight[classes], bias[classes] = coef, intercept
        device = self.center.device
        self.center.copy_(torch.as_tensor(fitted.center, dtype=torch.float32, device=device))
        self.scale.copy_(torch.as_tensor(fitted.scale, dtype=torch.float32, device=device))
        self.linear.weight.copy_(torch.as_tensor(weight, dtype=torch.float32, device=device))
        self.linear.bias.copy_(torch.as_tensor(bias, dtype=torch.float32, device=device))


@dataclass(frozen=True)
class _Fitted:
    """One fit of the path: the scaler's centre and scale, the span's orthonormal basis, the classifier."""

    center: np.ndarray
    scale: np.ndarray
    basis: np.ndarray
    classifier: Any

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classifier.predict(((x - self.center) / self.scale) @ self.basis.T)


def _smallest_class_in_clips(targets: np.ndarray, groups: np.ndarray) -> int:
    """Clips of the genre with the fewest training clips."""
    clips = {(int(t), int(g)) for t, g in zip(targets, groups, strict=True)}
    counts: dict[int, int] = {}
    for target, _ in clips:
        counts[target] = counts.get(target, 0) + 1
    return min(counts.values())

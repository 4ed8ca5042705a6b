"""Late fusion: one closed-form probe per part of a fused feature, their probabilities averaged.

Early fusion (one probe on the concatenated parts) lets the strongest part's dimensions dominate the
fit; late fusion fits each part's probe on its own (its own ``C``, chosen by its own inner
cross-validation) and averages what they say, which keeps a part that generalises differently (e.g.
to an unseen instrument) from being drowned out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from genre.models.base import GenreModel, positive_ints
from genre.models.probe import ClosedFormProbe, ProbeSolution


class LateFusionProbe(GenreModel):
    """One :class:`ClosedFormProbe` per part (bands ``part_bands[0]``, then the next ``part_bands[1]``, ...);
    the logits are the log of the parts' mean probabilities.

    Args:
        n_bands: the fused feature's dimensions (the sum of ``part_bands``).
        n_classes: number of genres.
        part_bands: each part's dimensions, in order; the run passes the fused feature's
            (``feature=fusion``), so a config leaves it out.
        **probe: the arguments of every part's :class:`ClosedFormProbe` (estimator, pooling, c_grid, ...).
    """

    closed_form: ClassVar[bool] = True

    def __init__(self, n_bands: int, n_classes: int, part_bands: Sequence[int] | None = None, **probe: object) -> None:
        super().__init__(n_bands, n_classes)
        if part_bands is None:
            raise ValueError(
                "part_bands: late fusion averages one probe per part of a fused feature. Use feature=fusion "
                "(or model=logreg for one probe)"
            )
        parts = positive_ints("part_bands", part_bands)
        if len(parts) < 2 or sum(parts) != n_bands:
            raise ValueError(f"part_bands: {list(parts)} do not split the feature's {n_bands} bands into 2 or more")
        self.part_bands = parts
        self.probes = nn.ModuleList([ClosedFormProbe(bands, n_classes, **probe) for bands in parts])  # type: ignore[arg-type]

    @property
    def _members(self) -> list[ClosedFormProbe]:
        return [probe for probe in self.probes if isinstance(probe, ClosedFormProbe)]

    def _widths(self) -> list[int]:
        return [probe.center.numel() for probe in self._members]

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, bands, frames)`` -> every part's pooled vector, side by side."""
        self._check_input(x)
        return torch.cat([probe.pool(part) for probe, part in zip(self._members, x.split(self.part_bands, 1))], 1)

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """Pooled vectors (:meth:`pool`) -> log of the parts' mean probabilities ``(batch, n_classes)``."""
        parts = pooled.split(self._widths(), dim=1)
        probabilities = torch.stack([p.classify(v).float().softmax(dim=1) for p, v in zip(self._members, parts)])
        return probabilities.mean(dim=0).clamp_min(torch.finfo(torch.float32).tiny).log()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, bands, frames)`` features -> ``(batch, n_classes)`` logits."""
        return self.classify(self.pool(x))

    def solve(self, pooled: np.ndarray, targets: np.ndarray, groups: np.ndarray, seed: int) -> ProbeSolution:
        """Solve every part's probe on its columns of ``pooled``; the solution lists each part's."""
        bounds = np.cumsum([0, *self._widths()])
        solutions = tuple(
            probe.solve(pooled[:, start:end], targets, groups, seed)
            for probe, start, end in zip(self._members, bounds[:-1], bounds[1:])
        )
        first = solutions[0]
        return ProbeSolution(
            c=float("nan"), inner_accuracy={}, inner_folds=first.inner_folds, examples=first.examples, parts=solutions
        )

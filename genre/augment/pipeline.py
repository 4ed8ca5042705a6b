"""Running a composed set of augmentations in stage order around the feature extractor."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

STAGES: tuple[str, ...] = ("waveform", "features", "batch")


class Augmentation(nn.Module):
    """Base class. ``stage`` says where in the step it applies:

    * ``waveform``: ``forward(audio (batch, samples)) -> audio``
    * ``features``: ``forward(features (batch, bands, frames)) -> features``
    * ``batch``: ``forward(features, target_probs (batch, classes)) -> (features, target_probs)``
    """

    stage: ClassVar[str]


class Augmentations:
    """Augmentations of all stages, applied in stage order (waveform, features, batch), each stage in
    the order given. With none, the step is exactly features(audio) and hard targets.
    """

    def __init__(self, augmentations: Iterable[Augmentation], n_classes: int) -> None:
        self.items = list(augmentations)
        for item in self.items:
            if getattr(item, "stage", None) not in STAGES:
                raise TypeError(f"{type(item).__name__} has no stage in {STAGES}")
        self.n_classes = n_classes

    def __bool__(self) -> bool:
        return bool(self.items)

    def _stage(self, stage: str) -> list[Augmentation]:
        return [item for item in self.items if item.stage == stage]

    def __repr__(self) -> str:
        return "Augmentations(" + ", ".join(repr(item) for item in self.items) + ")" if self.items else "none"

    @torch.no_grad()
    def __call__(self, audio: Tensor, targets: Tensor, features: Callable[[Tensor], Tensor]) -> tuple[Tensor, Tensor]:
        """Augmented features of a waveform batch, and the targets (class ids, or probabilities once a
        batch-stage augmentation such as mixup has mixed examples)."""
        for item in self._stage("waveform"):
            audio = item(audio)
        inputs = features(audio)
        for item in self._stage("features"):
            inputs = item(inputs)
        batch_stage = self._stage("batch")
        if not batch_stage:
            return inputs, targets
        probabilities = F.one_hot(targets, self.n_classes).to(inputs.dtype)
        for item in batch_stage:
            inputs, probabilities = item(inputs, probabilities)
        return inputs, probabilities

"""Features and model from a run's config: the one builder training and ``genre.predict`` share."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from genre.features.extractor import FeatureExtractor
from genre.models.base import count_trainable


@dataclass
class Pipeline:
    """What turns a batch of waveforms into logits: the feature extractor, then the model."""

    features: FeatureExtractor
    model: nn.Module

    @property
    def n_parameters(self) -> int:
        """Trainable parameter values of the model."""
        return count_trainable(self.model)

    def describe(self) -> str:
        """One line for the log: the model, its size and the features it reads."""
        return (
            f"Model {type(self.model).__name__}: {self.n_parameters} trainable parameters; features "
            f"{type(self.features.transform).__name__}: {self.features.n_bands} bands"
        )


def build_pipeline(cfg: DictConfig, n_classes: int, device: torch.device | str = "cpu") -> Pipeline:
    """Instantiate ``cfg.feature`` and ``cfg.model`` (for ``n_classes`` genres) on ``device``.

    The model's weights are initialised from the global torch generator, so seed first to reproduce them.
    """
    features = instantiate(cfg.feature).to(device)
    model = instantiate(cfg.model, n_bands=features.n_bands, n_classes=n_classes).to(device)
    return Pipeline(features=features, model=model)

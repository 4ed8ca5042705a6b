"""Features and model from a run's config: the one builder training and ``genre.cli.predict`` share."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from genre import features as feature_classes
from genre import models as model_classes
from genre.core.errors import config_keys
from genre.features.extractor import FeatureExtractor
from genre.models.base import count_trainable
from genre.run_files.stored_config import ALLOWED_TARGETS
from genre.training.finetuned import Backbone, FineTuned

if TYPE_CHECKING:
    from genre.experiment.spec import Parts


@dataclass
class Pipeline:
    """What turns a batch of waveforms into logits: the feature extractor, then the model."""

    features: FeatureExtractor
    model: nn.Module

    @property
    def n_parameters(self) -> int:
        """Trainable parameter values of the model."""
        return count_trainable(self.model)

    def to(self, device: torch.device | str) -> Pipeline:
        """Move features and model to ``device``; returns self."""
        self.features.to(device)
        self.model.to(device)
        return self

    def sync_batch_norm(self) -> None:
        """Data-parallel on GPUs: the model's batch norms normalise over the global batch. A fine-tuned
        network keeps its own (its pretrained statistics, or each replica's with batch_norm=update)."""
        if isinstance(self.model, FineTuned):
            self.model.head = nn.SyncBatchNorm.convert_sync_batchnorm(self.model.head)
        else:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)

    def describe(self) -> str:
        """One line for the log: the model, its size and the features it reads."""
        if isinstance(self.model, FineTuned):
            network = self.model.features
            return (
                f"Model FineTuned({type(network.transform).__name__} -> {type(self.model.head).__name__}): "
                f"{self.n_parameters} trainable parameters ({count_trainable(self.model.backbone)} in the "
                f"network); features {type(network.transform).__name__}: {network.n_bands} bands, computed in "
                f"every step from {type(self.features.transform).__name__} ({self.features.n_bands} bands)"
            )
        return (
            f"Model {type(self.model).__name__}: {self.n_parameters} trainable parameters; features "
            f"{type(self.features.transform).__name__}: {self.features.n_bands} bands"
        )


def build_pipeline(cfg: DictConfig | Parts, n_classes: int, device: torch.device | str = "cpu") -> Pipeline:
    """Instantiate ``cfg.feature`` and ``cfg.model`` (of a config, or a run spec's parts) for ``n_classes``
    genres on ``device``.

    The model's weights are initialised from the global torch generator, so seed first to reproduce them.
    """
    features = instantiate(cfg.feature)
    extra = _feature_facts(get_class(str(cfg.model._target_)), features)
    model = instantiate(cfg.model, n_bands=features.n_bands, n_classes=n_classes, **extra)
    return assemble(features, model).to(device)


def _feature_facts(model_class: Any, features: FeatureExtractor) -> dict[str, Any]:
    """What a model may need of its feature besides ``n_bands``: a fused feature's ``part_bands``, for a
    model that takes them (late fusion)."""
    part_bands = getattr(features.transform, "part_bands", None)
    if part_bands is None or "part_bands" not in inspect.signature(model_class).parameters:
        return {}
    return {"part_bands": list(part_bands)}


def assemble(features: FeatureExtractor, model: nn.Module) -> Pipeline:
    """The pipeline of a configured feature and model. A trainable pretrained network (fine-tuning) moves
    into the model (:class:`~genre.training.finetuned.FineTuned`, so the optimizer, data-parallel replicas
    and checkpoints see it) and leaves its fixed front end as the features computed in every step."""
    transform = features.transform
    if not (isinstance(transform, Backbone) and transform.trainable is True):
        return Pipeline(features=features, model=model)
    # The network reads the front end's output as it is: no log, no standardisation in front of it.
    front = FeatureExtractor(transform.front_end(), log="none", standardize=False)
    return Pipeline(features=front, model=FineTuned(features, model))


def _classes(package: Any, slot: str) -> dict[str, Callable[..., Any]]:
    """The allowed names of ``slot`` and the class each names, taken from genre's own ``package``."""
    return {name: getattr(package, name.rpartition(".")[2]) for name in ALLOWED_TARGETS[slot]}


# What a stored config may name for its feature and model, looked up by name (never imported from the
# name): genre.run_files.stored_config has checked every _target_ against the same names before this runs.
STORED_CLASSES: dict[str, dict[str, Callable[..., Any]]] = {
    "feature": _classes(feature_classes, "feature"),
    "feature.transform": _classes(feature_classes, "feature.transform"),
    "model": _classes(model_classes, "model"),
}


def rebuild_pipeline(config: Mapping[str, Any], n_classes: int, device: torch.device | str = "cpu") -> Pipeline:
    """The feature extractor and model of a stored run config (plain containers that passed
    :func:`genre.run_files.stored_config.check_stored_config`), built from :data:`STORED_CLASSES` by name."""
    features = _construct(config["feature"], "feature")
    extra = _feature_facts(STORED_CLASSES["model"].get(config["model"].get("_target_")), features)
    model = _construct(config["model"], "model", n_bands=features.n_bands, n_classes=n_classes, **extra)
    return assemble(features, model).to(device)


def _construct(node: Any, slot: str, **extra: Any) -> Any:
    """Build the stored ``node`` at config key ``slot`` from its class in :data:`STORED_CLASSES`."""
    if not isinstance(node, Mapping) or node.get("_target_") not in STORED_CLASSES[slot]:
        raise ValueError(f"{slot}: a stored config that did not pass genre.run_files.stored_config.check_stored_config")
    arguments = {
        key: _construct(value, f"{slot}.{key}") if f"{slot}.{key}" in STORED_CLASSES else _plain(value)
        for key, value in node.items()
        if key != "_target_"
    }
    with config_keys(slot):
        return STORED_CLASSES[slot][node["_target_"]](**arguments, **extra)


def _plain(value: Any) -> Any:
    """A stored value as Hydra's instantiate hands it over: nested containers as OmegaConf ones."""
    return OmegaConf.create(value) if isinstance(value, dict | list) else value

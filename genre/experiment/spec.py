"""The run spec: what a run reads from its config, parsed, checked and resolved once, before any process
is spawned.

Building it *is* the config's validation. Each setting declares its config key and its rule beside its
field (``Annotated[type, Setting(key, rule)]`` with a rule of :mod:`genre.experiment.checks`, in the spirit
of scikit-learn's parameter constraints); the few rules between settings (a segment no longer than the
clips, warm-up no longer than the run, the objective and its mode, the devices) are in :func:`build_spec`.
Each rule has this one home, and a bad value is one :class:`~genre.core.errors.ConfigError` line naming its key.

The spec is frozen and pickles: every process of a data-parallel run receives it as it is. Only the
parts built by ``_target_`` (dataset source, feature, model, optimizer, scheduler, augment) stay config
nodes (:class:`Parts`); :class:`~genre.experiment.phases.Run` reads nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Protocol, cast, get_type_hints

import torch
from omegaconf import DictConfig, OmegaConf

from genre.core.errors import ConfigError, config_keys
from genre.core.segment_defaults import closed_form_target
from genre.experiment.checks import (
    MAX_CLIP_SECONDS,
    Flag,
    Interval,
    Options,
    check_cache_dir,
    check_fft_window,
    check_mandatory,
    check_writable,
)
from genre.experiment.hparams import FOLD_KEY, run_hparams
from genre.experiment.objectives import Objective, parse_objectives
from genre.experiment.outputs import stored_config
from genre.training.device import Precision, resolve_device, resolve_precision
from genre.training.early_stopping import EarlyStopping
from genre.training.segments import AGGREGATES
from genre.training.unfreezing import Unfreezing

# Numbers inside the parts built by _target_, checked before anything is built (their classes check the rest).
PART_NUMBERS: dict[str, Interval] = {
    "optimizer.lr": Interval(float, 0, closed="neither", example="1e-3"),
    "optimizer.weight_decay": Interval(float, 0, optional=True, example="1e-2"),
    "scheduler.warmup_epochs": Interval(float, 0, optional=True, example="1.0"),
}


class Rule(Protocol):
    """A declared constraint: the checked (converted) value, or a ConfigError naming ``key``."""

    def check(self, key: str, value: Any) -> Any: ...


@dataclass(frozen=True)
class Setting:
    """A spec field's declaration (``Annotated[type, Setting(key, rule)]``): read from config ``key`` and
    checked by ``rule`` when the spec is built."""

    key: str
    rule: Rule


def declared(cls: type) -> dict[str, Setting]:
    """Each declared field of the dataclass ``cls``: field name -> its :class:`Setting`."""
    hints = get_type_hints(cls, include_extras=True)
    return {
        name: extra
        for name, hint in hints.items()
        for extra in getattr(hint, "__metadata__", ())
        if isinstance(extra, Setting)
    }


def read_settings(cls: type, cfg: DictConfig) -> dict[str, Any]:
    """The checked value of each declared field of ``cls`` in ``cfg`` (field name -> value)."""
    return {
        name: it.rule.check(it.key, OmegaConf.select(cfg, it.key, default=None)) for name, it in declared(cls).items()
    }


@dataclass(frozen=True)
class Runtime:
    """Where and how the run computes: the resolved device (each rank takes its replica's), precision, processes."""

    devices: Annotated[int, Setting("trainer.devices", Interval(int, 1, example="1"))]
    device: torch.device
    precision: Precision


@dataclass(frozen=True)
class Segments:
    """Clip and segment lengths: training crops and evaluation segments, in seconds as set and in samples."""

    sample_rate: Annotated[int, Setting("dataset.sample_rate", Interval(int, 1, example="22050"))]
    clip_seconds: Annotated[
        float,
        Setting(
            "dataset.clip_seconds", Interval(float, 0, MAX_CLIP_SECONDS, closed="right", example="30.0", unit=" s")
        ),
    ]
    train_seconds: Annotated[
        float, Setting("trainer.segment_seconds", Interval(float, 0, closed="neither", example="5.0"))
    ]
    eval_seconds: Annotated[float, Setting("eval.segment_seconds", Interval(float, 0, closed="neither", example="5.0"))]

    @property
    def train_samples(self) -> int:
        """A training crop's length in samples."""
        return int(round(self.train_seconds * self.sample_rate))

    @property
    def eval_samples(self) -> int:
        """An evaluation segment's length in samples (validation and test clips are cut into them)."""
        return int(round(self.eval_seconds * self.sample_rate))


@dataclass(frozen=True)
class Loader:
    """Batches and loader processes: training crops, evaluation clips."""

    batch_size: Annotated[int, Setting("trainer.batch_size", Interval(int, 1, example="16"))]
    eval_batch_size: Annotated[int, Setting("trainer.eval_batch_size", Interval(int, 1, example="8"))]
    num_workers: Annotated[int, Setting("trainer.num_workers", Interval(int, 0, example="0"))]
    crops_per_clip: Annotated[int, Setting("trainer.crops_per_clip", Interval(int, 1, example="1"))]


@dataclass(frozen=True)
class Training:
    """The training loop's settings."""

    epochs: Annotated[int, Setting("trainer.epochs", Interval(int, 1, example="30"))]
    label_smoothing: Annotated[float, Setting("trainer.label_smoothing", Interval(float, 0, 1, example="0.1"))]
    grad_clip: Annotated[float | None, Setting("trainer.grad_clip", Interval(float, 0, optional=True, example="1.0"))]
    patience: Annotated[
        int | None,
        Setting(
            "trainer.early_stopping.patience",
            Interval(int, 1, optional=True, fix="Use e.g. 5, or null to never stop early"),
        ),
    ]
    min_delta: Annotated[float, Setting("trainer.early_stopping.min_delta", Interval(float, 0, example="0.0"))]
    deterministic: Annotated[bool, Setting("trainer.deterministic", Flag())]
    progress: Annotated[bool, Setting("trainer.progress", Flag())]


@dataclass(frozen=True)
class FineTuning:
    """How a trainable pretrained network (``feature.transform.trainable=true``) trains beside its head."""

    backbone_lr_scale: Annotated[
        float, Setting("trainer.finetune.backbone_lr_scale", Interval(float, 0, closed="neither", example="0.1"))
    ]
    head_epochs: Annotated[int, Setting("trainer.finetune.head_epochs", Interval(int, 0, example="5"))]
    warmup_epochs: Annotated[float, Setting("trainer.finetune.warmup_epochs", Interval(float, 0, example="1.0"))]
    # Whether the feature's network trains at all (else the settings above are unused).
    enabled: bool = False

    def unfreezing(self, steps_per_epoch: int) -> Unfreezing | None:
        """The schedule of the network's training in a run of ``steps_per_epoch`` steps per epoch (None: frozen)."""
        if not self.enabled:
            return None
        return Unfreezing.of_epochs(self.head_epochs, self.warmup_epochs, steps_per_epoch)


@dataclass(frozen=True)
class Parts:
    """The parts built by ``_target_``, as nodes of the run's one resolved config (their errors keep full keys)."""

    dataset: DictConfig
    feature: DictConfig
    model: DictConfig
    optimizer: DictConfig
    scheduler: DictConfig
    augment: DictConfig


@dataclass(frozen=True)
class RunSpec:
    """One run, as every process of it runs it (see the module doc)."""

    seed: Annotated[int, Setting("seed", Interval(int, example="42"))]
    aggregate: Annotated[
        str, Setting("eval.aggregate", Options(AGGREGATES, "Use mean (average segment logits), vote or none"))
    ]
    objectives: tuple[Objective, ...]
    runtime: Runtime
    segments: Segments
    loader: Loader
    training: Training
    finetune: FineTuning
    parts: Parts
    run_dir: Path
    cache_dir: str
    # The interrupted run's last.pt this run continues (None: a fresh run).
    resume_from: str | None
    # What TensorBoard's HPARAMS tab shows (genre.experiment.hparams).
    hparams: dict[str, Any]
    # The keys among them that the run's sweep varies (listed first in the tab).
    varying: set[str]
    # The run's resolved config as checkpoints store it and TensorBoard shows it: plain data, no URL password.
    config: dict[str, Any]

    @property
    def objective(self) -> Objective:
        """The first objective: it picks the best checkpoint."""
        return self.objectives[0]

    def tracker(self) -> EarlyStopping:
        """A fresh tracker of the first objective, with the early-stopping settings."""
        return EarlyStopping(
            name=self.objective.name,
            mode=self.objective.mode,
            patience=self.training.patience,
            min_delta=self.training.min_delta,
        )


def build_spec(cfg: DictConfig, resume_from: str | None = None) -> RunSpec:
    """Check the composed ``cfg`` and parse it into the run's spec (continuing ``resume_from``'s ``last.pt``).

    Raises :class:`ConfigError` (one line naming the key and the fix) for the first bad setting.
    """
    check_mandatory(cfg)
    own = OmegaConf.masked_copy(cfg, [str(key) for key in cfg if key != "hydra"])  # Hydra's node is not ours
    plain = cast(dict[str, Any], OmegaConf.to_container(own, resolve=True))
    root = OmegaConf.create(plain)
    segments = Segments(**read_settings(Segments, root))
    _check_segments(segments, OmegaConf.select(root, "feature.transform.n_fft", default=None))
    training = Training(**read_settings(Training, root))
    for key, rule in PART_NUMBERS.items():
        rule.check(key, OmegaConf.select(root, key, default=None))
    _check_warm_up(root, training.epochs)
    runtime = _runtime(root)
    _check_closed_form(root, runtime.devices)
    finetune = _fine_tuning(root, training.epochs)
    loader = Loader(**read_settings(Loader, root))
    top = read_settings(RunSpec, root)
    check_cache_dir(OmegaConf.select(root, "paths.cache_dir"))
    check_writable("paths.output_dir", OmegaConf.select(root, "paths.output_dir"))
    fold = OmegaConf.select(root, FOLD_KEY, default=None)
    hparams, varying = run_hparams(top["seed"], fold if isinstance(fold, int) else None)
    return RunSpec(
        **top,
        objectives=parse_objectives(root),
        runtime=runtime,
        segments=segments,
        loader=loader,
        training=training,
        finetune=finetune,
        parts=Parts(**{part.name: root[part.name] for part in fields(Parts)}),
        run_dir=Path(str(root.paths.output_dir)),
        cache_dir=str(OmegaConf.select(root, "paths.cache_dir")),
        resume_from=resume_from,
        hparams=hparams,
        varying=varying,
        config=stored_config(root),
    )


def _check_segments(segments: Segments, n_fft: int | None) -> None:
    """Training crops and evaluation segments: no longer than the clips, no shorter than the FFT window."""
    for name, seconds in (("train_seconds", segments.train_seconds), ("eval_seconds", segments.eval_seconds)):
        key = declared(Segments)[name].key
        if seconds > segments.clip_seconds:
            raise ConfigError(
                key,
                f"{seconds:g} s is longer than the {segments.clip_seconds} s clips (dataset.clip_seconds)",
                "Use a segment no longer than the clips",
            )
        check_fft_window(key, seconds, segments.sample_rate, n_fft)


def _check_warm_up(cfg: DictConfig, epochs: int) -> None:
    warmup = OmegaConf.select(cfg, "scheduler.warmup_epochs", default=None)
    if warmup is not None and float(warmup) > epochs:
        raise ConfigError(
            "scheduler.warmup_epochs",
            f"{warmup} epochs of warm-up is longer than the {epochs}-epoch run",
            "Use fewer warm-up epochs than trainer.epochs",
        )


def _check_closed_form(cfg: DictConfig, devices: int) -> None:
    """A model solved in one step (``closed_form = True``, e.g. model=logreg) runs in one process, unaugmented."""
    if not closed_form_target(str(OmegaConf.select(cfg, "model._target_"))):
        return  # (a bad target is named when the model is built)
    if OmegaConf.select(cfg, "feature.transform.trainable", default=False) is True:
        raise ConfigError(
            "feature.transform.trainable",
            "a closed-form model is solved on a frozen network's features, not trained with the network",
            "Use feature.transform.trainable=false, or a model trained by gradient (model=linear, model=mlp)",
        )
    if devices > 1:
        raise ConfigError("trainer.devices", "a closed-form model is solved in one process", "Use trainer.devices=1")
    if cfg.augment:
        raise ConfigError(
            "augment",
            "a closed-form model is solved on the training clips as they are, without augmentation",
            "Use augment=none",
        )


def _fine_tuning(cfg: DictConfig, epochs: int) -> FineTuning:
    """The fine-tuning settings, checked against the run: head epochs leave at least one to fine-tune."""
    enabled = OmegaConf.select(cfg, "feature.transform.trainable", default=False) is True
    finetune = FineTuning(**read_settings(FineTuning, cfg), enabled=enabled)
    key = declared(FineTuning)["head_epochs"].key
    if not enabled and finetune.head_epochs:
        raise ConfigError(
            key, "applies only to a trainable network", "Set feature.transform.trainable=true, or head_epochs=0"
        )
    if finetune.head_epochs >= epochs:
        raise ConfigError(
            key,
            f"{finetune.head_epochs} head epochs leave none of the {epochs}-epoch run to fine-tune the network",
            "Use fewer head epochs than trainer.epochs",
        )
    return finetune


def _runtime(cfg: DictConfig) -> Runtime:
    """The device and precision resolved, and a process count the device can run."""
    devices = int(read_settings(Runtime, cfg)["devices"])
    with config_keys("trainer"):
        device = resolve_device(cfg.trainer.device)
        precision = resolve_precision(cfg.trainer.precision, device)
    if devices > 1 and device.type == "cuda" and devices > torch.cuda.device_count():
        raise ConfigError(
            "trainer.devices",
            f"{devices} processes but {torch.cuda.device_count()} GPU(s)",
            "Use at most one process per GPU",
        )
    if devices > 1 and device.type not in ("cuda", "cpu"):
        raise ConfigError(
            "trainer.devices",
            f"data-parallel training needs CUDA or CPU, not {device.type}",
            "Use trainer.device=cuda or cpu",
        )
    return Runtime(devices=devices, device=device, precision=precision)

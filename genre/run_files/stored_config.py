"""What a config read back from disk may hold: the gate every stored config passes before anything is
built from it.

A run stores its resolved config in its checkpoints (``best.pt``, ``last.pt``) and a cross-validation
job in ``cv.json``; ``genre.cli.predict`` and ``resume=`` rebuild the run from it. Such a file may come from
someone else, so its config is data, never a list of things to call: every ``_target_`` must be one of
the names below, in the place genre's own config tree puts it (a model class where the model goes);
the only Hydra keys allowed are ``_target_`` and a boolean ``_partial_``; every value is a plain
string, number, boolean, null, list or string-keyed mapping; and no string may hold an OmegaConf
interpolation (``${oc.env:...}``, ``${oc.decode:...}`` or a resolver could read the environment or
turn a string into a new ``_target_`` after the check). Anything else is refused with one line naming
the file and the key, before a single object is built.

The names are genre's own classes and the few library classes its config tree names (torch's
optimisers, Optuna's pruners); ``tests/security/test_stored_config.py`` checks that they are exactly
the ``_target_`` values of ``genre/conf`` and that each names the class it should.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from genre.core.errors import UserInputError, one_line

_FEATURES = ("genre.features.FeatureExtractor",)
_TRANSFORMS = tuple(
    f"genre.features.{name}"
    for name in (
        "MelSpectrogram",
        "MFCC",
        "Chromagram",
        "MidiSpectrogram",
        "Musicnn",
        "BasicPitch",
        "NoteStatistics",
        "Fusion",
    )
)
_MODELS = tuple(
    f"genre.models.{name}"
    for name in (
        "CNN",
        "CNN1D",
        "ClosedFormProbe",
        "CRNN",
        "FCN",
        "LateFusionProbe",
        "LinearBaseline",
        "MLP",
        "ResNet",
        "ShortChunkCNN",
    )
)
_PRUNERS = tuple(
    f"optuna.pruners.{name}"
    for name in (
        "MedianPruner",
        "NopPruner",
        "PatientPruner",
        "PercentilePruner",
        "SuccessiveHalvingPruner",
        "HyperbandPruner",
        "ThresholdPruner",
    )
)

# Where a stored config may name something to build (a dotted key; ``*`` stands for any one key) and
# the names allowed there.
ALLOWED_TARGETS: dict[str, frozenset[str]] = {
    "feature": frozenset(_FEATURES),
    "feature.transform": frozenset(_TRANSFORMS),
    "model": frozenset(_MODELS),
    "optimizer": frozenset(f"torch.optim.{name}" for name in ("Adam", "AdamW", "SGD")),
    "scheduler": frozenset(
        f"genre.training.schedules.{name}"
        for name in (
            "warmup_constant",
            "warmup_cosine",
            "warmup_cosine_restarts",
            "warmup_exponential",
            "warmup_linear",
            "warmup_plateau",
            "warmup_step",
            "one_cycle",
        )
    ),
    "augment.*": frozenset(
        f"genre.augment.{name}"
        for name in (
            "Mixup",
            "RandomGain",
            "SpecAugment",
            "PitchShift",
            "RandomSpeed",
            "RandomFilter",
            "ColoredNoise",
            "PolarityInversion",
        )
    ),
    "dataset.source": frozenset(
        (
            "genre.data.sources.DemoSource",
            "genre.data.sources.FolderSource",
            "genre.data.gtzan.GTZANSource",
            "genre.data.fma.FMASource",
        )
    ),
    "dataset.split": frozenset(
        (
            "genre.data.splits.StratifiedSplit",
            "genre.data.splits.KFoldSplit",
            "genre.data.splits.PredefinedSplit",
            "genre.data.gtzan.FaultFilteredSplit",
        )
    ),
    "optuna_trial.pruner": frozenset(_PRUNERS),
    "optuna_trial.pruner.wrapped_pruner": frozenset(_PRUNERS),
}

# Hydra's instantiation keys a stored config may use; the others (``_args_``, ``_recursive_``,
# ``_convert_``...) change what gets called or with what, and genre's own configs never store them.
ALLOWED_HYDRA_KEYS = frozenset(("_target_", "_partial_"))
# Deeper than any config genre writes: a guard against a crafted file that nests without end.
MAX_DEPTH = 32


class StoredConfigError(UserInputError):
    """A config read back from a file holds something other than plain data genre can rebuild from."""


def check_stored_config(config: Any, origin: str | Path) -> dict[str, Any]:
    """Return ``config`` (the config stored in the file ``origin``) if it is safe to build from; raise
    :class:`StoredConfigError` (one line naming ``origin`` and the key) otherwise.

    Nothing is imported, resolved or called: the check reads the plain containers ``torch.load`` /
    ``json.load`` returned.
    """
    if not isinstance(config, dict):
        raise _refuse(origin, "", f"the stored config is a {type(config).__name__}, not a mapping")
    _check_node(config, (), origin)
    return config


def _check_node(node: Any, path: tuple[str, ...], origin: str | Path) -> None:
    if len(path) > MAX_DEPTH:
        raise _refuse(origin, _dotted(path), f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, Mapping):
        _check_mapping(node, path, origin)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _check_node(item, (*path, str(index)), origin)
    elif isinstance(node, str):
        if "${" in node:
            raise _refuse(origin, _dotted(path), "holds an interpolation (${...}); a stored config is resolved data")
    elif not (node is None or isinstance(node, bool | int | float)):
        raise _refuse(origin, _dotted(path), f"holds a {type(node).__name__}, not plain data")


def _check_mapping(node: Mapping[Any, Any], path: tuple[str, ...], origin: str | Path) -> None:
    for key in node:
        if not isinstance(key, str):
            raise _refuse(origin, _dotted(path), f"has a {type(key).__name__} key ({_shown(key)}); keys are strings")
        if "${" in key:
            raise _refuse(origin, _dotted((*path, key)), "is a key holding an interpolation (${...})")
        if len(key) > 1 and key.startswith("_") and key.endswith("_") and key not in ALLOWED_HYDRA_KEYS:
            raise _refuse(origin, _dotted((*path, key)), "is a Hydra instantiation key genre never stores")
    if "_partial_" in node and not isinstance(node["_partial_"], bool):
        raise _refuse(origin, _dotted((*path, "_partial_")), "is not true or false")
    if "_target_" in node or "_partial_" in node:
        _check_target(node.get("_target_"), path, origin)
    for key, value in node.items():
        if key != "_target_":
            _check_node(value, (*path, key), origin)


def _check_target(target: Any, path: tuple[str, ...], origin: str | Path) -> None:
    allowed = _allowed_at(path)
    where = _dotted((*path, "_target_"))
    if allowed is None:
        raise _refuse(origin, where, f"names {_shown(target)} where genre builds nothing")
    if not isinstance(target, str) or target not in allowed:
        raise _refuse(
            origin,
            where,
            f"names {_shown(target)}, which is not one of genre's own classes for {_dotted(path)} "
            f"({', '.join(sorted(name.rpartition('.')[2] for name in allowed))})",
        )


def _allowed_at(path: tuple[str, ...]) -> frozenset[str] | None:
    """The names allowed as ``_target_`` of the node at ``path``; None where none is."""
    for slot, names in ALLOWED_TARGETS.items():
        parts = tuple(slot.split("."))
        if len(parts) == len(path) and all(p == "*" or p == q for p, q in zip(parts, path)):
            return names
    return None


def _shown(value: Any) -> str:
    """A short, one-line rendering of a hostile value (repr escapes newlines)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _dotted(path: tuple[str, ...]) -> str:
    text = ".".join(repr(part)[1:-1] for part in path) or "(top level)"
    return text if len(text) <= 120 else text[:117] + "..."


def _refuse(origin: str | Path, key: str, problem: str) -> StoredConfigError:
    return StoredConfigError(
        one_line(
            f"{origin}: refused: its stored config's {key} {problem}. genre rebuilds a run only from plain "
            f"data naming its own classes: use a checkpoint written by genre, or retrain the run"
        )
    )

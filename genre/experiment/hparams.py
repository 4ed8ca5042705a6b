"""What TensorBoard's HPARAMS tab shows for a run: the keys that vary within its sweep, its seed and fold.

A column that holds the same value in every row hides the ones that matter (the tab shows five at first),
so a run lists only what its sweep varies: for a multirun, the keys its sweeper sweeps (comma lists and
``choice``/``range``/``interval`` on the command line, and the sweeper's ``params``, read from the
sweep's ``multirun.yaml``); for a single run, what its command line set. ``seed`` and ``fold`` (under
cross-validation) are always there: they tell repeated runs of one configuration apart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.types import RunMode

from genre.core.errors import TrainingInterrupted
from genre.core.overrides import parse_override
from genre.tracking.tensorboard import RunLogger
from genre.training.callbacks import StoppedByCallback

log = logging.getLogger(__name__)

# Keys a run always lists (when it has them): they tell runs of one configuration apart.
ALWAYS = ("seed", "fold")
# The config key ``fold`` shows.
FOLD_KEY = "dataset.split.fold"
# The scalar tags the tab shows as metrics (each run's last logged value), besides the run's objectives.
METRICS = ("val/acc", "val/loss", "test/acc", "test/loss")


def run_hparams(seed: int, fold: int | None) -> tuple[dict[str, Any], set[str]]:
    """The run's HPARAMS entry (the varying keys' values, numbers as floats, then ``seed`` and ``fold``) and
    the keys among them that its sweep varies."""
    params: dict[str, Any] = {}
    varying: set[str] = set()
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        overrides = dict(parse_override(override) for override in hydra_cfg.overrides.task)
        swept = swept_keys(Path(hydra_cfg.runtime.output_dir)) if hydra_cfg.mode == RunMode.MULTIRUN else None
        # A single run (or a sweep without its multirun.yaml): what its command line set.
        # The fold has its own column (a CV job's folds set it in no override).
        varying = (set(overrides) if swept is None else swept) - {"resume", FOLD_KEY}
        choices = hydra_cfg.runtime.choices
        for key in sorted(varying & set(overrides)):
            # A config group by its option's name (feature=mel), anything else by its value.
            params[key] = str(choices[key]) if key in choices else _number_or_text(overrides[key])
    params["seed"] = seed
    if fold is not None:
        params["fold"] = fold
        varying.add("fold")
    return params, varying


def swept_keys(job_dir: Path) -> set[str] | None:
    """The keys the sweep of the job in ``job_dir`` sweeps, from the sweep's ``multirun.yaml`` (in
    ``job_dir`` or a folder above it); None when there is none to read."""
    for folder in (job_dir, *list(job_dir.parents)[:3]):
        path = folder / "multirun.yaml"
        if path.is_file():
            break
    else:
        return None
    try:
        # Read as plain data: nothing in it is resolved or instantiated.
        hydra_node = (yaml.safe_load(path.read_text()) or {}).get("hydra") or {}
        arguments = [str(item) for item in (hydra_node.get("overrides") or {}).get("task") or []]
        params = (hydra_node.get("sweeper") or {}).get("params") or {}
        if isinstance(params, Mapping):
            arguments += [f"{key}={value}" for key, value in params.items()]
        parsed = OverridesParser.create().parse_overrides(arguments)
    # An unreadable record: say so, and show every override instead.
    except (OSError, yaml.YAMLError, AttributeError, HydraException) as exc:
        log.warning("Could not read the swept keys from %s (%s): HPARAMS lists every override", path, exc)
        return None
    return {override.key_or_group for override in parsed if override.is_sweep_override()}


def _number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


@contextmanager
def hparams_session(
    logger: RunLogger | None, params: Mapping[str, Any], varying: set[str], objectives: Sequence[str], fresh: bool
) -> Iterator[None]:
    """The run's HPARAMS session around its phases: opened first (when ``fresh``: a resumed run's is already
    open), closed with how the block ended: success, pruned (a callback stopped it) or failure. An
    interrupted run stays open (Running): ``resume=`` continues it and closes it."""
    if logger is None:  # another rank's
        yield
        return
    if fresh:
        tags = [*METRICS, *(name for name in objectives if "/" in name and name not in METRICS)]
        logger.hparams_start(params, tags, varying)
    try:
        yield
    except StoppedByCallback:
        logger.hparams_end("pruned")
        raise
    except TrainingInterrupted:
        raise
    except Exception:
        logger.hparams_end("failure")
        raise
    logger.hparams_end("success")

"""Continuing an interrupted run: ``python run.py resume=<run dir>`` (config code: which keys may change).

The run's own stored config (in ``last.pt``) is used as it was, so the continued run is the same run;
only settings that cannot change its result may be given again.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from genre.core.errors import ConfigError
from genre.core.overrides import parse_override
from genre.run_files import LAST_CHECKPOINT, Checkpoint

# Where and how to run, not what: these may differ when a run continues (e.g. on another node).
RESUMABLE_OVERRIDES: tuple[str, ...] = ("trainer.progress", "trainer.num_workers", "trainer.device", "paths.cache_dir")


def resume_config(cfg: DictConfig) -> tuple[DictConfig, Path]:
    """The stored config of the run in ``cfg.resume`` (with the allowed overrides applied) and its ``last.pt``."""
    run_dir = Path(str(cfg.resume)).expanduser()
    last = run_dir / LAST_CHECKPOINT
    if not last.is_file():
        raise ConfigError(
            "resume",
            f"'{run_dir}' holds no {LAST_CHECKPOINT}",
            "Point resume at the output directory of a run that was interrupted",
        )
    stored = OmegaConf.create(Checkpoint.load(last).config)
    apply_resumable_overrides(cfg, stored)
    OmegaConf.update(stored, "paths.output_dir", str(run_dir), force_add=True)
    OmegaConf.update(stored, "resume", str(run_dir), force_add=True)
    return stored, last


def apply_resumable_overrides(cfg: DictConfig, stored: DictConfig) -> None:
    """Copy this launch's command-line overrides from ``cfg`` into the ``stored`` config being resumed;
    :class:`ConfigError` for any override that would change the run (only :data:`RESUMABLE_OVERRIDES` may)."""
    if not HydraConfig.initialized():
        return
    for override in HydraConfig.get().overrides.task:
        key = parse_override(override)[0]
        if key == "resume":
            continue
        if key not in RESUMABLE_OVERRIDES:
            raise ConfigError(
                "resume",
                f"'{override}' would change the run being resumed",
                f"Give only resume=<run dir> (and {', '.join(RESUMABLE_OVERRIDES)}); "
                f"start a new run to change anything else",
            )
        OmegaConf.update(stored, key, OmegaConf.select(cfg, key), force_add=True)

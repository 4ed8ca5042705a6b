"""Pruning, on the job's side: a run started by the Optuna sweeper reports its objective after every
epoch to its own trial, and stops when the study's pruner says so.

The sweeper gives each job ``optuna_trial.number``; ``hparams_search=optuna`` fills in the rest of
``optuna_trial`` from the sweeper's config (study name, storage URL, pruner), so the job finds its trial
through the storage wherever it runs: in the sweep's process, a joblib worker or a SLURM node. A pruned
run keeps its checkpoints, ends with :class:`RunPruned`, and its sweeper tells the trial PRUNED.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

# The config key the sweeper sets per job.
TRIAL_KEY = "optuna_trial"
TRIAL_NUMBER_KEY = f"{TRIAL_KEY}.number"


class RunPruned(Exception):
    """The study's pruner stopped the run after ``epoch`` (its checkpoints are kept)."""

    def __init__(self, epoch: int, trial: int | None = None) -> None:
        self.epoch = epoch
        self.trial = trial
        super().__init__(f"pruned at epoch {epoch}" + (f" (trial {trial})" if trial is not None else ""))

    def __reduce__(self) -> tuple[Any, ...]:
        # Crosses process boundaries (joblib, submitit) with its own arguments, not the message.
        return (RunPruned, (self.epoch, self.trial))


@dataclass
class TrialReporter:
    """Reports ``objective`` after each epoch to trial ``number`` of the stored study: an epoch callback
    (:class:`genre.training.callbacks.EpochCallback`) that ``run.py`` injects, returning whether the pruner
    stops the run there. Picklable (it travels to spawned ranks): the study opens on first use."""

    storage: str
    study_name: str
    number: int
    objective: str
    pruner: dict[str, Any] | None = None
    enabled: bool = True
    _trial: Any = field(default=None, init=False, repr=False, compare=False)

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> bool:
        """Report ``epoch``'s objective to the trial; whether the study's pruner stops the run there."""
        from optuna.exceptions import UpdateFinishedTrialError
        from sqlalchemy.exc import SQLAlchemyError

        value = metrics.get(self.objective)
        if not self.enabled or value is None:
            return False
        try:
            trial = self._open()
            trial.report(float(value), step=epoch)
            prune = bool(trial.should_prune()) and math.isfinite(float(value))
        except UpdateFinishedTrialError:
            # Its sweep is gone and a later one failed the trial (no heartbeat): train on, unreported.
            log.warning(
                "Trial %d of study %s has already finished: no longer reporting epochs", self.number, self.study_name
            )
            self.enabled = False
            return False
        except SQLAlchemyError as exc:  # the database is busy or unreachable: this epoch goes unreported
            log.warning("Could not report epoch %d to trial %d: %s", epoch, self.number, str(exc).splitlines()[0])
            return False
        if prune:
            log.info(
                "Trial %d pruned at epoch %d (%s %.4f): the study's pruner stops it",
                self.number,
                epoch,
                self.objective,
                value,
            )
        return prune

    def pruned(self, epoch: int) -> RunPruned:
        """The exception that ends the run after the pruner stopped it at ``epoch`` (the sweeper marks the
        trial PRUNED on it): ``run.py`` raises it in place of the trainer's ``StoppedByCallback``."""
        return RunPruned(epoch, self.number)

    def _open(self) -> Any:
        if self._trial is None:
            import optuna
            from hydra.utils import instantiate

            from genre.sweeps.optuna.storage_url import with_password_from_environment
            from genre.sweeps.optuna.study_storage import job_storage

            storage = job_storage(with_password_from_environment(self.storage))
            study_id = storage.get_study_id_from_name(self.study_name)
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, self.number)
            pruner = instantiate(self.pruner) if self.pruner else None
            study = optuna.load_study(study_name=self.study_name, storage=storage, pruner=pruner)
            self._trial = optuna.trial.Trial(study, trial_id)
        return self._trial


def trial_reporter(cfg: DictConfig) -> TrialReporter | None:
    """The epoch reporter of a run started by the Optuna sweeper (``optuna_trial.number`` set), else None."""
    node = cfg.get(TRIAL_KEY)
    if node is None or node.get("number") is None:
        return None
    if not node.get("storage"):
        log.info("The study is in memory (hydra.sweeper.storage=null): epochs are not reported, nor pruned")
        return None
    objective = cfg.objective
    if not isinstance(objective, str):
        objectives = list(objective)
        if len(objectives) > 1:
            log.info("Multi-objective study: epochs are not reported (Optuna prunes single-objective studies only)")
            return None
        objective = objectives[0]
    pruner = node.get("pruner")
    pruner_cfg = (
        cast(dict[str, Any], OmegaConf.to_container(pruner, resolve=True)) if isinstance(pruner, DictConfig) else None
    )
    return TrialReporter(
        storage=str(node.storage),
        study_name=str(node.study_name),
        number=int(node.number),
        objective=str(objective),
        pruner=pruner_cfg,
    )

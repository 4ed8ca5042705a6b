"""Asking the study for trials, launching each as a Hydra job, and telling the study how each ended.

Two schedules:

- ``async`` (the default): up to ``n_jobs`` trials run at once, and a new trial is asked and launched as
  soon as any of them ends, so a short trial never waits for the slowest one of a batch. Each trial is
  one single-job ``launch`` call, made from its own thread; the launcher runs it elsewhere (a joblib
  worker process, a submitit process or SLURM job), so the calls overlap.
- ``batch``: ``n_jobs`` trials are asked together and the next batch waits for the slowest of them,
  which gives a seeded sampler the same trial order on every run (``async`` order depends on timing).

Hydra's basic launcher runs jobs inside this process, one at a time: there each trial is asked once
the previous one has ended (``n_jobs`` has no effect), which is ``async`` with one worker.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from genre.core.upstream import BasicLauncher, failed_job_error, optuna_trial_id
from genre.sweeps.jobs.failures import FailureBudget, is_pruned
from genre.sweeps.optuna.pruning import TRIAL_NUMBER_KEY
from genre.sweeps.optuna.search_space import SearchSpace
from genre.sweeps.optuna.study_storage import Heartbeats, fail_stale_trials

log = logging.getLogger(__name__)

SCHEDULES = ("async", "batch")
# The trial user attribute naming the run dir of the trial's job.
RUN_DIR_ATTR = "run_dir"


@dataclass
class Launched:
    """A trial asked from the study and the job that runs it."""

    trial: optuna.Trial
    job_num: int
    overrides: list[str]


@dataclass
class Outcome:
    """How a job's trial ended, as told to the study."""

    state: TrialState
    values: list[float] | None = None
    reason: str | None = None


def outcome_of(ret: JobReturn, n_objectives: int) -> Outcome:
    """A finished job's trial state and values: COMPLETE with finite values of the right count, PRUNED
    when the study's pruner stopped it, FAIL otherwise (an exception, a NaN, a wrong count)."""
    if ret.status != JobStatus.COMPLETED:
        if is_pruned(ret):
            return Outcome(TrialState.PRUNED, reason=str(failed_job_error(ret)))
        error = failed_job_error(ret)
        return Outcome(TrialState.FAIL, reason=f"{type(error).__name__}: {error}")
    value = ret.return_value
    try:
        values = [float(v) for v in value] if isinstance(value, (list, tuple)) else [float(value)]
    except (TypeError, ValueError):
        return Outcome(TrialState.FAIL, reason=f"the run returned {value!r}, not a number")
    if len(values) != n_objectives:
        return Outcome(
            TrialState.FAIL,
            reason=f"the run returned {len(values)} value(s) for {n_objectives} "
            f"direction(s): objective and hydra.sweeper.direction must have the same length",
        )
    if not all(math.isfinite(v) for v in values):
        return Outcome(TrialState.FAIL, reason=f"the run returned non-finite values {values}")
    return Outcome(TrialState.COMPLETE, values=values)


class TrialScheduler:
    """Runs ``n_trials`` trials of ``study`` through ``launcher``, ``n_jobs`` at a time."""

    def __init__(
        self,
        study: optuna.Study,
        space: SearchSpace,
        launcher: Any,
        *,
        n_trials: int,
        n_jobs: int,
        schedule: str,
        budget: FailureBudget,
        heartbeats: Heartbeats,
        retried: bool,
        validate: Any = None,
        run_dir: Callable[[int], str] | None = None,
    ) -> None:
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
        if n_jobs < 1:
            raise ValueError(f"n_jobs must be a positive count, got {n_jobs}")
        self.study = study
        self.space = space
        self.launcher = launcher
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.schedule = schedule
        self.budget = budget
        self.heartbeats = heartbeats
        self.retried = retried
        self.validate = validate
        self.run_dir = run_dir
        self.n_objectives = len(study.directions)
        self.asked = 0
        self.stopping = False
        self.fatal: JobReturn | None = None
        self.returns: list[JobReturn] = []
        self.numbers: list[int] = []  # this sweep's trials (a resumed study holds others too)

    def run(self) -> list[JobReturn]:
        """Run the trials; raise the job's own error once more than ``max_failure_rate`` of them failed."""
        in_process = isinstance(self.launcher, BasicLauncher)
        if in_process and self.n_jobs > 1:
            log.info(
                "The basic launcher runs one job at a time in this process: n_jobs=%d has no effect (use "
                "hydra/launcher=joblib or submitit for parallel trials)",
                self.n_jobs,
            )
        with self.heartbeats:
            if self.schedule == "batch":
                self._run_batches(self.n_jobs)
            elif in_process:
                self._run_batches(1)
            else:
                self._run_async(self.n_jobs)
        if self.fatal is not None:
            _ = self.fatal.return_value  # re-raises the job's exception, with its traceback
        return self.returns

    # --- the two schedules ---------------------------------------------------------------------------------

    def _run_batches(self, size: int) -> None:
        while self._may_ask():
            batch: list[Any] = []
            while len(batch) < size and self._may_ask():
                batch.append(self._ask())
            returns = self._launch(batch)
            for launched, ret in zip(batch, returns):
                self._tell(launched, ret)

    def _run_async(self, slots: int) -> None:
        log.info("Asynchronous trials: up to %d at once, a new one as soon as one ends", slots)
        if hasattr(self.launcher, "concurrent_jobs"):  # IsolatedJoblibLauncher (hydra/launcher=joblib)
            # One job per launch call: without this each job took every core's threads while slots - 1 ran.
            self.launcher.concurrent_jobs = slots
        with ThreadPoolExecutor(max_workers=slots, thread_name_prefix="trial") as pool:
            running: dict[Future[Sequence[JobReturn]], Launched] = {}
            while True:
                while len(running) < slots and self._may_ask():
                    launched = self._ask()
                    running[pool.submit(self._launch, [launched])] = launched
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    launched = running.pop(future)
                    self._tell(launched, future.result()[0])

    # --- ask, launch, tell -----------------------------------------------------------------------------------

    def _may_ask(self) -> bool:
        if self.stopping or self.asked >= self.n_trials:
            return False
        sampler = self.study.sampler
        return not (isinstance(sampler, optuna.samplers.GridSampler) and sampler.is_exhausted(self.study))

    def _ask(self) -> Launched:
        """A new trial (or one queued: enqueued by hand, or a killed sweep's, re-queued by ``retry_failed``)."""
        fail_stale_trials(self.study, self.retried)
        with warnings.catch_warnings():
            # Optuna expects heartbeats with study.optimize; this sweeper records them itself (Heartbeats).
            warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used", UserWarning)
            trial = self.study.ask(fixed_distributions=self.space.distributions)
        for name, value in self.space.fixed.items():
            trial.set_user_attr(name, value)  # shown beside the parameters (dashboard, trials table)
        if self.run_dir is not None:
            trial.set_user_attr(RUN_DIR_ATTR, self.run_dir(self.asked))  # known before the job ends, or is killed
        self.numbers.append(trial.number)
        self.heartbeats.add(optuna_trial_id(trial))
        launched = Launched(
            trial=trial,
            job_num=self.asked,
            overrides=[*self.space.overrides(trial.params), f"++{TRIAL_NUMBER_KEY}={trial.number}"],
        )
        self.asked += 1
        if self.validate is not None:
            try:
                self.validate([launched.overrides])  # a typo fails here once, not in every trial
            except Exception:
                self._finish(launched, Outcome(TrialState.FAIL, reason="its overrides do not compose"))
                raise
        return launched

    def _launch(self, batch: list[Launched]) -> Sequence[JobReturn]:
        try:
            return self.launcher.launch([item.overrides for item in batch], initial_job_idx=batch[0].job_num)
        except BaseException:
            for item in batch:  # the launcher itself broke: these trials will not come back
                self._finish(item, Outcome(TrialState.FAIL, reason="the launcher failed"))
            raise

    def _tell(self, launched: Launched, ret: JobReturn) -> None:
        outcome = outcome_of(ret, self.n_objectives)
        self.returns.append(ret)
        run_dir = OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir") if ret.hydra_cfg is not None else None
        if run_dir is not None:  # where the job actually ran
            with contextlib.suppress(UpdateFinishedTrialError):  # finished elsewhere: _finish says so
                launched.trial.set_user_attr(RUN_DIR_ATTR, str(run_dir))
        self._finish(launched, outcome)
        if outcome.state == TrialState.FAIL:
            log.warning(
                "Failed experiment (trial %d, job %d): %s", launched.trial.number, launched.job_num, outcome.reason
            )
        elif outcome.state == TrialState.PRUNED:
            log.info("Trial %d (job %d) %s", launched.trial.number, launched.job_num, outcome.reason)
        if self.budget.record([ret], self.n_trials) and self.fatal is None:
            self.stopping, self.fatal = True, ret

    def _finish(self, launched: Launched, outcome: Outcome) -> None:
        self.heartbeats.remove(optuna_trial_id(launched.trial))
        try:
            self.study.tell(launched.trial, values=outcome.values, state=outcome.state)
        except UpdateFinishedTrialError:
            # Another sweep on the study failed it meanwhile (its heartbeats were late): keep that.
            log.warning(
                "Trial %d was already finished by another process; its result is not stored", launched.trial.number
            )

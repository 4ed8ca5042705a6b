"""Read a sweep's jobs from their run folders alone: overrides, config choices, metrics and status.

Every job dir holds ``.hydra/`` (written by Hydra before the job starts), ``status.json`` (written by
:class:`~genre.sweeps.jobs.callbacks.JobStatusRecorder`) and, once finished, ``metrics.json``. Nothing here
needs the sweep's process, so a killed or still-running sweep can be read too. A cross-validation job
(``cv.folds=k``) holds ``cv.json`` and one run dir per fold (``fold0/``...) instead of ``metrics.json``.

Every file is read as plain data of the shape genre writes (:mod:`genre.run_files.records`; the ``.hydra/``
files as YAML with nothing resolved: a ``${oc.env:...}`` stays the string it is). A job dir holding a
damaged file is skipped with its reason (:class:`SkippedJob`); the other jobs are read as usual.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from genre.core.errors import DamagedFileError
from genre.core.overrides import parse_override
from genre.run_files import TENSORBOARD_DIR, CrossValidationMetrics, RunMetrics
from genre.run_files.records import is_kind, json_kind
from genre.sweeps.jobs.status import COMPLETED, FAILED, KILLED, PRUNED, RUNNING, JobStatus
from genre.sweeps.optuna.pruning import TRIAL_NUMBER_KEY

log = logging.getLogger(__name__)

# A job dir whose status is unknown: Hydra created it, but it left neither a status record nor metrics.
INCOMPLETE = "incomplete"
# Config groups whose choice is worth a column even when not overridden (the product's question).
CHOICE_COLUMNS = ("feature", "model")


@dataclass
class JobRun:
    """What one job left in its run dir."""

    run_dir: Path
    num: int
    overrides: list[str]
    choices: dict[str, str]
    objective: str
    objective_mode: str
    status: str
    metrics: RunMetrics | None = None
    record: JobStatus | None = None
    epochs_done: int | None = None
    # A cross-validation job: each finished fold's metrics (``metrics`` is then their mean).
    folds: dict[int, RunMetrics] | None = None
    config: dict | None = None

    def fold_dir(self, fold: int) -> Path:
        """The run dir of fold ``fold`` of a cross-validation job."""
        return self.run_dir / CrossValidationMetrics.fold_dir(fold)

    @property
    def params(self) -> dict[str, str]:
        """``key: value`` of each command-line override of this job (``+``/``~`` prefixes dropped), less the
        Optuna trial number the sweeper adds (:attr:`trial`)."""
        pairs = dict(parse_override(override) for override in self.overrides)
        pairs.pop(TRIAL_NUMBER_KEY, None)
        return pairs

    @property
    def trial(self) -> int | None:
        """The number of the Optuna trial this job ran, if an Optuna sweeper started it."""
        number = dict(parse_override(override) for override in self.overrides).get(TRIAL_NUMBER_KEY)
        return int(number) if number is not None else None


def find_job_dirs(sweep_dir: Path) -> list[Path]:
    """Every job dir under ``sweep_dir``: those holding Hydra's ``.hydra/overrides.yaml``."""
    return sorted(
        path.parent.parent
        for path in Path(sweep_dir).glob("**/.hydra/overrides.yaml")
        if path.parent.parent != Path(sweep_dir)
    )


@dataclass(frozen=True)
class SkippedJob:
    """A job dir left out of a sweep's summary, and why (a damaged file, named)."""

    run_dir: Path
    reason: str


def read_job(run_dir: Path) -> JobRun:
    """Read one job dir; :class:`~genre.core.errors.DamagedFileError` (one line naming the file) when one of its
    files is not what genre and Hydra write."""
    hydra_dir = run_dir / ".hydra"
    overrides = read_yaml(hydra_dir / "overrides.yaml", "list of text")
    hydra_cfg = read_yaml(hydra_dir / "hydra.yaml", "mapping")
    config = read_yaml(hydra_dir / "config.yaml", "mapping")
    num = select(hydra_cfg, "hydra.job.num")
    choices = select(hydra_cfg, "hydra.runtime.choices")
    if not (num is None or is_kind(num, "whole number")) or not (choices is None or is_kind(choices, "mapping")):
        raise DamagedFileError(
            f"{hydra_dir / 'hydra.yaml'}: hydra.job.num or hydra.runtime.choices is not what Hydra writes. "
            "Restore it, or remove that job dir"
        )
    choices = {
        str(key): str(value)
        for key, value in (choices or {}).items()
        if not str(key).startswith("hydra/") and value is not None
    }
    metrics, folds = read_metrics(run_dir)
    record = JobStatus.read(run_dir)
    # The run's own record of its objective wins; a job that never finished has only its config.
    objective = metrics.objective if metrics else str(config.get("objective", "val/acc"))
    mode = metrics.objective_mode if metrics else str(config.get("objective_mode", "max"))
    job = JobRun(
        run_dir=run_dir,
        num=num if num is not None else -1,
        overrides=overrides,
        choices=choices,
        objective=objective,
        objective_mode=mode,
        status=_status(record, metrics is not None),
        metrics=metrics,
        record=record,
        folds=folds,
        config=config,
    )
    if job.status == PRUNED and record is not None and record.pruned_epoch is not None:
        job.epochs_done = int(record.pruned_epoch)
    elif job.status != COMPLETED:
        job.epochs_done = _epochs_logged(run_dir / TENSORBOARD_DIR, objective)
    return job


def read_yaml(path: Path, kind: str) -> Any:
    """The YAML document in ``path`` as plain data of ``kind`` (``mapping``, ``list of text``), nothing in it
    resolved; :class:`~genre.core.errors.DamagedFileError` for a file that is missing, unreadable or of another
    shape."""
    try:
        data = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise DamagedFileError(f"{path}: missing, though Hydra writes it first. Remove that job dir") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())[:160]
        raise DamagedFileError(f"{path}: not readable YAML ({reason}). Restore it, or remove that job dir") from None
    if not is_kind(data, kind):
        raise DamagedFileError(f"{path}: holds a {json_kind(data)}, not a {kind}. Restore it, or remove that job dir")
    return data


def select(config: Any, key: str) -> Any:
    """The value at the dotted ``key`` of plain nested mappings (None where there is none). Never resolves an
    interpolation: a value such as ``${oc.env:HOME}`` is returned as that string."""
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def scalar_at(config: Any, key: str) -> str | int | float | bool | None:
    """The plain value at the dotted ``key`` (None where there is none, or where a damaged config holds a list
    or mapping there: a seed or fold is a scalar)."""
    value = select(config, key)
    return value if isinstance(value, (str, int, float, bool)) else None


def read_metrics(run_dir: Path) -> tuple[RunMetrics | None, dict[int, RunMetrics] | None]:
    """A run's metrics, or a cross-validation job's mean over its finished folds and each fold's metrics;
    :class:`~genre.core.errors.DamagedFileError` for a damaged ``metrics.json`` or ``cv.json``."""
    cv = CrossValidationMetrics.read(run_dir, strict=True)
    if cv is None:
        return RunMetrics.read(run_dir, strict=True), None
    folds = {fold: RunMetrics.read(run_dir / cv.fold_dir(fold), strict=True) for fold in range(cv.folds)}
    done = {fold: metrics for fold, metrics in folds.items() if metrics is not None}
    return (RunMetrics.mean(list(done.values())) if done else None), done


def read_sweep(sweep_dir: Path, skipped: list[SkippedJob] | None = None) -> list[JobRun]:
    """Every readable job of a sweep, in job order. A job dir with a damaged file is left out, logged, and
    added to ``skipped`` (when given) with its reason."""
    jobs = []
    for run_dir in find_job_dirs(sweep_dir):
        try:
            jobs.append(read_job(run_dir))
        except DamagedFileError as exc:
            log.warning("Skipped job dir %s: %s", run_dir, exc)
            if skipped is not None:
                skipped.append(SkippedJob(run_dir, str(exc)))
    return sorted(jobs, key=lambda job: (job.num, str(job.run_dir)))


def _status(record: JobStatus | None, has_metrics: bool) -> str:
    if record is None:
        return COMPLETED if has_metrics else INCOMPLETE
    if record.status == RUNNING:
        # Same host and the process is gone: it was killed (SIGKILL, OOM killer, a cancelled sweep).
        return KILLED if record.process_is_gone() else RUNNING
    if record.status in (COMPLETED, FAILED, PRUNED):
        return record.status
    return INCOMPLETE


def _epochs_logged(log_dir: Path, objective: str) -> int | None:
    """How many epochs an unfinished job validated, from its TensorBoard curve of ``objective`` (None: none logged)."""
    if not log_dir.is_dir():
        return None
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # Its directory watcher logs each file it steps past at INFO.
    logging.getLogger("tensorboard").setLevel(logging.WARNING)
    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 1, "tensors": 1})
    try:
        accumulator.Reload()
        events = accumulator.Scalars(objective)
    except (KeyError, OSError) as exc:  # no epoch finished yet, or a file being written
        log.debug("No %s in %s: %s", objective, log_dir, exc)
        return None
    return max(event.step for event in events) if events else None

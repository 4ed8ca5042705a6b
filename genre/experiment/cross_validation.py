"""Cross-validation as one job: ``python run.py cv.folds=5`` trains fold 0..4 one after another.

Each fold is the run ``dataset/split=kfold dataset.split.folds=5 dataset.split.fold=i`` would be (the
grid form of the same cross-validation gives the same folds), in its own sub-directory ``fold<i>/``
of the job dir with its own TensorBoard dir, checkpoints, ``metrics.json`` and ``predictions.csv``.
The job dir's ``cv.json`` (:class:`~genre.run_files.CrossValidationMetrics`) holds the job's config,
the finished folds and every score's mean ± 95 % Student-t interval over them; it is rewritten after
each fold. Its config, and the job's ``.hydra/config.yaml``, name the k-fold split the folds ran
(``fold: null``; each fold's ``provenance.json`` names its fold), and the job's last printed line is the
test accuracy's mean ± 95 % interval over the folds (:func:`summary_line`). The job returns the mean of the
folds' objectives, so an Optuna search over ``cv.folds=k`` jobs optimises a cross-validated score.

Split: a ``dataset/split=kfold`` config is used as given (``cv.folds`` sets its ``folds``); the default
``stratified`` split is replaced by ``dataset/split=kfold``'s defaults (log line says so); a fixed split
(``official``, ``fault_filtered``) is refused: cross-validating it would drop what makes it honest.

Interrupting (Ctrl-C, SIGTERM) stops the fold in progress after saving its ``last.pt``;
``python run.py resume=<job dir>`` continues that fold and then runs the remaining ones.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from genre import CONFIG_DIR
from genre.comparison.intervals import t_interval
from genre.core.errors import ConfigError, TrainingInterrupted
from genre.core.filesystem import atomic_write_text, remove_directory
from genre.data.splits import KFoldSplit, StratifiedSplit
from genre.experiment.resume import apply_resumable_overrides
from genre.run_files import CROSS_VALIDATION_FILE, LAST_CHECKPOINT, CrossValidationMetrics, RunMetrics
from genre.run_files.stored_config import check_stored_config
from genre.training.distributed import launched_by_torchrun, torchrun_context

log = logging.getLogger(__name__)

# Runs one configured run (a fold): (config, last.pt to resume from or None) -> its objective.
RunOne = Callable[[DictConfig, "str | None"], "float | list[float]"]
KFOLD_CONFIG = CONFIG_DIR / "dataset" / "split" / "kfold.yaml"


def cross_validation_folds(cfg: DictConfig) -> int:
    """``cv.folds`` of ``cfg``: 0 when cross-validation is off (null or 0), else a count of at least 2."""
    folds = OmegaConf.select(cfg, "cv.folds")
    if folds is None or folds == 0:
        return 0
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError(
            "cv.folds",
            f"{folds!r} is not a whole number of at least 2",
            "Use e.g. cv.folds=5, or cv.folds=null for a single run",
        )
    return folds


def is_cross_validation_dir(path: str | Path) -> bool:
    """Whether ``path`` is the job dir of a cross-validation job (it holds ``cv.json``)."""
    return CrossValidationMetrics.read(path) is not None


def kfold_split(split: DictConfig, folds: int, fold: int) -> DictConfig:
    """The ``dataset.split`` node of fold ``fold`` of ``folds``, from the job's own split (see the module doc)."""
    kind = get_class(str(split.get("_target_")))
    if issubclass(kind, KFoldSplit):
        node = _plain(split)
    elif issubclass(kind, StratifiedSplit):
        node = _plain(OmegaConf.load(KFOLD_CONFIG))  # type: ignore[arg-type]
    else:
        raise ConfigError(
            "cv.folds",
            f"dataset.split is {kind.__name__}, a fixed split that cross-validation would replace",
            "Add dataset/split=kfold to cross-validate, or drop cv.folds to keep this split",
        )
    node.folds, node.fold = folds, fold
    return node


def job_split(split: DictConfig, folds: int) -> DictConfig:
    """The ``dataset.split`` node a cross-validation job of ``folds`` folds runs: :func:`kfold_split`'s, with
    ``fold: null`` (every fold: fold ``i`` runs in ``fold<i>/``)."""
    node = kfold_split(split, folds, 0)
    node.fold = None
    return node


def record_split_in_hydra_config(job_dir: Path, split: DictConfig, replaced: str) -> Path | None:
    """Put the k-fold ``split`` a job ran into its ``.hydra/config.yaml`` (Hydra wrote the composed one, with
    the split the folds replaced: a reader of that file, or ``genre-report``, would see a split never used).

    The file is read as plain data (nothing resolved) and rewritten atomically with a first comment line saying
    what changed; Hydra itself never reads it back. Returns its path (None when the job has no such file).
    """
    subdir = HydraConfig.get().output_subdir if HydraConfig.initialized() else ".hydra"
    path = job_dir / str(subdir) / "config.yaml" if subdir is not None else None
    if path is None or not path.is_file():
        return None
    try:
        config = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        config = None
        log.warning("%s is not readable YAML (%s): it keeps the split Hydra composed", path, " ".join(str(exc).split()))
    if not isinstance(config, dict) or not isinstance(config.get("dataset"), dict):
        return None  # not the config Hydra writes: left as it is (cv.json still names the split)
    config["dataset"]["split"] = OmegaConf.to_container(split)
    note = f"# genre: dataset.split is the k-fold split the folds ran (cv.folds={split.folds}; composed: {replaced})"
    atomic_write_text(path, note + "\n" + yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return path


def fold_config(job: DictConfig, folds: int, fold: int) -> DictConfig:
    """The resolved config of fold ``fold``: the job's, with the k-fold split and ``<job dir>/fold<i>`` as output."""
    cfg = _plain(job)
    cfg.dataset.split = kfold_split(job.dataset.split, folds, fold)
    cfg.paths.output_dir = str(Path(job.paths.output_dir) / CrossValidationMetrics.fold_dir(fold))
    # Each fold is a plain run (the grid form's): resuming its dir alone continues that fold alone.
    OmegaConf.update(cfg, "cv.folds", None, force_add=True)
    cfg.resume = None
    return cfg


def run_cross_validation(cfg: DictConfig, run_one: RunOne) -> float:
    """Train every fold of a new cross-validation job; return the mean objective over the folds."""
    folds = cross_validation_folds(cfg)
    job = _plain(OmegaConf.masked_copy(cfg, [str(key) for key in cfg if key != "hydra"]))
    job.resume = None
    for fold in range(folds):  # every fold's config is checked before the first trains
        fold_config(job, folds, fold)
    replaced = str(job.dataset.split._target_)
    if not issubclass(get_class(replaced), KFoldSplit):
        log.info("cv.folds=%d: dataset.split is replaced by dataset/split=kfold's defaults (%s)", folds, KFOLD_CONFIG)
    # The job's records name the split its folds ran (each fold's own fold number is in its run dir).
    job.dataset.split = job_split(job.dataset.split, folds)
    job_dir = Path(job.paths.output_dir)
    if _is_main():
        record_split_in_hydra_config(job_dir, job.dataset.split, replaced)
    config = OmegaConf.to_container(job)
    assert isinstance(config, dict)
    record = CrossValidationMetrics(
        folds=folds,
        config={str(key): value for key, value in config.items()},
        objective=str(job.objective),
        objective_mode=str(job.objective_mode),
    )
    job_dir.mkdir(parents=True, exist_ok=True)
    if _is_main():
        record.write(job_dir)
    return _run_folds(record, job, job_dir, run_one)


def resume_cross_validation(cfg: DictConfig, run_one: RunOne) -> float:
    """Continue the cross-validation job in ``cfg.resume``: its unfinished fold, then the remaining ones."""
    job_dir = Path(str(cfg.resume)).expanduser()
    record = CrossValidationMetrics.read(job_dir)
    if record is None:
        raise ConfigError(
            "resume",
            f"'{job_dir}' holds no readable cv.json",
            "Point resume at the job dir of a cross-validation run (python run.py cv.folds=k)",
        )
    # cv.json may come from anywhere: its config must be plain data naming genre's own classes.
    job = _plain(OmegaConf.create(check_stored_config(record.config, job_dir / CROSS_VALIDATION_FILE)))
    apply_resumable_overrides(cfg, job)
    job.paths.output_dir = str(job_dir)
    return _run_folds(record, job, job_dir, run_one)


def _run_folds(record: CrossValidationMetrics, job: DictConfig, job_dir: Path, run_one: RunOne) -> float:
    """Run each fold not finished yet (resuming one that saved ``last.pt``); rewrite ``cv.json`` after each."""
    values: dict[int, float] = {}
    for fold in range(record.folds):
        fold_dir = job_dir / record.fold_dir(fold)
        finished = RunMetrics.read(fold_dir)
        if finished is not None:
            log.info("Fold %d of %d finished already (%s)", fold, record.folds, fold_dir)
            values[fold] = finished.objective_value
            continue
        last = fold_dir / LAST_CHECKPOINT
        if not last.is_file() and fold_dir.exists() and _is_main():
            remove_directory(fold_dir)  # a fold that never saved a checkpoint starts over, without stale logs
        log.info("Fold %d of %d -> %s%s", fold, record.folds, fold_dir, " (resuming)" if last.is_file() else "")
        try:
            value = run_one(fold_config(job, record.folds, fold), str(last) if last.is_file() else None)
            # A multi-objective run's first objective is the one cross-validation averages.
            values[fold] = value[0] if isinstance(value, list) else value
        except TrainingInterrupted as exc:
            raise TrainingInterrupted(
                exc.signum,
                f"cross-validation fold {fold} of {record.folds}: {exc}. To "
                f"continue this fold and the remaining ones: python run.py "
                f"resume={job_dir}",
            ) from None
        if _is_main():
            summarise_folds(record, job_dir).write(job_dir)
    mean = sum(values.values()) / len(values)
    log.info(
        "Cross-validation: %s %.4f (mean of %d folds: %s)",
        record.objective,
        mean,
        len(values),
        ", ".join(f"{values[fold]:.4f}" for fold in sorted(values)),
    )
    if _is_main():
        print(summary_line(summarise_folds(record, job_dir)))  # the job's last line: what a paper reports
    return mean


def summary_line(record: CrossValidationMetrics, metric: str = "test/acc") -> str:
    """``Cross-validation: test/acc 0.781 ± 0.052 (95 % t-interval, n = 5 folds); val/acc 0.800 (the objective)``:
    ``metric``'s mean over the completed folds ± the half-width of its 95 % Student-t interval, and the mean
    objective the job returns."""
    n = len(record.completed)
    parts = []
    if metric in record.mean:
        mean, low, high = record.mean[metric], record.low.get(metric, math.nan), record.high.get(metric, math.nan)
        half = (high - low) / 2
        interval = f" ± {half:.3f}" if math.isfinite(half) else " (no interval)"
        parts.append(f"{metric} {mean:.3f}{interval} (95 % t-interval, n = {n} fold{'s' if n != 1 else ''})")
    if record.objective_values:
        objective = sum(record.objective_values) / len(record.objective_values)
        parts.append(f"{record.objective} {objective:.3f} (the objective)")
    return "Cross-validation: " + "; ".join(parts)


def summarise_folds(record: CrossValidationMetrics, job_dir: Path) -> CrossValidationMetrics:
    """``record`` with the finished folds (read from their ``metrics.json``) and each score's mean ± interval."""
    runs = {fold: RunMetrics.read(job_dir / record.fold_dir(fold)) for fold in range(record.folds)}
    done = {fold: run for fold, run in runs.items() if run is not None}
    record.completed = sorted(done)
    record.objective_values = [done[fold].objective_value for fold in record.completed]
    keys: dict[str, Any] = dict.fromkeys(key for run in done.values() for key in run.scores)
    record.mean, record.std, record.low, record.high = {}, {}, {}, {}
    for key in keys:
        values = [run.scores[key] for run in done.values() if key in run.scores]
        interval = t_interval(values)
        record.mean[key], record.std[key] = interval.mean, interval.std
        record.low[key], record.high[key] = interval.low, interval.high
    return record


def _plain(cfg: DictConfig) -> DictConfig:
    """A resolved copy of ``cfg`` with no interpolation left."""
    copy = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    assert isinstance(copy, DictConfig)
    return copy


def _is_main() -> bool:
    """Whether this process writes the job's files (not a non-zero rank of a ``torchrun`` launch)."""
    return not launched_by_torchrun() or torchrun_context().is_main

"""How sweeps treat failed jobs: log each one with its reason, and count them against a budget."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from hydra.core.utils import JobReturn, JobStatus

from genre.core.upstream import failed_job_error
from genre.core.url_passwords import mask_text
from genre.sweeps.jobs.status import describe_error

log = logging.getLogger(__name__)


def is_pruned(ret: JobReturn) -> bool:
    """Whether the job ended because an Optuna study's pruner stopped it (a clean end, not a failure)."""
    from genre.sweeps.optuna.pruning import RunPruned

    return ret.status == JobStatus.FAILED and isinstance(failed_job_error(ret), RunPruned)


def failed_jobs(returns: Sequence[JobReturn]) -> list[JobReturn]:
    """The jobs of a batch that raised (pruned ones aside), each logged with its number, overrides and error."""
    failed = [ret for ret in returns if ret.status == JobStatus.FAILED and not is_pruned(ret)]
    for ret in failed:
        num = ret.hydra_cfg.hydra.job.num if ret.hydra_cfg is not None else "?"
        error = failed_job_error(ret)
        reason = describe_error(error) if isinstance(error, BaseException) else repr(error)
        # An override may carry a URL with a password (a study's storage): masked before it reaches the log.
        log.warning("Job %s (%s) failed: %s", num, mask_text(" ".join(ret.overrides or [])), mask_text(reason))
    return failed


class FailureBudget:
    """Ends a sweep once more than ``max_rate`` of its ``planned`` jobs have failed.

    The rate is over the whole sweep, so it means the same whatever the batch size: with
    ``max_rate=0.5`` and 20 trials the sweep stops at the 11th failure, when it can no longer end with
    half of its trials usable. (hydra-optuna-sweeper 1.3 applies its ``max_failure_rate`` to each batch
    of ``n_jobs`` trials, so with ``n_jobs=1`` any rate below 1 stopped a search at its first failure.)
    """

    def __init__(self, max_rate: float) -> None:
        if not 0.0 <= max_rate <= 1.0:
            raise ValueError(f"max_failure_rate must be within [0, 1], got {max_rate}")
        self.max_rate = max_rate
        self.failed = 0
        self.finished = 0

    def allowed(self, planned: int) -> int:
        """How many of ``planned`` jobs may fail before the sweep stops."""
        return math.floor(self.max_rate * planned + 1e-9)

    def record(self, returns: Sequence[JobReturn], planned: int) -> bool:
        """Count a finished batch; True when the sweep must stop."""
        self.finished += len(returns)
        self.failed += len(failed_jobs(returns))
        if self.failed <= self.allowed(planned):
            return False
        log.error(
            "%d of %d jobs failed, more than max_failure_rate=%g of %d planned jobs allows (%d): stopping the sweep",
            self.failed,
            self.finished,
            self.max_rate,
            planned,
            self.allowed(planned),
        )
        return True

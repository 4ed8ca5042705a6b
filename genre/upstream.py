"""Every place genre reaches into a library's private API, gathered here.

Each function says why the public API is not enough and which release it was checked against, so an
upgrade of hydra-core, hydra-optuna-sweeper or torch's TensorBoard writer has one file to re-check.
Kept free of heavy imports at module level: Hydra imports the sweepers (and so this) on every start.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Hydra's own grid sweeper is only in hydra._internal; genre's GridSweeper subclasses it to keep
# going past failed jobs. Checked against hydra-core 1.3.2-1.3.8 (BasicSweeper.sweep unchanged).
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

if TYPE_CHECKING:
    from hydra.core.utils import JobReturn
    from hydra.plugins.launcher import Launcher
    from torch.utils.tensorboard import SummaryWriter

__all__ = [
    "BasicSweeper",
    "event_file_writer",
    "failed_job_error",
    "grid_sweeper_params",
    "optuna_planned_trials",
    "optuna_study",
    "optuna_sweep_dir",
    "set_optuna_batch_failure_rate",
    "wrap_optuna_launcher",
]


# --- hydra-core ---------------------------------------------------------------------------------


def failed_job_error(job_return: JobReturn) -> Any:
    """The exception a failed job raised (normally a ``BaseException``), without raising it.

    The public ``JobReturn.return_value`` re-raises it (and writes to stderr); Hydra keeps it in
    ``_return_value``. Checked against hydra-core 1.3.8.
    """
    return job_return._return_value


def grid_sweeper_params(sweeper: BasicSweeper) -> list[str]:
    """``hydra.sweeper.params`` as overrides (``key=value``), as ``BasicSweeper.sweep`` builds them.

    Only the private ``BasicSweeper._parse_config`` does this; reusing it keeps the grid the same as
    Hydra's. Checked against hydra-core 1.3.8.
    """
    return list(sweeper._parse_config())


# --- hydra-optuna-sweeper -----------------------------------------------------------------------
# The plugin's OptunaSweeper is a shell: its state lives in ``sweeper.sweeper``, an OptunaSweeperImpl
# from the private ``hydra_plugins.hydra_optuna_sweeper._impl`` module, with no public accessors.
# Checked against hydra-optuna-sweeper 1.3.0 (the version requirements.txt pins).


def _optuna_impl(sweeper: Any) -> Any:
    return sweeper.sweeper


def wrap_optuna_launcher(sweeper: Any, wrap: Callable[[Launcher, Any], Launcher]) -> None:
    """Replace the launcher the Optuna sweeper runs trials with by ``wrap(launcher, impl)``.

    Call after ``setup``, which creates the launcher. The wrapper gets the sweeper's implementation
    object too, to pass to :func:`optuna_planned_trials` and :func:`set_optuna_batch_failure_rate`.
    """
    impl = _optuna_impl(sweeper)
    impl.launcher = wrap(impl.launcher, impl)


def optuna_study(sweeper: Any) -> tuple[str, Any]:
    """The study's name and its storage (a URL string, None for in-memory, or a storage object)."""
    impl = _optuna_impl(sweeper)
    return impl.study_name, impl.storage


def optuna_sweep_dir(sweeper: Any) -> Path:
    """``hydra.sweep.dir`` of the composed config the sweeper was set up with."""
    return Path(_optuna_impl(sweeper).config.hydra.sweep.dir)


def optuna_planned_trials(impl: Any) -> int:
    """The number of trials the search will run (upstream lowers it to the grid's size for GridSampler)."""
    return int(impl.n_trials)


def set_optuna_batch_failure_rate(impl: Any, rate: float) -> None:
    """Set the per-batch failure rate above which the upstream sweep loop raises a failed trial's error."""
    impl.max_failure_rate = rate


# --- torch.utils.tensorboard --------------------------------------------------------------------


def event_file_writer(writer: SummaryWriter) -> Any:
    """The ``FileWriter`` of ``writer``'s own event file, to add raw summaries to it.

    ``SummaryWriter.add_hparams`` writes HParams summaries into a new sub-directory (a second run in
    TensorBoard); adding them to the run's own file needs ``_get_file_writer``. Checked against
    torch 2.14.1 (tensorboard 2.21).
    """
    return writer._get_file_writer()

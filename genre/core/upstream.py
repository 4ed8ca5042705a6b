"""Every place genre reaches into a library's private API, gathered here.

Each function says why the public API is not enough and which release it was checked against, so an
upgrade of hydra-core, hydra-joblib-launcher, optuna or torch's TensorBoard writer has one file to
re-check. tests/test_code_shape.py fails on a private name of another library used anywhere else.
Kept free of heavy imports at module level: Hydra imports the sweepers (and so this) on every start.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna
    from hydra._internal.core_plugins.basic_launcher import BasicLauncher
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.utils import JobReturn
    from hydra.errors import InstantiationException
    from optuna.samplers import TPESampler
    from torch.utils.tensorboard import SummaryWriter

__all__ = [
    "BasicLauncher",
    "BasicSweeper",
    "event_file_writer",
    "failed_job_error",
    "grid_sweeper_params",
    "instantiation_error_key",
    "joblib_execute_job",
    "optuna_trial_id",
    "reseed_tpe_sampler",
]


# --- hydra-core ---------------------------------------------------------------------------------
# Hydra's own grid sweeper and in-process launcher are only in hydra._internal. genre's GridSweeper
# subclasses the sweeper to keep going past failed jobs; the Optuna sweeper recognises the launcher
# (it runs jobs one at a time, in this process). Checked against hydra-core 1.3.2-1.3.8.
# Imported when asked for, never when this module is: Hydra's plugin scan executes every module of
# hydra._internal.core_plugins again (exec_module, even one already imported), and a subclass of the
# class from an earlier execution then fails BasicSweeper's own ``super(BasicSweeper, self)``.
_CORE_PLUGINS = {
    "BasicLauncher": "hydra._internal.core_plugins.basic_launcher",
    "BasicSweeper": "hydra._internal.core_plugins.basic_sweeper",
}


def __getattr__(name: str) -> Any:
    """``BasicLauncher`` and ``BasicSweeper``, from the module Hydra's plugin scan left in place."""
    if name in _CORE_PLUGINS:
        return getattr(importlib.import_module(_CORE_PLUGINS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


# hydra-core 1.3 ends an InstantiationException's message with this line (when the node has a key).
_FULL_KEY = re.compile(r"\nfull_key: (?P<key>\S+)\s*$")


def instantiation_error_key(error: InstantiationException) -> str | None:
    """The config key of the node whose ``_target_`` failed to instantiate, None when Hydra gave none.

    Hydra keeps the key only in the message text (its last line, ``full_key: model``), not in an
    attribute.
    Checked against hydra-core 1.3.8 (``hydra._internal.instantiate._instantiate2``).
    """
    match = _FULL_KEY.search(str(error))
    return match["key"] if match else None


# --- hydra-joblib-launcher ----------------------------------------------------------------------


def joblib_execute_job() -> Callable[..., JobReturn]:
    """The function hydra-joblib-launcher runs each job with in a worker process.

    genre's IsolatedJoblibLauncher runs that same function, one loky executor per job; the plugin
    exposes it only in its private ``_core`` module. Imported on call: it imports joblib. Checked
    against hydra-joblib-launcher 1.2.0 (``execute_job(idx, overrides, hydra_context, config,
    task_function, singleton_state)``).
    """
    from hydra_plugins.hydra_joblib_launcher._core import execute_job

    return execute_job


# --- optuna -------------------------------------------------------------------------------------


def optuna_trial_id(trial: optuna.Trial) -> int:
    """The storage's id of a live trial (heartbeats are recorded under it; ``trial.number`` is per study).

    ``Trial`` keeps it in ``_trial_id`` with no public accessor. Checked against optuna 5.1.0.
    """
    return int(trial._trial_id)


def reseed_tpe_sampler(sampler: TPESampler, seed: int) -> None:
    """Reseed the random state a ``TPESampler`` draws from and that of its start-up random sampler.

    ``TPESampler.reseed_rng()`` only reseeds from the OS (no seed argument); a reproducible draw per
    trial needs a given seed. Both live in ``_rng`` (lazy ``RandomState`` s), the random sampler in
    ``_random_sampler``. Checked against optuna 5.1.0.
    """
    sampler._rng.rng.seed(seed)
    sampler._random_sampler._rng.rng.seed(seed)


# --- torch.utils.tensorboard --------------------------------------------------------------------


def event_file_writer(writer: SummaryWriter) -> Any:
    """The ``FileWriter`` of ``writer``'s own event file, to add raw summaries to it.

    ``SummaryWriter.add_hparams`` writes HParams summaries into a new sub-directory (a second run in
    TensorBoard); adding them to the run's own file needs ``_get_file_writer``. Checked against
    torch 2.14.1 (tensorboard 2.21).
    """
    return writer._get_file_writer()

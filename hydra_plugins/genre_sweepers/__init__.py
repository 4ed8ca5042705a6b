"""genre's sweepers under the names Hydra accepts.

Hydra instantiates a sweeper only from a class defined in the ``hydra_plugins`` namespace package
(which it scans at start-up), so ``genre/conf/hydra/sweeper/grid.yaml`` and ``genre/conf/hparams_search/optuna.yaml``
name these subclasses; the code lives in :mod:`genre.sweeps`. This folder must stay free of heavy
imports: Hydra imports it on every start, ``--help`` included.
"""

from genre.sweeps.jobs.grid import GridSweeper as _GridSweeper
from genre.sweeps.optuna.sweeper import OptunaSweeper as _OptunaSweeper


class GridSweeper(_GridSweeper):
    """:class:`genre.sweeps.jobs.grid.GridSweeper`: the basic sweeper whose failed jobs don't end the sweep."""


class OptunaSweeper(_OptunaSweeper):
    """:class:`genre.sweeps.optuna.sweeper.OptunaSweeper`: an Optuna 5 study run by ask and tell, with
    pruning, asynchronous trials, stale-trial recovery, a sweep-wide failure budget and plots."""

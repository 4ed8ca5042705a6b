"""genre's sweepers under the names Hydra accepts.

Hydra instantiates a sweeper only from a class defined in the ``hydra_plugins`` namespace package
(which it scans at start-up), so ``conf/hydra/sweeper/grid.yaml`` names
this subclass; the code lives in :mod:`genre.sweeps`. This folder must stay free of heavy
imports: Hydra imports it on every start, ``--help`` included.
"""

from genre.sweeps.grid import GridSweeper as _GridSweeper


class GridSweeper(_GridSweeper):
    """:class:`genre.sweeps.grid.GridSweeper`: the basic sweeper whose failed jobs don't end the sweep."""


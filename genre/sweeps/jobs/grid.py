"""The default sweeper: Hydra's basic (cartesian-product) sweeper, except that failed jobs don't end it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from genre.core.upstream import BasicSweeper, grid_sweeper_params
from genre.sweeps.jobs.failures import failed_jobs

log = logging.getLogger(__name__)


class GridSweeper(BasicSweeper):
    """Runs every job of the grid and logs the failed ones with their reason.

    Hydra's ``BasicSweeper`` re-raises the first failed job's exception after each batch, which ends
    the sweep before ``on_multirun_end`` and so before the summary is written. A failed job's
    ``status.json`` holds its error and traceback, and the summary lists it.
    """

    def sweep(self, arguments: list[str]) -> Any:
        """As ``BasicSweeper.sweep``, minus re-raising failures (hydra-core 1.3)."""
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        params_conf = [*grid_sweeper_params(self), *arguments]
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        self.overrides = self.split_arguments(parser.parse_overrides(params_conf), self.max_batch_size)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

        returns = []
        initial_job_idx = 0
        failed = 0
        while not self.is_done():
            batch = self.get_job_batch()
            # Composing every job first turns a typo into one error before anything runs.
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=initial_job_idx)
            failed += len(failed_jobs(results))
            initial_job_idx += len(batch)
            returns.append(results)
        if failed:
            log.warning("%d of %d jobs failed; the summary lists them with their errors", failed, initial_job_idx)
        return returns

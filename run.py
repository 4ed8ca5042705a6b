"""Train and evaluate one configuration: ``python run.py feature=chroma model=crnn`` (``-m`` for sweeps).

Returns the objective (``objective``, by default the best ``val/acc``) so sweepers can optimise it.
"""

from __future__ import annotations

import logging
import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from genre.core.cli_errors import one_line_user_errors, report_user_error, user_error_line
from genre.core.errors import TrainingInterrupted
from genre.core.overrides import hydra_overrides
from genre.sweeps.jobs.status import record_failure
from genre.sweeps.optuna.pruning import trial_reporter
from genre.training.callbacks import StoppedByCallback


@hydra.main(version_base="1.3", config_path="genre/conf", config_name="config")
def main(cfg: DictConfig) -> float | list[float]:
    """Hydra entry point; bad input becomes a one-line error (exit status 2) instead of a traceback.

    In a sweep the error is re-raised instead, so that Hydra records the job as failed (its status.json
    holds the same line) and the other jobs go on.
    """
    from genre.experiment import run_experiment  # after Hydra has parsed the command line: faster --help

    # A job of an Optuna sweep reports every epoch to its trial, whose pruner may stop it (None otherwise).
    reporter = trial_reporter(cfg)
    try:
        return run_experiment(cfg, [reporter] if reporter is not None else [])
    except StoppedByCallback as exc:
        if reporter is None:
            raise
        raise reporter.pruned(exc.epoch) from None  # the sweeper marks the trial PRUNED; checkpoints are kept
    except TrainingInterrupted as exc:
        # last.pt is saved: a clean exit with the shell's code for death by that signal (130, 143).
        logging.getLogger("genre").warning("%s", exc)
        print(str(exc), file=sys.stderr)
        sys.exit(128 + exc.signum)
    except Exception as exc:
        line = user_error_line(exc)
        if line is None:
            raise
        logging.getLogger("genre").error("%s", line)  # into run.log, with the job's other output
        if HydraConfig.get().mode == RunMode.RUN:
            # Exiting here, not raising: Hydra would add "Error executing job with overrides: [...]". It then
            # records no end, so status.json is marked failed here (else "running" would hold the dir for good).
            record_failure(HydraConfig.get().runtime.output_dir, exc)
            sys.exit(report_user_error(line))
        raise


if __name__ == "__main__":
    sys.argv.extend(hydra_overrides(sys.argv[1:]))  # resume / torchrun ranks: where Hydra writes
    # Hydra otherwise prints composition errors (an unknown group option, a bad override) itself, over
    # several lines, and exits 1; with HYDRA_FULL_ERROR=1 it raises them, so they reach the one error path.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    sys.exit(one_line_user_errors(main)())

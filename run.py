"""Train and evaluate one configuration: ``python run.py feature=chroma model=crnn`` (``-m`` for sweeps).

Returns the objective (``objective``, by default the best ``val/acc``) so sweepers can optimise it.
"""

from __future__ import annotations

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from genre.errors import TrainingInterrupted, UserInputError
from genre.overrides import hydra_overrides


@hydra.main(version_base="1.3", config_path="genre/conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Hydra entry point; bad input becomes a one-line error instead of a traceback."""
    from genre.experiment import run_experiment  # after Hydra has parsed the command line: faster --help

    try:
        return run_experiment(cfg)
    except TrainingInterrupted as exc:
        # last.pt is saved: a clean exit with the shell's code for death by that signal (130, 143).
        logging.getLogger("genre").warning("%s", exc)
        print(str(exc), file=sys.stderr)
        sys.exit(128 + exc.signum)
    except UserInputError as exc:
        logging.getLogger("genre").error("%s", exc)
        if HydraConfig.get().mode == RunMode.RUN:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        raise


if __name__ == "__main__":
    sys.argv.extend(hydra_overrides(sys.argv[1:]))  # resume / torchrun ranks: where Hydra writes
    main()

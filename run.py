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

from genre.errors import UserInputError


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Hydra entry point; bad input becomes a one-line error instead of a traceback."""
    from genre.experiment import run_experiment  # after Hydra has parsed the command line: faster --help

    try:
        return run_experiment(cfg)
    except UserInputError as exc:
        logging.getLogger("genre").error("%s", exc)
        if HydraConfig.get().mode == RunMode.RUN:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()

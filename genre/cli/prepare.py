"""``genre-prepare`` / ``python -m genre.cli.prepare dataset=...``: build the audio cache ahead of time (e.g. on
a login node before a sweep), with the same config overrides a run takes, and print what it holds."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from genre import CONFIG_DIR
from genre.core.cli_errors import one_line_user_errors
from genre.data.prepare import prepare_data


@one_line_user_errors
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m genre.cli.prepare [overrides]``: build (or check) a dataset's audio cache ahead of a sweep."""
    from hydra import compose, initialize_config_dir

    parser = argparse.ArgumentParser(
        prog="python -m genre.cli.prepare",
        description="Decode a dataset into the shared audio cache, so that every run and sweep job only reads it. "
        "Takes the same overrides as run.py; only dataset.* and paths.* matter here.",
    )
    parser.add_argument("overrides", nargs="*", help="e.g. dataset=gtzan dataset.root=/data/gtzan/genres_original")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(args.overrides))
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir, progress=not args.quiet)
    print(data.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())

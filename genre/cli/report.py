"""``python -m genre.cli.report <sweep dir>``: (re)write a sweep's summary from its run folders alone.

Works on a finished sweep, on one still running, and on one that was killed: its jobs show as
completed, failed (with the error), running, or killed (after how many epochs). A job dir holding a
damaged file (``status.json``, ``metrics.json``, ``.hydra/*.yaml``...) is skipped with its reason.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from genre.core.cli_errors import one_line_user_errors
from genre.core.errors import UserInputError
from genre.sweeps.results.summary import summarise_sweep


@one_line_user_errors
def main(argv: list[str] | None = None) -> int:
    """Summarise the sweep dir named on the command line; print the table. Returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m genre.cli.report", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a sweep dir, e.g. multirun/2024-05-01/12-00-00")
    parser.add_argument("--metric", default="test/acc", help="the metric drawn in the figure (default test/acc)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.sweep_dir.is_dir():
        raise UserInputError(
            f"sweep_dir: {args.sweep_dir} is not a directory. Pass a sweep dir such as multirun/<date>/<time>"
        )
    summary = summarise_sweep(args.sweep_dir, heatmap_metric=args.metric)
    if summary.frame.empty and summary.skipped:
        first = summary.skipped[0]
        raise UserInputError(
            f"sweep_dir: every job dir under {args.sweep_dir} holds a damaged file ({len(summary.skipped)} "
            f"skipped), e.g. {first.reason}"
        )
    if summary.frame.empty:
        raise UserInputError(
            f"sweep_dir: no job dirs (with .hydra/overrides.yaml) under {args.sweep_dir}. "
            f"Pass the sweep dir itself, e.g. multirun/<date>/<time>"
        )
    print(summary.table)
    for path in summary.files:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""TensorBoard logging for one run: everything lands in ``<run dir>/tensorboard/``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # runs are headless: on clusters there is no display
import matplotlib.pyplot as plt
import numpy as np
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary

from genre.core.upstream import event_file_writer
from genre.core.url_passwords import strip_text

HParamValue = int | float | str | bool


class RunLogger:
    """A thin layer over ``SummaryWriter`` for what a run records."""

    def __init__(self, log_dir: str | Path, purge_step: int | None = None) -> None:
        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge_step)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        """Log each ``tag: value`` at ``step``."""
        for tag, value in values.items():
            self.writer.add_scalar(tag, float(value), step)

    def text(self, tag: str, text: str, step: int = 0) -> None:
        """Log preformatted text (shown monospaced in the TEXT tab)."""
        # TensorBoard renders markdown; indenting by four spaces keeps tables and paths aligned. Event files
        # are often shared (TensorBoard.dev, a colleague's --logdir): no URL password goes into them.
        text = strip_text(text)
        self.writer.add_text(tag, "    " + text.replace("\n", "\n    "), step)

    def confusion_matrix(self, tag: str, matrix: np.ndarray, labels: list[str], step: int) -> None:
        """Log a confusion matrix (rows: true genre, columns: predicted) as an image."""
        size = 1.0 + 0.6 * len(labels)
        figure, axes = plt.subplots(figsize=(size + 1.5, size))
        image = axes.imshow(matrix, cmap="Blues")
        axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        axes.set_yticks(range(len(labels)), labels)
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
        threshold = matrix.max() / 2 if matrix.size else 0
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                axes.text(
                    j,
                    i,
                    str(int(matrix[i, j])),
                    ha="center",
                    va="center",
                    color="white" if matrix[i, j] > threshold else "black",
                )
        figure.colorbar(image, ax=axes)
        figure.tight_layout()
        self.writer.add_figure(tag, figure, step)  # closes the figure

    def hparams(self, params: Mapping[str, HParamValue], metrics: Mapping[str, float], step: int = 0) -> None:
        """Record an HParams entry in this run's own event file so the HPARAMS tab compares runs.

        ``SummaryWriter.add_hparams`` would write to a new sub-directory; writing the summaries
        ourselves keeps one TensorBoard dir per run. The metric values are logged as scalars with
        the same tags, which is where the HPARAMS tab reads them from.
        """
        clean = {key: strip_text(value) if isinstance(value, str) else value for key, value in params.items()}
        experiment, session_start, session_end = hparams_summary(clean, dict(metrics))
        file_writer = event_file_writer(self.writer)
        for summary in (experiment, session_start, session_end):
            file_writer.add_summary(summary)
        self.scalars(metrics, step=step)

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.flush()
        self.writer.close()

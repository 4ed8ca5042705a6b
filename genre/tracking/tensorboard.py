"""TensorBoard logging for one run: everything lands in ``<run dir>/tensorboard/``."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # runs are headless: on clusters there is no display
import matplotlib.pyplot as plt
import numpy as np
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.plugins.hparams.api_pb2 import Status
from tensorboard.plugins.hparams.metadata import PLUGIN_DATA_VERSION, PLUGIN_NAME, SESSION_END_INFO_TAG
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData, SessionEndInfo
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary

from genre.core.upstream import event_file_writer
from genre.core.url_passwords import strip_text

HParamValue = int | float | str | bool
# How a run ended, as the HPARAMS tab's status (its filter): TensorBoard has no pruned status.
SESSION_STATUS = {
    "success": Status.Value("STATUS_SUCCESS"),
    "pruned": Status.Value("STATUS_UNKNOWN"),
    "failure": Status.Value("STATUS_FAILURE"),
}


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

    def hparams_start(
        self, params: Mapping[str, HParamValue], metrics: Sequence[str], varying: Collection[str] = ()
    ) -> None:
        """Open this run's HPARAMS session: its ``params`` and the scalar tags (``metrics``) the tab shows.

        Written when the run starts, so a run that is pruned, fails or is killed is in the table too
        (:meth:`hparams_end` adds how it ended). The metric values are the tags' last logged scalars:
        nothing is logged twice. ``varying`` (keys the sweep varies) are marked so the tab lists them first.
        ``SummaryWriter.add_hparams`` would write to a new sub-directory and log the metrics again as
        scalars; writing the summaries ourselves keeps one TensorBoard dir per run.
        """
        clean = {key: strip_text(value) if isinstance(value, str) else value for key, value in params.items()}
        experiment, session_start, _ = hparams_summary(clean, dict.fromkeys(metrics, 0.0))
        content = HParamsPluginData.FromString(experiment.value[0].metadata.plugin_data.content)
        for info in content.experiment.hparam_infos:
            info.differs = info.name in varying
        experiment.value[0].metadata.plugin_data.content = content.SerializeToString()
        file_writer = event_file_writer(self.writer)
        file_writer.add_summary(experiment)
        file_writer.add_summary(session_start)
        self.writer.flush()

    def hparams_end(self, status: str) -> None:
        """Close this run's HPARAMS session with how it ended: ``success``, ``pruned`` or ``failure``.

        TensorBoard knows no pruned status: a pruned run ends as Unknown (a killed one, never closed,
        stays Running).
        """
        if status not in SESSION_STATUS:
            raise ValueError(f"status: {status!r} is not one of {sorted(SESSION_STATUS)}")
        content = HParamsPluginData(
            session_end_info=SessionEndInfo(status=SESSION_STATUS[status]), version=PLUGIN_DATA_VERSION
        )
        metadata = SummaryMetadata(
            plugin_data=SummaryMetadata.PluginData(plugin_name=PLUGIN_NAME, content=content.SerializeToString())
        )
        summary = Summary(value=[Summary.Value(tag=SESSION_END_INFO_TAG, metadata=metadata)])
        event_file_writer(self.writer).add_summary(summary)

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.flush()
        self.writer.close()

"""The end-of-run report: confusion matrix and per-genre precision/recall of the test split."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix

from genre.tracking.tensorboard import RunLogger


def log_split_report(
    logger: RunLogger, targets: np.ndarray, predictions: np.ndarray, labels: list[str], split: str, step: int
) -> str:
    """Log a split's confusion matrix (image) and classification report (text) from its label ids; return the report."""
    ids = list(range(len(labels)))
    matrix = confusion_matrix(targets, predictions, labels=ids)
    logger.confusion_matrix(f"{split}/confusion_matrix", matrix, labels, step)
    report = classification_report(targets, predictions, labels=ids, target_names=labels, digits=3, zero_division=0)
    logger.text(f"{split}/classification_report", report, step)
    return report

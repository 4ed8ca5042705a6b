"""The files a run leaves in its directory as typed records (checkpoints, ``metrics.json``, ``predictions.csv``,
``provenance.json``, a cross-validation job's ``cv.json``), which training, resume, predict and the summaries all go
through.
Checkpoints are read with ``torch.load(..., weights_only=True)`` and their stored config must pass
:func:`~genre.run_files.stored_config.check_stored_config`: a checkpoint someone sends never runs code."""

from genre.run_files.checkpoint import Checkpoint, CheckpointError, Position, RunIdentity
from genre.run_files.cross_validation import CrossValidationMetrics
from genre.run_files.metrics import RunMetrics
from genre.run_files.names import (
    BEST_CHECKPOINT,
    CHECKPOINT_VERSION,
    CROSS_VALIDATION_FILE,
    LAST_CHECKPOINT,
    METRICS_FILE,
    METRICS_VERSION,
    PREDICTIONS_FILE,
    PROBABILITY_PREFIX,
    PROVENANCE_FILE,
    TENSORBOARD_DIR,
)
from genre.run_files.predictions import Predictions
from genre.run_files.provenance import Provenance

__all__ = [
    "BEST_CHECKPOINT",
    "CHECKPOINT_VERSION",
    "CROSS_VALIDATION_FILE",
    "LAST_CHECKPOINT",
    "METRICS_FILE",
    "METRICS_VERSION",
    "PREDICTIONS_FILE",
    "PROBABILITY_PREFIX",
    "PROVENANCE_FILE",
    "TENSORBOARD_DIR",
    "Checkpoint",
    "CheckpointError",
    "CrossValidationMetrics",
    "Position",
    "Predictions",
    "Provenance",
    "RunIdentity",
    "RunMetrics",
]

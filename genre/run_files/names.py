"""The names of the files a run leaves in its directory, and the versions of their formats."""

BEST_CHECKPOINT = "best.pt"
LAST_CHECKPOINT = "last.pt"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.csv"
CROSS_VALIDATION_FILE = "cv.json"
PROVENANCE_FILE = "provenance.json"
TENSORBOARD_DIR = "tensorboard"

# Bumped whenever a field changes meaning; a checkpoint of another version is refused with one line.
CHECKPOINT_VERSION = 2
METRICS_VERSION = 2
PROVENANCE_VERSION = 1
# predictions.csv: one probability column per genre, named p/<genre>.
PROBABILITY_PREFIX = "p/"

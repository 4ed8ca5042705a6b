"""genre: a Hydra-composed experiment sweeper for music genre classification.

Code map (package -> what it holds -> what it may import; the README's Development section has the
full table and tests/test_code_shape.py checks the imports):

- ``errors``, ``cli_errors``, ``filesystem``, ``overrides``, ``upstream``, ``objective``,
  ``segment_defaults``, ``worker_processes``, ``stored_config``: foundations (user errors and their
  one-line translation, locks and atomic writes, override parsing, private third-party APIs, objective
  modes, the crop length a model gets, build workers, the gate a config read back from a file passes)
  -> nothing else.
- ``features``, ``pretrained``, ``models``, ``augment``, ``tracking``, ``comparison``, ``demo``,
  ``run_files``, ``run_directory``: the parts (waveform features, pretrained networks, classifiers,
  augmentations, TensorBoard, statistics, the demo synthesiser, the run's typed files, the run-dir
  claim) -> foundations only (features may use pretrained).
- ``data``: sources, splits, decoding, the audio and embedding caches -> foundations, demo.
- ``training``: the Trainer and what it needs per step and epoch -> the rows above.
- ``experiment``: one run as named phases (``experiment.phases.Run``), cross-validation -> the rows above.
- ``sweeps``: summaries, job status, callbacks, sweepers -> foundations, run_files, comparison, run_directory.
- ``predict``, ``report``, ``compare``: the command-line tools.
- ``conf``: the Hydra config tree, one group per swappable part.
"""

from pathlib import Path

# The Hydra config tree ships inside the package, so the console scripts find it from any directory.
CONFIG_DIR: Path = Path(__file__).parent / "conf"

# Register the config resolvers behind objective_mode's and trainer.segment_seconds's defaults (before any
# config is composed).
import genre.core.objective  # noqa: E402
import genre.core.segment_defaults  # noqa: E402,F401

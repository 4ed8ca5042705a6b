"""genre: a Hydra-composed experiment sweeper for music genre classification."""

from pathlib import Path

# The Hydra config tree ships inside the package, so the console scripts find it from any directory.
CONFIG_DIR: Path = Path(__file__).parent / "conf"

# Registers the config resolver behind objective_mode's default (before any config is composed).
import genre.objective  # noqa: E402,F401

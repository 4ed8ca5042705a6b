"""What the test modules share: where the checkout is, the tiny run settings, running ``run.py``.

Fixtures stay in ``tests/conftest.py``; this package holds plain values and functions (import them
as ``from helpers import ...``: pytest puts ``tests/`` on ``sys.path``). ``helpers.cuda`` (imports
torch) and ``helpers.dataset_trees`` are imported by the tests that need them.
"""

from helpers.checkout import REPO, RUN_PY, python_env
from helpers.runs import TINY_DEMO, TINY_RUN, TINY_TRAINING, compose_config, compose_run, run_cli, run_script
from helpers.services import missing_service

__all__ = [
    "REPO",
    "RUN_PY",
    "TINY_DEMO",
    "TINY_RUN",
    "TINY_TRAINING",
    "compose_config",
    "compose_run",
    "missing_service",
    "python_env",
    "run_cli",
    "run_script",
]

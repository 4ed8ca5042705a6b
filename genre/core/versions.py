"""What code produced a result: genre's version and git commit (and whether the checkout had changes), and the
versions of the libraries a number depends on. Each run records them in its ``provenance.json``.

Everything here is best effort: outside a git checkout, without git, or with a library missing, the value is
None and nothing is raised (a run must never fail because its provenance is incomplete).
"""

from __future__ import annotations

import logging
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

log = logging.getLogger(__name__)

# The distributions whose version can change a result (python's own version is added beside them).
LIBRARIES = ("torch", "torchaudio", "hydra-core", "optuna", "numpy", "scikit-learn", "librosa")
# The module each of them is imported as, where its name differs.
MODULES = {"hydra-core": "hydra", "scikit-learn": "sklearn"}
# genre's own package folder: the code a run executes.
PACKAGE_DIR = Path(__file__).resolve().parents[1]
# git answers at once on a checkout; a hung network file system must not hold a run.
GIT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class CodeVersion:
    """genre's installed version, and the commit of the git checkout it runs from (None outside one) with
    whether that checkout had changes not committed (tracked or untracked, ignored files aside)."""

    package_version: str | None
    git_commit: str | None
    git_dirty: bool | None


def distribution_version(name: str) -> str | None:
    """The installed version of the distribution ``name`` (e.g. ``hydra-core``); None when it is not installed."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    """Python's version and that of each of :data:`LIBRARIES` (None: not installed). A library already imported
    gives its own ``__version__``: torch's names its build (``2.5.1+cu124``), its metadata may not."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        module = sys.modules.get(MODULES.get(name, name))
        own = getattr(module, "__version__", None)
        versions[name] = str(own) if isinstance(own, str) else distribution_version(name)
    return versions


def _git(directory: Path, *args: str) -> str | None:
    """``git -C directory ARGS``'s output, or None when git is missing, fails or takes too long."""
    # The user's GIT_DIR / GIT_WORK_TREE would point git elsewhere; optional locks would write to the index.
    env = {key: value for key, value in os.environ.items() if key not in ("GIT_DIR", "GIT_WORK_TREE")}
    env["GIT_OPTIONAL_LOCKS"] = "0"
    try:
        result = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            env=env,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("git %s in %s: %s", " ".join(args), directory, exc)
        return None
    return result.stdout if result.returncode == 0 else None


def git_state(package_dir: Path = PACKAGE_DIR) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git checkout whose top folder holds ``package_dir``; (None, None) otherwise.

    Only the checkout that holds the package itself counts: a genre installed into a virtual environment
    inside some other repository is not that repository's code.
    """
    top = _git(package_dir, "rev-parse", "--show-toplevel")
    if top is None or Path(top.strip()).resolve() != package_dir.resolve().parent:
        return None, None
    commit = _git(package_dir, "rev-parse", "HEAD")
    status = _git(package_dir, "status", "--porcelain")
    if commit is None:  # a repository without a commit yet
        return None, None
    return commit.strip(), None if status is None else bool(status.strip())


def code_version(package_dir: Path = PACKAGE_DIR) -> CodeVersion:
    """genre's version and the git state of the checkout it runs from (see :func:`git_state`)."""
    commit, dirty = git_state(package_dir)
    return CodeVersion(package_version=distribution_version("genre"), git_commit=commit, git_dirty=dirty)

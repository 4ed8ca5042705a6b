"""The installed package (``pip install -e .``, as ``make`` does): console scripts and the sweeper plugins.

Each command runs from a folder outside the checkout, so only the installation can make it work.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO
from helpers.waiting import SAFETY_TIMEOUT

pytestmark = pytest.mark.slow  # spawns processes

SCRIPTS = {
    "genre-predict": "checkpoint",
    "genre-report": "sweep_dir",
    "genre-prepare": "overrides",
    "genre-compare": "dirs",
}


def _script(name: str) -> Path:
    path = Path(sys.executable).parent / name
    assert path.is_file(), f"{path} is missing: install the package (pip install -e .)"
    return path


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_console_script_prints_its_help(name: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(_script(name)), "--help"], cwd=tmp_path, text=True, capture_output=True, timeout=SAFETY_TIMEOUT
    )
    assert result.returncode == 0, result.stderr
    assert SCRIPTS[name] in result.stdout


def test_console_scripts_exit_with_mains_status(tmp_path: Path) -> None:
    # main() returns 2 for bad input; the wrapper must pass it on, not exit 0.
    report = subprocess.run(
        [str(_script("genre-report")), str(tmp_path / "missing")],
        cwd=tmp_path,
        text=True,
        capture_output=True,
        timeout=SAFETY_TIMEOUT,
    )
    assert report.returncode == 2 and "sweep_dir" in report.stderr, report.stderr
    # The config tree comes from the installed package: an unknown option is reported from it.
    prepare = subprocess.run(
        [str(_script("genre-prepare")), "dataset=nope"],
        cwd=tmp_path,
        text=True,
        capture_output=True,
        timeout=SAFETY_TIMEOUT,
    )
    assert prepare.returncode == 2 and "dataset/nope" in prepare.stderr, prepare.stderr


def test_sweepers_are_found_by_hydra_from_the_installation(tmp_path: Path) -> None:
    probe = (
        "from hydra.core.plugins import Plugins; from hydra.plugins.sweeper import Sweeper; "
        "print(sorted(p.__module__ + '.' + p.__name__ for p in Plugins.instance().discover(Sweeper)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, text=True, capture_output=True, timeout=SAFETY_TIMEOUT
    )
    assert result.returncode == 0, result.stderr
    for name in ("hydra_plugins.genre_sweepers.GridSweeper", "hydra_plugins.genre_sweepers.OptunaSweeper"):
        assert name in result.stdout


def test_pip_check_finds_no_conflict_but_musicnns_own_pins() -> None:
    result = subprocess.run(
        ["bash", str(REPO / ".ci" / "pip_check.sh"), sys.executable],
        text=True,
        capture_output=True,
        timeout=SAFETY_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr


def test_pip_check_fails_on_any_other_conflict(tmp_path: Path) -> None:
    # A stand-in interpreter whose `pip check` reports musicnn's and basic-pitch's known lines and one real conflict.
    fake = tmp_path / "python"
    fake.write_text(
        "#!/bin/sh\necho 'musicnn 0.1.0 requires tensorflow, which is not installed.'\n"
        "echo 'basic-pitch 0.4.0 has requirement resampy<0.4.3,>=0.2.2, but you have resampy 0.4.3.'\n"
        "echo 'optuna 5.0.0 has requirement sqlalchemy>=2, but you have sqlalchemy 1.4.54.'\nexit 1\n"
    )
    fake.chmod(0o755)
    result = subprocess.run(["bash", str(REPO / ".ci" / "pip_check.sh"), str(fake)], text=True, capture_output=True)
    assert result.returncode == 1
    assert "optuna 5.0.0 has requirement sqlalchemy" in result.stderr and "tensorflow" not in result.stderr
    assert "basic-pitch" not in result.stderr

"""Lock and temporary files in folders other users may write to (a shared cache) never follow a planted
symbolic link nor accept a non-regular file; run, sweep and SQLite-study folders genre creates are private."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from genre.core import filesystem
from genre.core.cli_errors import user_error_line
from genre.core.errors import ConfigError
from genre.core.filesystem import (
    UnsafeFileError,
    atomic_output,
    atomic_write_text,
    exclusive_lock,
    release_lock,
    try_lock,
)
from genre.run_files.directory import LOCK_NAME, claim


def _lock_with_exclusive_lock(path: Path) -> None:
    with exclusive_lock(path):
        pass


def _lock_with_try_lock(path: Path) -> None:
    fd = try_lock(path)
    assert fd is not None
    release_lock(fd)


LOCKERS = [_lock_with_exclusive_lock, _lock_with_try_lock]


@pytest.mark.parametrize("lock", LOCKERS, ids=["exclusive_lock", "try_lock"])
def test_a_lock_never_follows_a_planted_link(lock: Callable[[Path], None], tmp_path: Path) -> None:
    victim = tmp_path / "elsewhere" / "created-by-the-victim"
    victim.parent.mkdir()
    existing = tmp_path / "elsewhere" / "important"
    existing.write_text("keep")
    for target in (victim, existing):  # a dangling link (would be created) and one to a real file
        planted = tmp_path / "cache" / f"key-{target.name}.lock"
        planted.parent.mkdir(exist_ok=True)
        planted.symlink_to(target)
        with pytest.raises(UnsafeFileError, match="symbolic link"):
            lock(planted)
    assert not victim.exists() and existing.read_text() == "keep"


@pytest.mark.parametrize("lock", LOCKERS, ids=["exclusive_lock", "try_lock"])
@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_lock_refuses_what_is_not_a_regular_file(lock: Callable[[Path], None], kind: str, tmp_path: Path) -> None:
    planted = tmp_path / "key.lock"
    os.mkfifo(planted) if kind == "fifo" else planted.mkdir()
    with pytest.raises(UnsafeFileError, match="not a regular file") as raised:
        lock(planted)
    line = user_error_line(raised.value)  # one line at the command line, naming the file
    assert line is not None and str(planted) in line and "\n" not in line


def test_a_temporary_file_never_follows_a_planted_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The temporary name is random; here the planter guessed it.
    victim = tmp_path / "elsewhere"
    planted = tmp_path / ".status.json.tmp-guessed"
    planted.symlink_to(victim)
    monkeypatch.setattr(filesystem, "temporary_sibling", lambda path, tag="tmp": planted)
    with pytest.raises(FileExistsError):
        atomic_write_text(tmp_path / "status.json", "secret")
    assert not victim.exists() and not (tmp_path / "status.json").exists()


def test_a_temporary_file_swapped_for_a_link_is_not_renamed_into_place(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.write_text("theirs")
    final = tmp_path / "best.pt"
    final.write_text("old")
    with pytest.raises(UnsafeFileError), atomic_output(final) as tmp:
        tmp.write_text("new")
        tmp.unlink()  # someone else swaps it for a link before the rename
        tmp.symlink_to(other)
    assert not final.is_symlink() and final.read_text() == "old"
    assert not list(tmp_path.glob(".best.pt.tmp-*"))


def test_a_run_dir_lock_never_follows_a_planted_link(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    victim = tmp_path / "victim"
    (run_dir / LOCK_NAME).symlink_to(victim)
    with pytest.raises(ConfigError, match=r"hydra\.run\.dir: .*symbolic link"):
        claim(run_dir, key="hydra.run.dir")
    assert not victim.exists()


@pytest.mark.parametrize("sweep", [False, True], ids=["run", "sweep"])
def test_a_run_or_sweep_dir_genre_creates_is_private(sweep: bool, tmp_path: Path) -> None:
    claimed = claim(tmp_path / "outputs" / "2024-01-01" / "12-00-00", key="hydra.run.dir", default=True, sweep=sweep)
    try:
        assert (claimed.directory.stat().st_mode & 0o777) == 0o700
    finally:
        claimed.release()
    # A folder that exists already keeps the mode its owner gave it.
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    claim(shared, key="hydra.run.dir").release()
    assert (shared.stat().st_mode & 0o777) == 0o755


def test_a_sqlite_study_folder_genre_creates_is_private(tmp_path: Path) -> None:
    from genre.sweeps.optuna.study_storage import prepare_storage

    prepare_storage(f"sqlite:///{tmp_path / 'optuna' / 'study.db'}")
    assert (tmp_path / "optuna" / "study.db").is_file()
    assert ((tmp_path / "optuna").stat().st_mode & 0o777) == 0o700

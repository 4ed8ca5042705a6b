"""A full disk while checkpointing, on a real (tiny, private) file system: one clear error, no temp file
left filling the disk, and the job recorded as failed -- not left "running", which reads as killed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, RUN_PY, TINY_RUN
from helpers.waiting import SAFETY_TIMEOUT

pytestmark = pytest.mark.slow  # a subprocess in its own mount namespace


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs unshare -rm (user and mount namespaces) for a tiny tmpfs")
def test_a_full_disk_while_checkpointing_is_one_error_leaves_no_temp_file_and_records_failure(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    script = Path(__file__).with_name("full_disk.py")
    command = f"mount -t tmpfs -o size=512k genre-full {run_dir} && exec {sys.executable} {script} {run_dir}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        ["unshare", "-rm", "sh", "-c", command], capture_output=True, text=True, timeout=SAFETY_TIMEOUT, env=env
    )
    assert result.returncode == 0, result.stderr
    left = json.loads(result.stdout.strip().splitlines()[-1])
    assert left["error"].startswith("DiskFullError: cannot write ") and "best.pt: no space left" in left["error"]
    assert left["files"] == ["filler", "status.json"]  # no partial best.pt or temp file
    # The job's recorded error is the line the command line prints for a full disk.
    assert left["status"]["status"] == "failed" and left["status"]["error"].startswith("cannot write ")


@pytest.mark.skipif(not _unshare_works(), reason="needs unshare -rm (user and mount namespaces) for a tiny tmpfs")
def test_a_full_disk_while_the_demo_corpus_is_written_is_one_line_and_leaves_no_partial_corpus(tmp_path: Path) -> None:
    cache, work = tmp_path / "cache", tmp_path / "work"
    cache.mkdir()
    work.mkdir()
    # TINY_RUN's corpus (24 clips of 4 s, ~4 MB) cannot fit on a 512 kB cache.
    run = " ".join([sys.executable, str(RUN_PY), *TINY_RUN, f"hydra.run.dir={work / 'run'}"])
    command = f"mount -t tmpfs -o size=512k genre-full {cache} && cd {work} && {run}; echo rc=$?; ls -A {cache}/demo"
    env = {**os.environ, "GENRE_CACHE": str(cache), "HYDRA_FULL_ERROR": "0"}
    result = subprocess.run(
        ["unshare", "-rm", "sh", "-c", command], capture_output=True, text=True, timeout=600, env=env
    )
    assert "rc=2" in result.stdout.splitlines(), result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: cannot write {cache}/demo/") and "no space left" in line, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    left = result.stdout.splitlines()[result.stdout.splitlines().index("rc=2") + 1 :]
    assert not [name for name in left if ".partial-" in name]  # the half-written corpus is gone

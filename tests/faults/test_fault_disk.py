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

from helpers import REPO

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
        ["unshare", "-rm", "sh", "-c", command], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    left = json.loads(result.stdout.strip().splitlines()[-1])
    assert left["error"].startswith("DiskFullError: cannot write ") and "best.pt: no space left" in left["error"]
    assert left["files"] == ["filler", "status.json"]  # no partial best.pt or temp file
    assert left["status"]["status"] == "failed" and left["status"]["error"].startswith("DiskFullError")

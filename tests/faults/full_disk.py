"""Run inside a private mount namespace on a tiny tmpfs (see test_fault_disk.py): checkpoint onto a
full disk, then record the job's failure there; print what was left as JSON."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from genre.core.filesystem import atomic_output
from genre.sweeps.jobs.status import JobStatus


def fill(directory: Path) -> None:
    """Write until the file system is full."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def main() -> None:
    run_dir = Path(sys.argv[1])
    status = JobStatus.start()
    status.write(run_dir)
    fill(run_dir)
    try:
        with atomic_output(run_dir / "best.pt") as tmp:  # as Checkpoint.save writes
            torch.save({"weights": torch.zeros(1 << 20)}, tmp)
        error: BaseException | None = None
    except Exception as exc:  # noqa: BLE001 - reported below
        error = exc
    if error is not None:
        status.finish(error)
        status.write(run_dir)  # as JobStatusRecorder does when the job fails
    print(
        json.dumps(
            {
                "error": f"{type(error).__name__}: {error}" if error else None,
                "files": sorted(path.name for path in run_dir.iterdir()),
                "status": json.loads((run_dir / "status.json").read_text()),
            }
        )
    )


if __name__ == "__main__":
    main()

"""A stand-alone builder of the demo corpus or an audio cache, for the fault-injection tests to kill.

    python builder.py demo|cache ROOT [--slow SECONDS] [--report-fd FD] [--stop-request]

``--slow`` makes every clip take that long (in the forked workers too), so that a test can kill
the builder with certainty mid-build; ``--report-fd`` makes each clip write the pid of the process
making it, one line, to that inherited pipe as it starts (a test blocks on reading it instead of
guessing how long start-up takes); ``--stop-request`` builds as a run does, under a
:class:`~genre.training.interrupt.StopRequest` that stops at once. Prints ``done`` when finished.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

# How the fault tests call these: one corpus / cache each, shared by the killed and the next builder.
DEMO_ARGS = {"clips_per_genre": 4, "clip_seconds": 1.0, "sample_rate": 8000, "seed": 0, "workers": 2}
CACHE_FILES = 24


def slowed(function, seconds: float, report_fd: int | None = None):
    """``function``, sleeping ``seconds`` first (after writing this process's pid to ``report_fd``)."""

    def slow(*args, **kwargs):
        if report_fd is not None:
            os.write(report_fd, f"{os.getpid()}\n".encode())
        time.sleep(seconds)
        return function(*args, **kwargs)

    return slow


def audio_files(folder: Path) -> list[Path]:
    """``CACHE_FILES`` short tones under ``folder`` (written once)."""
    paths = [folder / "tone" / f"tone.{i:05d}.wav" for i in range(CACHE_FILES)]
    if not all(path.exists() for path in paths):
        paths[0].parent.mkdir(parents=True, exist_ok=True)
        for i, path in enumerate(paths):
            t = np.arange(8000) / 8000
            sf.write(path, 0.3 * np.sin(2 * np.pi * (200 + 10 * i) * t), 8000, subtype="PCM_16")
    return paths


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["demo", "cache"])
    parser.add_argument("root", type=Path)
    parser.add_argument("--slow", type=float, default=0.0)
    parser.add_argument("--report-fd", type=int)
    parser.add_argument("--stop-request", action="store_true")
    args = parser.parse_args()
    import genre.data.cache as cache_module
    import genre.demo.corpus as corpus_module
    from genre.data.decode import ClipFormat
    from genre.training.interrupt import StopRequest

    if args.slow or args.report_fd is not None:
        corpus_module.synthesize_clip = slowed(corpus_module.synthesize_clip, args.slow, args.report_fd)
        cache_module.decode_clip = slowed(cache_module.decode_clip, args.slow, args.report_fd)
    with contextlib.ExitStack() as stack:
        if args.stop_request:
            stack.enter_context(stack.enter_context(StopRequest()).at_once("building"))
        if args.kind == "demo":
            corpus_module.generate_demo_corpus(args.root / "demo", progress=False, **DEMO_ARGS)
        else:
            files = audio_files(args.root / "audio-files")
            cache_module.open_cache(files, ClipFormat(8000, 1.0), args.root / "cache", workers=2, progress=False)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

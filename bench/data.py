"""Data-loading benchmark: the decode-once cache against decoding inside ``__getitem__``.

Measures, side by side in one process on a generated corpus, the data time of the first epoch of a
sweep job that is *not* the sweep's first:

* **ours** -- the job lists the dataset, finds the audio cache the first job built (hashing every
  file's path, size and mtime) and reads clips from it;
* **old** -- the design this project grew from: a ``Dataset`` whose ``__getitem__`` decodes and
  resamples a file the first time it is asked for and keeps the result in a dict in process
  memory. Every job starts with an empty dict, so every job's first epoch decodes everything.

Both use the same files (44.1 kHz sources resampled to 22.05 kHz mono with soxr HQ via librosa, padded
or trimmed to 30 s), the same train/val split, the same random 5-s training crops, the same batch
sizes and the same DataLoader (no worker processes); an epoch is one pass over the training split
plus one over the validation split, with no model. Page caches are warm for both (the sources were
just written and decoded, the cache just built). The first job's one-off cache build is reported too.

Then the peak RSS (``ru_maxrss``) of a 1-epoch ``run.py`` job on 2,000 clips vs 200 clips, each in a
fresh process after the cache was built by ``python -m genre.cli.prepare`` (as for a sweep's later
jobs): memory must not grow with the dataset.

    python bench/data.py                 # everything: about 10 minutes on 2 cores, corpora kept in --work
    python bench/data.py --skip-rss      # only the speed comparison
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from genre.data.clips import ClipDataset
from genre.data.decode import INT16_SCALE, ClipFormat
from genre.data.prepare import prepare_data
from genre.data.sources import FolderSource
from genre.data.splits import StratifiedSplit, label_names
from genre.demo import DEMO_GENRES, generate_demo_corpus

# run.py is a script beside the package (not in it): the benchmark starts it by its path in this checkout.
RUN_PY = Path(__file__).resolve().parents[1] / "run.py"

SOURCE_RATE = 44100
SAMPLE_RATE = 22050
CLIP_SECONDS = 30.0
SEGMENT_SECONDS = 5.0  # trainer.segment_seconds' default
TRAIN_BATCH, EVAL_BATCH = 16, 8  # trainer.batch_size, trainer.eval_batch_size defaults
SEED = 0


class DecodeOnAccess(Dataset):
    """The old design: decode + resample on first access, keep the float32 result in a dict."""

    def __init__(
        self, paths: list[str], targets: list[int], fmt: ClipFormat, segment_samples: int | None, seed: int = SEED
    ) -> None:
        self.paths, self.targets, self.fmt = paths, targets, fmt
        self.segment_samples, self.seed, self.epoch = segment_samples, seed, 0
        self.memory: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        import librosa

        path = self.paths[index]
        if path not in self.memory:
            audio, _ = librosa.load(path, sr=self.fmt.sample_rate, mono=True, res_type="soxr_hq", dtype=np.float32)
            n = self.fmt.clip_samples
            self.memory[path] = np.pad(audio, (0, max(0, n - audio.size)))[:n]
        audio = self.memory[path]
        if self.segment_samples is not None:  # the same crop positions as ClipDataset
            rng = np.random.default_rng([self.seed, self.epoch, index])
            start = int(rng.integers(0, audio.size - self.segment_samples + 1))
            audio = audio[start : start + self.segment_samples]
        return torch.from_numpy(audio.copy()), self.targets[index]


def _epoch(train: Dataset, val: Dataset) -> None:
    """One epoch's data: every training batch (shuffled), then every validation batch."""
    generator = torch.Generator().manual_seed(SEED)
    for loader in (
        DataLoader(train, batch_size=TRAIN_BATCH, shuffle=True, drop_last=True, generator=generator),
        DataLoader(val, batch_size=EVAL_BATCH),
    ):
        for audio, _ in loader:
            audio.float()  # what the training step does first (ours: int16 -> float)


def _to_mp3(wav: str, mp3: str) -> None:
    import soundfile as sf

    audio, rate = sf.read(wav, dtype="float32")
    tmp = mp3 + ".part"
    sf.write(tmp, audio, rate, format="MP3", subtype="MPEG_LAYER_III")
    os.replace(tmp, mp3)


def speed_corpus(work: Path, clips_per_genre: int, workers: int) -> dict[str, Path]:
    """The demo corpus as 44.1 kHz WAVs (generated once) and MP3 copies of them (converted once)."""
    wav = generate_demo_corpus(
        work / f"speed-wav-{clips_per_genre}",
        clips_per_genre=clips_per_genre,
        clip_seconds=CLIP_SECONDS,
        sample_rate=SOURCE_RATE,
        seed=1,
        workers=workers,
    )
    mp3 = work / f"speed-mp3-{clips_per_genre}"
    done = mp3 / ".complete"
    if not done.exists():
        jobs = []
        for source in sorted(wav.glob("*/*.wav")):
            target = mp3 / source.parent.name / (source.stem + ".mp3")
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                jobs.append((str(source), str(target)))
        print(f"converting {len(jobs)} clips to MP3 ...", flush=True)
        if jobs:
            with ProcessPoolExecutor(workers) as pool:
                list(pool.map(_to_mp3, *zip(*jobs)))
        done.touch()
    return {"WAV": wav, "MP3": mp3}


def _dataset_cfg(root: Path):
    from omegaconf import OmegaConf

    return OmegaConf.create(
        {
            "source": {"_target_": "genre.data.sources.FolderSource", "root": str(root), "key": "dataset.root"},
            "sample_rate": SAMPLE_RATE,
            "clip_seconds": CLIP_SECONDS,
            "min_seconds": 0.0,
            "short_clips": "pad",
            "decode_workers": None,
            "split": {"_target_": "genre.data.splits.StratifiedSplit", "val": 0.15, "test": 0.15, "seed": SEED},
        }
    )


def _ours(cfg, cache: Path) -> tuple[float, object]:
    """A later job with our design, from listing the files and finding the cache to the last batch."""
    started = time.perf_counter()
    data = prepare_data(cfg, cache, progress=False)
    assert data.cache.stats.decoded == 0
    segment = int(SEGMENT_SECONDS * SAMPLE_RATE)
    _epoch(
        ClipDataset(data.cache, data.splits["train"].rows, data.splits["train"].targets, segment, SEED),
        ClipDataset(data.cache, data.splits["val"].rows, data.splits["val"].targets),
    )
    return time.perf_counter() - started, data


def _old(root: Path, fmt: ClipFormat) -> tuple[float, dict[str, DecodeOnAccess]]:
    """A later job with the old design: list and split the files, then decode each on first access."""
    started = time.perf_counter()
    items = FolderSource(root).items()
    assignment = StratifiedSplit(0.15, 0.15, seed=SEED).assign(items)
    labels = {name: i for i, name in enumerate(label_names(items))}
    split = {name: [item for item, s in zip(items, assignment) if s == name] for name in ("train", "val")}
    segment = int(SEGMENT_SECONDS * SAMPLE_RATE)
    sets = {
        name: DecodeOnAccess(
            [os.path.realpath(i.path) for i in chosen],
            [labels[i.label] for i in chosen],
            fmt,
            segment if name == "train" else None,
        )
        for name, chosen in split.items()
    }
    _epoch(sets["train"], sets["val"])
    return time.perf_counter() - started, sets


def measure_speed(root: Path, cache: Path, repeats: int) -> dict[str, float]:
    """Seconds: the first job's cache build, then a later job's first-epoch data time (median of
    ``repeats`` jobs, each starting from nothing, as a new job does), ours and old."""
    # Single-threaded torch, as in DataLoader worker processes: with num_workers=0 on a busy machine,
    # collating with intra-op threads waits for busy cores (seconds per epoch, for both designs alike).
    torch.set_num_threads(1)
    cfg = _dataset_cfg(root)
    started = time.perf_counter()
    first = prepare_data(cfg, cache, progress=True)
    assert first.cache.stats.built
    build = time.perf_counter() - started
    ours_runs, old_runs = [], []
    for _ in range(repeats):  # interleaved, so that load from elsewhere hits both alike
        seconds, data = _ours(cfg, cache)
        ours_runs.append(seconds)
        seconds, old_sets = _old(root, first.cache.fmt)
        old_runs.append(seconds)
    ours, old = float(np.median(ours_runs)), float(np.median(old_runs))
    # Both did the same work: the old design's clips equal the cache's rows to int16 rounding (the last
    # second aside: MP3 decoders pad the end, where resampling a longer input differs slightly).
    path = old_sets["val"].paths[0]
    cached = data.cache.read(data.cache.row_of[path]).astype(np.float32) / INT16_SCALE
    compared = int((CLIP_SECONDS - 1) * SAMPLE_RATE)
    assert np.abs(old_sets["val"].memory[path][:compared] - cached[:compared]).max() < 2 / INT16_SCALE
    held = sum(a.nbytes for s in old_sets.values() for a in s.memory.values())
    return {
        "build": build,
        "ours": ours,
        "old": old,
        "clips": len(data.cache),
        "old_bytes": held,
        "train": len(old_sets["train"]),
        "val": len(old_sets["val"]),
        "ours_runs": ours_runs,
        "old_runs": old_runs,
    }


# Runs argv[1:] and prints its peak RSS (ru_maxrss, KiB on Linux). The command must be started from
# this small process: a child forked straight from the benchmark counts the benchmark's own memory
# (copied at fork, before exec) in its ru_maxrss.
RSS_PROBE = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
)


def _peak_rss(command: list[str], env: dict[str, str], cwd: Path) -> int:
    """Peak resident memory in bytes of ``command`` run in a fresh process."""
    log = cwd / "stderr.txt"
    with open(log, "w") as stderr:
        probe = subprocess.run(
            [sys.executable, "-c", RSS_PROBE, *command],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    if probe.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{log.read_text()[-3000:]}")
    return int(probe.stdout.strip()) * 1024


def rss_command(clips_per_genre: int, seconds: float) -> tuple[list[str], list[str]]:
    """The prepare and run commands (overrides shared) of a 1-epoch job on the demo corpus."""
    data = [
        "dataset=demo",
        f"dataset.source.clips_per_genre={clips_per_genre}",
        f"dataset.source.clip_seconds={seconds}",
        f"dataset.clip_seconds={seconds}",
    ]
    run = [
        "trainer.epochs=1",
        "trainer.segment_seconds=2.0",
        "trainer.progress=false",
        "model=cnn",
        "model.channels=[8,16]",
        "trainer.device=cpu",
    ]
    return ([sys.executable, "-m", "genre.cli.prepare", *data, "--quiet"], [sys.executable, str(RUN_PY), *data, *run])


def measure_rss(work: Path, sizes: list[int], seconds: float) -> dict[int, int]:
    """Peak RSS of a 1-epoch run per corpus size (clips per genre), cache prepared beforehand."""
    env = {**os.environ, "GENRE_CACHE": str(work / "cache")}
    runs = work / "runs"
    runs.mkdir(exist_ok=True)
    peaks = {}
    for per_genre in sizes:
        prepare, run = rss_command(per_genre, seconds)
        print(f"preparing {per_genre * len(DEMO_GENRES)} clips ...", flush=True)
        subprocess.run(prepare, env=env, cwd=work, check=True, stdout=subprocess.DEVNULL)
        started = time.perf_counter()
        peaks[per_genre] = _peak_rss(run, env, runs)
        print(
            f"  1-epoch run: peak RSS {peaks[per_genre] / 2**20:.0f} MiB ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_work = Path(os.environ.get("GENRE_CACHE", Path.home() / ".cache" / "genre")) / "bench"
    parser.add_argument("--work", type=Path, default=default_work, help=f"corpora and caches (default {default_work})")
    parser.add_argument("--clips-per-genre", type=int, default=34, help="speed corpus: 6 genres x this many 30-s clips")
    parser.add_argument(
        "--rss-clips-per-genre",
        type=int,
        nargs=2,
        default=[34, 334],
        metavar=("SMALL", "LARGE"),
        help="RSS corpora: 6 genres x this many clips (default 204 and 2004)",
    )
    parser.add_argument("--rss-seconds", type=float, default=5.0, help="clip length of the RSS corpora")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for generating corpora")
    parser.add_argument("--repeats", type=int, default=3, help="later jobs timed per design (median reported)")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--fresh", action="store_true", help="delete --work first (corpora are regenerated)")
    args = parser.parse_args()
    if args.fresh:
        shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, work dir {args.work}")

    if not args.skip_speed:
        corpora = speed_corpus(args.work, args.clips_per_genre, args.workers)
        # A cache of its own, emptied each time, so that the first job's build is measured too.
        speed_cache = args.work / "speed-cache"
        shutil.rmtree(speed_cache, ignore_errors=True)
        results = {fmt: measure_speed(root, speed_cache, args.repeats) for fmt, root in corpora.items()}
        print(
            "\nData time of the first epoch of a later sweep job "
            f"({SOURCE_RATE} Hz sources -> {SAMPLE_RATE} Hz, {CLIP_SECONDS:g}-s clips, "
            f"{SEGMENT_SECONDS:g}-s training crops, batch {TRAIN_BATCH}/{EVAL_BATCH}):"
        )
        targets = {"WAV": 10, "MP3": 30}
        for fmt, r in results.items():
            print(
                f"  {fmt}: {r['clips']} clips ({r['train']} train + {r['val']} val read per epoch) | "
                f"old {r['old']:.2f} s | ours {r['ours']:.3f} s | {r['old'] / r['ours']:.0f}x "
                f"(target >= {targets[fmt]}x) | first job's one-off cache build {r['build']:.1f} s | "
                f"old design held {r['old_bytes'] / 2**20:.0f} MiB of decoded audio afterwards"
            )
            print(
                f"       runs: old {', '.join(f'{s:.2f}' for s in r['old_runs'])} s; "
                f"ours {', '.join(f'{s:.3f}' for s in r['ours_runs'])} s"
            )
    if not args.skip_rss:
        small, large = args.rss_clips_per_genre
        peaks = measure_rss(args.work, [small, large], args.rss_seconds)
        n_small, n_large = small * len(DEMO_GENRES), large * len(DEMO_GENRES)
        print(
            f"\nPeak RSS of a 1-epoch run ({args.rss_seconds:g}-s clips, cache prepared): "
            f"{n_small} clips {peaks[small] / 2**20:.0f} MiB | {n_large} clips {peaks[large] / 2**20:.0f} MiB | "
            f"ratio {peaks[large] / peaks[small]:.2f} (target <= 1.5)"
        )


if __name__ == "__main__":
    main()

"""genre's PyTorch musicnn against the original TensorFlow graph, on the same CPU, in one run.

    python bench/musicnn_tensorflow.py                       # 24 synthetic 30-s WAVs at 22.05 kHz
    python bench/musicnn_tensorflow.py --root ~/genre-devset --files 32 --model MTT_musicnn

The original runs in a throw-away environment (never the project's; the recipe of
``tests/references/musicnn_references.py``: TensorFlow 2.21 CPU, tf-keras, librosa 0.11 and the
``musicnn`` 0.1.0 wheel ``--no-deps``), built on first use in ``--venv``. Two comparisons:

* **network**: the same float32 log-mel patches (computed once by genre and handed to both) through the
  network to every layer: the original graph in one reused ``tf.Session`` (its best case: graph built
  and weights restored once, untimed) against genre's ``MusicnnNet`` in ``torch.inference_mode``, both in
  batches of ``--batch`` patches with every core.
* **files**: WAV files to the ``max_pool`` embedding, end to end: the original's public
  ``musicnn.extractor.extractor`` (librosa load and resampling, its float16 log-mel, a graph per call)
  against genre's path (soundfile decode, resampling and log-mel on torch, ``Musicnn.embed``).

Each side runs ``--rounds`` times, alternating, and its fastest round counts, so that a busy machine
slows both alike. Prints seconds, patches or files per second, and genre's speed-up (ratio > 1: genre
is faster), and the largest difference between the two sides' embeddings of the network comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TF_PACKAGES = ["tensorflow-cpu==2.21.0", "tf-keras==2.21.0", "librosa==0.11.0", "soundfile"]
WHEEL = "musicnn==0.1.0"
RATE = 22050


def synthetic_wavs(folder: Path, files: int, seconds: float) -> list[Path]:
    """``files`` deterministic WAVs (decaying harmonic notes over noise), PCM_16 at 22.05 kHz."""
    import soundfile

    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * RATE)) / RATE
    paths = []
    for i in range(files):
        notes = rng.choice([196.0, 220.0, 247.0, 262.0, 294.0, 330.0, 392.0], size=int(seconds * 4))
        tone = np.sin(2 * np.pi * np.repeat(notes, len(t) // len(notes) + 1)[: len(t)] * t)
        signal = 0.2 * tone * np.exp(-((t * 4) % 1.0) * 3) + 0.01 * rng.standard_normal(len(t))
        path = folder / f"clip{i:03d}.wav"
        soundfile.write(path, signal.astype(np.float32), RATE, subtype="PCM_16")
        paths.append(path)
    return paths


def tf_python(venv: Path) -> Path:
    """The throw-away environment's Python, installed on first use."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *TF_PACKAGES], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", WHEEL], check=True)
    return python


# --- the original, run inside the TensorFlow environment --------------------------------------------


def tf_network(model: str, patches: np.ndarray, batch: int) -> tuple[float, np.ndarray]:
    """Seconds for every layer of the original graph over ``patches`` (session reused), and its max_pool."""
    import musicnn
    import tensorflow as tf
    from musicnn import models

    tf.compat.v1.disable_eager_execution()  # the original is TF1 graph code
    tf.compat.v1.reset_default_graph()
    x = tf.compat.v1.placeholder(tf.float32, [None, 187, 96])
    is_training = tf.compat.v1.placeholder(tf.bool)
    outputs = models.define_model(x, is_training, model, 50)
    with tf.compat.v1.Session() as session:
        tf.compat.v1.train.Saver().restore(session, os.path.join(os.path.dirname(musicnn.__file__), model) + "/")
        session.run(outputs, feed_dict={x: patches[:batch], is_training: False})  # warm-up, untimed
        started = time.perf_counter()
        values = [session.run(outputs, feed_dict={x: chunk, is_training: False}) for chunk in _chunks(patches, batch)]
        seconds = time.perf_counter() - started
    max_pool = np.concatenate([v[7] for v in values]) if "musicnn" in model else np.zeros((0,))
    return seconds, max_pool


def tf_files(model: str, paths: list[str]) -> float:
    """Seconds for the original's public extractor over ``paths`` (features included)."""
    from musicnn import extractor

    extractor.extractor(paths[0], model=model, extract_features=True)  # warm-up: imports, first graph
    started = time.perf_counter()
    for path in paths:
        extractor.extractor(path, model=model, extract_features=True)
    return time.perf_counter() - started


def inside_tensorflow(request: Path) -> None:
    """Runs in the TensorFlow environment: times what ``request`` (a JSON file) asks; prints JSON."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    asked = json.loads(request.read_text())
    patches = np.load(asked["patches"])
    network, max_pool = tf_network(asked["model"], patches, asked["batch"])
    np.save(asked["max_pool_out"], max_pool)
    files = tf_files(asked["model"], asked["paths"])
    print(json.dumps({"network": network, "files": files}))


def _chunks(array: np.ndarray, size: int) -> list[np.ndarray]:
    return [array[i : i + size] for i in range(0, len(array), size)]


# --- genre ------------------------------------------------------------------------------------------


def genre_network(model: str, patches: np.ndarray, batch: int) -> tuple[float, np.ndarray]:
    """Seconds for every layer of genre's network over ``patches``, and its max_pool."""
    import torch

    from genre.pretrained.weights import load_network

    net = load_network(model).eval()
    tensor = torch.from_numpy(patches)
    with torch.inference_mode():
        net(tensor[:batch])  # warm-up, untimed
        started = time.perf_counter()
        values = [net(chunk) for chunk in tensor.split(batch)]
        seconds = time.perf_counter() - started
    max_pool = torch.cat([v["max_pool"] for v in values]).numpy() if "musicnn" in model else np.zeros((0,))
    return seconds, max_pool


def genre_files(model: str, paths: list[Path], files_per_pass: int) -> float:
    """Seconds for genre's decode + resample + log-mel + network over ``paths``, ``files_per_pass`` at once."""
    import soundfile
    import torch

    from genre.features.pretrained import Musicnn

    feature = Musicnn(RATE, model=model, layer="max_pool", patches_per_pass=64).eval()

    def embed(batch: list[Path]) -> None:
        waves = [soundfile.read(path, dtype="float32")[0] for path in batch]
        length = min(len(w) for w in waves)
        feature.embed(torch.from_numpy(np.stack([w[:length] for w in waves])))

    with torch.inference_mode():
        embed(paths[:1])  # warm-up, untimed
        started = time.perf_counter()
        for i in range(0, len(paths), files_per_pass):
            embed(paths[i : i + files_per_pass])
        return time.perf_counter() - started


def log_mel_patches(model: str, paths: list[Path]) -> np.ndarray:
    """The float32 log-mel patches of ``paths`` as genre computes them (fed to both networks)."""
    import soundfile
    import torch

    from genre.features.pretrained import Musicnn

    feature = Musicnn(RATE, model=model)
    with torch.inference_mode():
        waves = [torch.from_numpy(soundfile.read(path, dtype="float32")[0])[None] for path in paths]
        return np.concatenate([feature.log_mel_patches(wave).numpy() for wave in waves])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, help="a folder of WAV files (default: synthetic 30-s clips)")
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--model", default="MSD_musicnn", choices=["MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg"])
    parser.add_argument("--batch", type=int, default=64, help="patches per network pass, both sides")
    parser.add_argument("--files-per-pass", type=int, default=8, help="files genre embeds at once")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--venv", type=Path, default=Path("/tmp/musicnn-ref-venv"))
    parser.add_argument("--inside", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        inside_tensorflow(args.inside)
        return
    sys.path.insert(0, str(REPO))
    import torch

    work = Path(tempfile.mkdtemp(prefix="genre-musicnn-bench-"))
    if args.root:
        found = sorted(args.root.expanduser().rglob("*.wav"))
        paths = found[:: max(1, len(found) // args.files)][: args.files]  # spread over the folder's styles
    else:
        paths = synthetic_wavs(work, args.files, 30.0)
    patches = log_mel_patches(args.model, paths)
    np.save(work / "patches.npy", patches)
    request = work / "request.json"
    request.write_text(
        json.dumps(
            {
                "model": args.model,
                "patches": str(work / "patches.npy"),
                "batch": args.batch,
                "paths": [str(p) for p in paths],
                "max_pool_out": str(work / "tf_max_pool.npy"),
            }
        )
    )
    python = tf_python(args.venv)
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    ours_net, ours_files, tf_net, tf_file = [], [], [], []
    for _ in range(args.rounds):
        seconds, our_pool = genre_network(args.model, patches, args.batch)
        ours_net.append(seconds)
        ours_files.append(genre_files(args.model, paths, args.files_per_pass))
        done = subprocess.run(
            [str(python), __file__, "--inside", str(request)], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"the TensorFlow side failed:\n{done.stderr[-3000:]}")
        timed = json.loads(done.stdout.strip().splitlines()[-1])
        tf_net.append(timed["network"])
        tf_file.append(timed["files"])
    tf_pool = np.load(work / "tf_max_pool.npy")
    n, f = len(patches), len(paths)
    print(
        f"{args.model}, {f} files ({n} patches of 3 s), torch {torch.__version__} with {torch.get_num_threads()} "
        f"threads, {os.cpu_count()} cores; fastest of {args.rounds} rounds"
    )
    print("what                     TensorFlow (original)      genre (PyTorch)       genre speed-up")
    print(
        f"network, {args.batch}-patch passes  {min(tf_net):7.2f} s {n / min(tf_net):7.1f} patch/s "
        f"{min(ours_net):7.2f} s {n / min(ours_net):7.1f} patch/s   {min(tf_net) / min(ours_net):5.2f}x"
    )
    print(
        f"files to max_pool         {min(tf_file):7.2f} s {f / min(tf_file):7.2f} file/s  "
        f"{min(ours_files):7.2f} s {f / min(ours_files):7.2f} file/s    {min(tf_file) / min(ours_files):5.2f}x"
    )
    if tf_pool.size:
        print(f"max |max_pool difference| on the same patches: {np.abs(tf_pool - our_pool).max():.2e}")


if __name__ == "__main__":
    main()

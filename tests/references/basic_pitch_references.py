"""Reference outputs of the ORIGINAL basic-pitch network (its ONNX file under onnxruntime) for
tests/pretrained/test_basic_pitch_parity.py.

    python tests/references/basic_pitch_references.py [--venv /tmp/basic-pitch-ref-venv]

Builds a throw-away virtual environment (never the project's) with ``onnxruntime`` and numpy, installs
the ``basic-pitch`` 0.4.0 wheel there ``--no-deps`` (only for ``saved_models/icassp_2022/nmp.onnx``;
its own pins want TensorFlow), then re-runs itself inside it and writes

* ``basic_pitch_references.npz``: ``signals`` (int16, 22050 Hz, one 43844-sample model window each;
  the network's input is ``signals / 32768`` as float32, shaped ``(n, 43844, 1)``) and ``note``,
  ``onset`` (``(n, 172, 88)``) and ``contour`` (``(n, 172, 264)``): what onnxruntime returns for the
  three signals run as one batch, named as basic-pitch's own ``inference.Model.predict`` names the
  graph's outputs (``StatefulPartitionedCall:1``, ``:2`` and ``:0``);
* ``basic_pitch_references.json``: the versions used, the ONNX file's SHA-256, and how far the batched
  outputs are from each signal run alone (onnxruntime's own batch-size noise: a floor for parity).

Signal 2 is silence on purpose: the network's log-power normalisation divides by the window's range,
which is 0 there (the original returns 0 for that division).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NPZ = HERE / "basic_pitch_references.npz"
JSON = HERE / "basic_pitch_references.json"
PACKAGES = ["onnxruntime==1.32.0", "numpy"]
WHEEL = "basic-pitch==0.4.0"
SAMPLE_RATE = 22050
SAMPLES = 43844  # basic_pitch.constants.AUDIO_N_SAMPLES: 2 s less one hop of 256
# basic-pitch's names for the graph's outputs (inference.py, ONNX branch).
OUTPUTS = {
    "note": "StatefulPartitionedCall:1",
    "onset": "StatefulPartitionedCall:2",
    "contour": "StatefulPartitionedCall:0",
}
INPUT = "serving_default_input_2:0"


def make_signals():
    """Three deterministic one-window signals as int16 (the stored form; float = int16 / 32768)."""
    import numpy as np

    t = np.arange(SAMPLES) / SAMPLE_RATE
    # An arpeggiated chord of plucked harmonic tones (MIDI 48, 60, 64, 67, 72), one onset every 0.35 s.
    chord = np.zeros(SAMPLES)
    for k, midi in enumerate((48, 60, 64, 67, 72)):
        start = 0.1 + 0.35 * k
        f0 = 440.0 * 2 ** ((midi - 69) / 12)
        on = t >= start
        envelope = np.where(on, np.exp(-(t - start) * 2.5), 0.0)
        tone = sum(np.sin(2 * np.pi * h * f0 * (t - start)) / h**1.5 for h in range(1, 6))
        chord += 0.06 * envelope * tone
    # A sung-like glide: 196 Hz to 587 Hz with 5.5-Hz vibrato, three harmonics, over a little noise.
    rng = np.random.default_rng(0)
    f = 196.0 * 3 ** (t / t[-1]) * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f) / SAMPLE_RATE
    glide = 0.1 * sum(np.sin(h * phase) / h for h in (1, 2, 3)) + 0.003 * rng.standard_normal(SAMPLES)
    silence = np.zeros(SAMPLES)
    signals = np.stack([chord, glide, silence])
    return np.round(np.clip(signals, -1, 32767 / 32768) * 32768).astype(np.int16)


def _onnx_path() -> Path:
    """``nmp.onnx`` in the installed wheel, found without importing the package (it imports TensorFlow)."""
    spec = importlib.util.find_spec("basic_pitch")
    assert spec is not None and spec.submodule_search_locations, "basic-pitch is not installed"
    return Path(next(iter(spec.submodule_search_locations))) / "saved_models" / "icassp_2022" / "nmp.onnx"


def inside() -> None:
    """Runs in the scratch environment: onnxruntime's outputs for the signals, batched and one by one."""
    import numpy as np
    import onnxruntime as ort

    path = _onnx_path()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # deterministic reductions
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    signals = make_signals()
    x = (signals.astype(np.float32) / 32768)[:, :, None]
    names = list(OUTPUTS)
    batched = dict(zip(names, session.run([OUTPUTS[n] for n in names], {INPUT: x})))
    alone_gap = {name: 0.0 for name in names}
    for i in range(len(x)):
        single = dict(zip(names, session.run([OUTPUTS[n] for n in names], {INPUT: x[i : i + 1]})))
        for name in names:
            alone_gap[name] = max(alone_gap[name], float(np.abs(single[name][0] - batched[name][i]).max()))
    for name, value in batched.items():
        if not np.isfinite(value).all():
            raise SystemExit(f"{name}: onnxruntime gave non-finite values")
    np.savez_compressed(NPZ, signals=signals, **{name: value.astype(np.float32) for name, value in batched.items()})
    versions = {
        "python": sys.version.split()[0],
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "basic_pitch": _version("basic-pitch"),
    }
    meta = {
        "versions": versions,
        "onnx_file": "basic_pitch/saved_models/icassp_2022/nmp.onnx",
        "onnx_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "sample_rate": SAMPLE_RATE,
        "samples": SAMPLES,
        "signals": ["arpeggiated chord", "vibrato glide over noise", "silence"],
        "outputs": OUTPUTS,
        "batched_vs_alone_max_abs": alone_gap,
        "intra_op_num_threads": 1,
    }
    JSON.write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {NPZ} ({NPZ.stat().st_size} bytes) and {JSON}")


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


def main() -> None:
    """Build (or reuse) the scratch environment and run :func:`inside` there."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", default="/tmp/basic-pitch-ref-venv", help="the throw-away environment")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        inside()
        return
    python = Path(args.venv) / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", args.venv], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PACKAGES], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", WHEEL], check=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([str(python), str(Path(__file__).resolve()), "--inside"], check=True, env=env)


if __name__ == "__main__":
    main()

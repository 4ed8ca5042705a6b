"""Reference outputs of the ORIGINAL musicnn (TensorFlow) for tests/test_musicnn_parity.py.

    python tests/references/musicnn_references.py [--venv /tmp/musicnn-ref-venv]

Builds a throw-away virtual environment (never the project's) with a TensorFlow that still runs the
original's TF1 graph code, the original ``musicnn`` 0.1.0 (installed ``--no-deps``: its own pins want
TensorFlow <= 2.15 and numpy < 1.17), then re-runs itself inside it and writes

* ``musicnn_references.npz``: the test signals (int16, 16 kHz) and, for each of the four models,
  - ``<model>/extractor/<layer>``: what the original's own ``musicnn.extractor.extractor`` returns
    for each signal written to a WAV file (its float16 input step included);
  - ``<model>/graph/<layer>``: the original graph (``musicnn.models.define_model`` + the wheel's
    checkpoint) fed the original's log-mel patches computed in float32 (no float16 cast), every layer;
    frame-level layers are kept at every ``FRAME_STEP``-th frame to keep the file small;
* ``musicnn_references.json``: the versions used and what each entry is.

The signals are quiet on purpose: the original casts the mel power to float16 before
``log10(10000 x + 1)`` and ``10000 x`` overflows float16 (max 65504) on loud audio; these stay finite
there (the script checks), so both references are defined.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
NPZ = HERE / "musicnn_references.npz"
JSON = HERE / "musicnn_references.json"
PACKAGES = ["tensorflow-cpu==2.21.0", "tf-keras==2.21.0", "librosa==0.11.0", "soundfile"]
WHEEL = "musicnn==0.1.0"
MODELS = ["MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg"]
SAMPLE_RATE = 16000
# 6 s at 16 kHz: 376 frames, i.e. two whole 187-frame patches.
SAMPLES = 96000
FRAME_STEP = 11
MUSICNN_LAYERS = ["taggram", "timbral", "temporal", "cnn1", "cnn2", "cnn3", "mean_pool", "max_pool", "penultimate"]


def make_signals():
    """Three quiet, deterministic 6-s signals as int16 (the stored form; float = int16 / 32768)."""
    import numpy as np

    t = np.arange(SAMPLES) / SAMPLE_RATE
    tones = sum(np.sin(2 * np.pi * f * t) / (i + 1) for i, f in enumerate((220.0, 330.0, 440.0, 660.0, 1760.0)))
    tones = 0.01 * tones * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    sweep = 0.006 * np.sin(2 * np.pi * (100.0 * t + (3900.0 / 12.0) * t**2))
    rng = np.random.default_rng(0)
    bursts = rng.standard_normal(SAMPLES) * np.exp(-((t * 4) % 1.0) * 12.0) * 0.008
    signals = np.stack([tones, sweep, bursts])
    return np.round(signals * 32768).astype(np.int16)


def _graph_outputs(model: str, patches):
    """Every layer of the original graph for float32 log-mel patches ``(n, 187, 96)``."""
    import numpy as np
    import tensorflow as tf
    from musicnn import models

    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, 187, 96])
        is_training = tf.compat.v1.placeholder(tf.bool)
        outs = models.define_model(x, is_training, model, 50)
        taggram = tf.nn.sigmoid(outs[0])
    with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        import musicnn

        tf.compat.v1.train.Saver().restore(sess, os.path.join(os.path.dirname(musicnn.__file__), model) + "/")
        values = sess.run([taggram, *outs[1:]], feed_dict={x: patches, is_training: False})
    if "vgg" in model:
        names = ["taggram", "pool1", "pool2", "pool3", "pool4", "pool5"]
        result = dict(zip(names, values))
        result = {
            "taggram": result["taggram"],
            "pool4": result["pool4"],
            "pool5": result["pool5"].reshape(len(patches), -1),
        }
    else:
        result = dict(zip(MUSICNN_LAYERS, values))
        for name in ("timbral", "temporal", "cnn1", "cnn2", "cnn3"):
            result[name] = np.squeeze(result[name], axis=-1) if result[name].ndim == 4 else result[name]
            result[name] = result[name][:, ::FRAME_STEP]  # (n, frames / FRAME_STEP, channels)
    return {k: np.asarray(v, dtype=np.float32) for k, v in result.items()}


def inside() -> None:
    """Runs in the scratch environment: the original's outputs for every model and signal."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import librosa
    import numpy as np
    import soundfile
    import tensorflow as tf
    from musicnn import configuration, extractor

    signals = make_signals()
    out: dict[str, np.ndarray] = {"signals": signals}
    notes = {}
    with tempfile.TemporaryDirectory() as tmp:
        wavs = []
        for i, signal in enumerate(signals):
            path = os.path.join(tmp, f"signal{i}.wav")
            soundfile.write(path, signal.astype(np.float32) / 32768, SAMPLE_RATE, subtype="FLOAT")
            wavs.append(path)
        mels = []
        for path in wavs:
            audio, sr = librosa.load(path, sr=configuration.SR)
            mel = librosa.feature.melspectrogram(
                y=audio,
                sr=sr,
                hop_length=configuration.FFT_HOP,
                n_fft=configuration.FFT_SIZE,
                n_mels=configuration.N_MELS,
            ).T
            notes[os.path.basename(path)] = {"max_mel_power": float(mel.max()), "float16_overflow_at": 65504.0 / 10000}
            log_mel = np.log10(10000 * mel + 1)  # float32: the original's step without its float16 cast
            n = (len(log_mel) - 187) // 187 + 1
            mels.append(np.stack([log_mel[k * 187 : (k + 1) * 187] for k in range(n)]))
        for model in MODELS:
            for i, (path, patches) in enumerate(zip(wavs, mels)):
                for layer, value in _graph_outputs(model, patches).items():
                    out[f"{model}/graph/{layer}/{i}"] = value
                taggram, _, features = extractor.extractor(path, model=model, extract_features=True)
                out[f"{model}/extractor/taggram/{i}"] = np.asarray(taggram, dtype=np.float32)
                # (the extractor's cnn1-3 and penultimate repeat the first patch's values: a bug in 0.1.0)
                for layer in ("pool5",) if "vgg" in model else ("mean_pool", "max_pool"):
                    value = np.asarray(features[layer], dtype=np.float32)
                    out[f"{model}/extractor/{layer}/{i}"] = value.reshape(len(taggram), -1)
                for key in [k for k in out if k.startswith(f"{model}/") and k.endswith(f"/{i}")]:
                    if not np.isfinite(out[key]).all():
                        raise SystemExit(f"{key}: the original gave non-finite values; use quieter signals")
    np.savez_compressed(NPZ, **out)
    import musicnn

    versions = {
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "librosa": librosa.__version__,
        "numpy": np.__version__,
        "musicnn": getattr(musicnn, "__version__", "0.1.0"),
        "tf_keras": _version("tf-keras"),
    }
    JSON.write_text(
        json.dumps(
            {
                "versions": versions,
                "models": MODELS,
                "frame_step": FRAME_STEP,
                "sample_rate": SAMPLE_RATE,
                "signals": notes,
                "keys": "<model>/<extractor|graph>/<layer>/<signal index>",
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {NPZ} ({NPZ.stat().st_size} bytes) and {JSON}")


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


def main() -> None:
    """Build (or reuse) the scratch environment and run :func:`inside` there."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", default="/tmp/musicnn-ref-venv", help="the throw-away environment")
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
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([str(python), str(Path(__file__).resolve()), "--inside"], check=True, env=env)


if __name__ == "__main__":
    main()

"""Where the pretrained musicnn weights come from: the installed ``musicnn`` wheel, read without TensorFlow.

The wheel (ISC licence) ships each model as a TF1 checkpoint in ``musicnn/<model>/`` (files ``.index``
and ``.data-00000-of-00001``: the checkpoint prefix is the folder itself). Its Python code imports
TensorFlow, so the package is located with ``importlib`` and never imported.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from genre.pretrained.musicnn import MusicnnNet, VGGNet
from genre.pretrained.tf_checkpoint import TFCheckpoint

MODELS = ("MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg")
INSTALL = "pip install --no-deps musicnn==0.1.0"


def wheel_directory() -> Path:
    """The installed ``musicnn`` package's folder; a one-line ValueError saying how to install it otherwise."""
    spec = importlib.util.find_spec("musicnn")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ValueError(
            f"model: the musicnn weights are not installed (package 'musicnn' not found). Install them "
            f"with `{INSTALL}` (the Makefile's set-up step does)"
        )
    return Path(locations[0])


def checkpoint_prefix(model: str) -> str:
    """The TF checkpoint prefix of ``model`` inside the wheel."""
    if model not in MODELS:
        raise ValueError(f"model: '{model}' is not a musicnn model. Use one of {', '.join(MODELS)}")
    folder = wheel_directory() / model
    if not (folder / ".index").is_file():
        raise ValueError(
            f"model: the musicnn package at {folder.parent} has no {model} checkpoint. Reinstall it with `{INSTALL}`"
        )
    return str(folder) + os.sep


def checkpoint_fingerprint(model: str) -> str:
    """A short hash of the checkpoint's index and the data file's size: changes when the weights do."""
    prefix = checkpoint_prefix(model)
    checkpoint = TFCheckpoint(prefix)
    digest = hashlib.sha256(Path(prefix + ".index").read_bytes())
    for shard in range(checkpoint.num_shards):
        digest.update(str(checkpoint.shard_path(shard).stat().st_size).encode())
    return digest.hexdigest()[:16]


def load_network(model: str) -> MusicnnNet | VGGNet:
    """The network of ``model`` with its weights from the wheel, in eval mode."""
    net: MusicnnNet | VGGNet = VGGNet() if model.endswith("_vgg") else MusicnnNet()
    net.load_tf(TFCheckpoint(checkpoint_prefix(model)))
    return net.eval()

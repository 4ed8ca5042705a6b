"""Bad and suspicious input, each answered before any work with one line naming the key (or skipped
with its reason), never a traceback or a silently wrong run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genre.core.errors import ConfigError
from genre.core.overrides import hydra_overrides
from genre.data.decode import ClipFormat, DecodeError, decode_clip
from genre.data.prepare import prepare_data
from genre.experiment.spec import build_spec
from helpers import TINY_RUN, TINY_TRAINING, compose_run
from helpers.dataset_trees import make_genre_folder, tone, write_audio

RATE = 8000


def _check(tmp_path: Path, *overrides: str) -> None:
    base = TINY_TRAINING if any(item.startswith("dataset=") for item in overrides) else TINY_RUN
    build_spec(compose_run([*base, *overrides], tmp_path / "run", tmp_path / "cache"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.epochs=abc", r"^trainer.epochs: 'abc' is not a whole number\. Use e\.g\. trainer\.epochs=30$"),
        ("trainer.epochs=2.5", r"^trainer.epochs: '2.5' is not a whole number"),
        ("trainer.batch_size=0", r"^trainer.batch_size: 0 is not at least 1\. "),
        ("optimizer.lr=-1", r"^optimizer.lr: -1 is not above 0\. "),
        ("optimizer.lr=nan", r"^optimizer.lr: 'nan' is not a number"),
        ("scheduler.warmup_epochs=5", r"^scheduler.warmup_epochs: 5 epochs of warm-up is longer than the 1-epoch run"),
        ("dataset=gtzan", r"^dataset.root: is not set\. Add dataset.root=\.\.\."),
        (
            "trainer.segment_seconds=0.05",
            r"^trainer.segment_seconds: 0.05 s is shorter than the feature's FFT window "
            r"\(feature.transform.n_fft=2048",
        ),
        ("dataset.clip_seconds=1e7", r"^dataset.clip_seconds: 1e\+07 s is not within \(0, 3600\] s"),
        (
            "objective=val/loss objective_mode=max",
            r"^objective_mode: max with objective=val/loss would keep the "
            r"highest-loss checkpoint",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_its_key(override: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        _check(tmp_path, *override.split())


def test_objective_val_loss_keeps_the_lowest_loss_and_minimises_it(tmp_path: Path) -> None:
    cfg = compose_run([*TINY_RUN, "objective=val/loss"], tmp_path / "run", tmp_path / "cache")
    assert cfg.objective_mode == "min"
    build_spec(cfg)
    search = compose_run([*TINY_RUN, "objective=val/loss", "hparams_search=optuna"], tmp_path / "run", tmp_path / "c")
    assert search.hydra.sweeper.direction == "minimize"
    assert compose_run(TINY_RUN, tmp_path / "run", tmp_path / "cache").objective_mode == "max"


def test_an_unwritable_cache_dir_is_one_line(tmp_path: Path) -> None:
    # /proc refuses new files even to root (chmod would not stop root).
    cfg = compose_run(TINY_RUN, tmp_path / "run", tmp_path / "cache")
    cfg.paths.cache_dir = "/proc/genre-cache"
    with pytest.raises(ConfigError, match=r"^paths.cache_dir: cannot write in '/proc/genre-cache' \(.*\)\. Point"):
        build_spec(cfg)


def test_a_hydra_quoted_resume_path_is_not_quoted_twice() -> None:
    assert hydra_overrides(["resume='my runs/12-00-00'"])[0] == "hydra.run.dir='my runs/12-00-00'"
    assert hydra_overrides(["resume=my runs/12-00-00"])[0] == "hydra.run.dir='my runs/12-00-00'"


def test_a_truncated_wav_and_a_one_sample_file_are_skipped_not_padded_to_silence(tmp_path: Path) -> None:
    whole = write_audio(tmp_path / "whole.wav", tone(30.0, RATE, 440.0), RATE, "WAV")
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(whole.read_bytes()[: 44 + 16])  # the header (30 s) and 8 samples: a broken download
    one = write_audio(tmp_path / "one.wav", np.zeros(1, dtype=np.float32), RATE, "WAV")
    fmt = ClipFormat(RATE, 30.0)
    for path in (truncated, one):
        with pytest.raises(DecodeError, match=r"too short .* half the 30-s clip: truncated"):
            decode_clip(path, fmt)
    assert decode_clip(whole, fmt).shape == (30 * RATE,)


def test_a_float_wav_above_full_scale_is_scaled_not_clipped(tmp_path: Path) -> None:
    audio = 3.0 * np.sin(2 * np.pi * 50 * np.arange(RATE) / RATE).astype(np.float32)
    path = tmp_path / "loud.wav"
    sf.write(path, audio, RATE, subtype="FLOAT")
    clip = decode_clip(path, ClipFormat(RATE, 1.0)).astype(np.float64) / 32768
    np.testing.assert_allclose(clip, audio / 3.0, atol=2e-3)  # the waveform, not a square wave


def _folder(tmp_path: Path, *overrides: str):
    cfg = compose_run(
        [
            "dataset=folder",
            f"dataset.sample_rate={RATE}",
            "dataset.clip_seconds=2",
            "dataset.decode_workers=1",
            *overrides,
        ],
        tmp_path / "run",
        tmp_path / "cache",
    )
    return prepare_data(cfg.dataset, tmp_path / "cache", progress=False)


def test_a_one_genre_dataset_is_refused(tmp_path: Path) -> None:
    root = make_genre_folder(tmp_path / "one", genres=("ambient",), per_genre=6)
    with pytest.raises(ConfigError, match=r"^dataset: the usable clips hold one genre only \(ambient\)"):
        _folder(tmp_path, f"dataset.root={root}")


def test_a_genre_without_training_clips_is_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "list.csv"
    root = make_genre_folder(tmp_path / "two", genres=("ambient", "polka"), per_genre=4)
    rows = ["path,label,split"]
    for genre, splits in (("ambient", ["train", "train", "val", "test"]), ("polka", ["val", "val", "test", "test"])):
        files = sorted((root / genre).iterdir())
        rows += [f"{os.path.relpath(path, tmp_path)},{genre},{split}" for path, split in zip(files, splits)]
    manifest.write_text("\n".join(rows) + "\n")
    with pytest.raises(ConfigError, match=r"^dataset.split: genre\(s\) polka have no clip in the training split"):
        _folder(tmp_path, f"dataset.manifest={manifest}", "dataset/split=official")

"""The Trainer on its own: random waveforms, a tiny model, no Hydra and no dataset.

It learns a separable toy problem, times itself, keeps best.pt/last.pt as typed checkpoints, and an
interrupted fit continued from its last.pt ends with exactly the weights of an uninterrupted one.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from genre.augment import Augmentations
from genre.core.errors import TrainingInterrupted
from genre.features.extractor import FeatureExtractor
from genre.features.spectral import MelSpectrogram
from genre.models.linear import LinearBaseline
from genre.run_files import BEST_CHECKPOINT, LAST_CHECKPOINT, Checkpoint, RunIdentity
from genre.training.device import resolve_precision
from genre.training.distributed import DistContext
from genre.training.early_stopping import EarlyStopping
from genre.training.interrupt import StopRequest
from genre.training.loaders import eval_loader, train_loader
from genre.training.schedules import warmup_cosine
from genre.training.seeding import restore_rng_state, seed_everything
from genre.training.trainer import Trainer

SAMPLE_RATE = 8000
SAMPLES = 2048
CLASSES = 3
CPU = torch.device("cpu")


def _waveforms(n: int, seed: int) -> TensorDataset:
    """int16 clips whose class is the frequency band of a noisy tone (class c: around 300·(c+1)·2 Hz)."""
    generator = torch.Generator().manual_seed(seed)
    targets = torch.arange(n) % CLASSES
    t = torch.arange(SAMPLES) / SAMPLE_RATE
    freqs = 600.0 * (targets + 1).float() * (1 + 0.05 * torch.rand(n, generator=generator))
    audio = 0.5 * torch.sin(2 * torch.pi * freqs[:, None] * t) + 0.05 * torch.randn(n, SAMPLES, generator=generator)
    return TensorDataset((audio * 32767).to(torch.int16), targets)


class _StopAfter(StopRequest):
    """A stop request that 'arrives' once the trainer has taken ``steps`` optimisation steps."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps
        self.trainer: Trainer | None = None

    @property
    def requested(self) -> bool:
        if self.trainer is not None and self.trainer.step >= self.steps:
            self.signum = signal.SIGTERM
        return self.signum is not None


def _trainer(stop: StopRequest | None = None, epochs: int = 4) -> tuple[Trainer, EarlyStopping]:
    seed_everything(3)
    features = FeatureExtractor(MelSpectrogram(sample_rate=SAMPLE_RATE, n_fft=256, hop_length=128, n_mels=16))
    features.fit_normalization(iter([_waveforms(12, seed=9).tensors[0].float() / 32768.0]))
    model = LinearBaseline(n_bands=features.n_bands, n_classes=CLASSES)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05)
    schedule = warmup_cosine(optimizer, epochs=epochs, steps_per_epoch=6)
    trainer = Trainer(
        model,
        features,
        optimizer,
        schedule,
        device=CPU,
        precision=resolve_precision("32", CPU),
        loss_fn=nn.CrossEntropyLoss(),
        augment=Augmentations([], CLASSES),
        segment_samples=1024,
        aggregate="mean",
        progress=False,
        stop=stop,
    )
    if isinstance(stop, _StopAfter):
        stop.trainer = trainer
    return trainer, EarlyStopping(name="val/loss", mode="min")


def _loaders() -> tuple[torch.utils.data.DataLoader, torch.utils.data.DataLoader]:
    train = train_loader(_waveforms(24, seed=1), batch_size=4, seed=3, ctx=DistContext(), device=CPU, num_workers=0)
    val = eval_loader(_waveforms(9, seed=2), batch_size=4, ctx=DistContext(), device=CPU, num_workers=0)
    return train, val


IDENTITY = RunIdentity(config={"model": {"name": "toy"}}, labels=["low", "mid", "high"], audio_cache="none")


@pytest.mark.slow
def test_trainer_learns_times_itself_and_keeps_typed_checkpoints(tmp_path: Path) -> None:
    trainer, tracker = _trainer()
    train, val = _loaders()
    before = trainer.evaluate(val)
    result = trainer.fit(train, val, epochs=4, tracker=tracker, run_dir=tmp_path, identity=IDENTITY)
    after = trainer.evaluate(val)
    assert [entry["epoch"] for entry in result.history] == [1, 2, 3, 4]
    assert after.loss < before.loss and after.acc > 0.9, (before, after)
    for entry in (*result.history, result.perf):
        assert entry["perf/clips_per_second"] > 0 and 0.0 <= entry["perf/data_wait_fraction"] <= 1.0
    best = Checkpoint.load(tmp_path / BEST_CHECKPOINT)
    last = Checkpoint.load(tmp_path / LAST_CHECKPOINT)
    assert best.epoch == result.best_epoch and last.epoch == 4 and last.position.epoch == 5
    assert best.labels == IDENTITY.labels and best.config == IDENTITY.config
    assert best.metrics is not None and best.metrics["val/loss"] == pytest.approx(tracker.best)
    assert torch.equal(last.model["linear.weight"], trainer.module.state_dict()["linear.weight"])


@pytest.mark.slow
def test_interrupted_fit_continued_from_last_pt_matches_an_uninterrupted_one(tmp_path: Path) -> None:
    (tmp_path / "reference").mkdir()
    (tmp_path / "run").mkdir()
    reference, tracker = _trainer()
    train, val = _loaders()
    reference.fit(train, val, epochs=4, tracker=tracker, run_dir=tmp_path / "reference", identity=IDENTITY)

    stopped, tracker = _trainer(stop=_StopAfter(steps=9))  # epoch 2, batch 3 of 6
    train, val = _loaders()
    with pytest.raises(TrainingInterrupted, match="at epoch 2, batch 3"):
        stopped.fit(train, val, epochs=4, tracker=tracker, run_dir=tmp_path / "run", identity=IDENTITY)
    saved = Checkpoint.load(tmp_path / "run" / LAST_CHECKPOINT)
    assert (saved.position.epoch, saved.position.batch, saved.epoch) == (2, 3, None)

    resumed, tracker = _trainer()
    resumed.restore(saved)
    tracker.load_state_dict(saved.early_stopping)
    restore_rng_state(saved.rng[0], CPU)
    train, val = _loaders()
    result = resumed.fit(
        train, val, epochs=4, tracker=tracker, run_dir=tmp_path / "run", identity=IDENTITY, resume=saved
    )
    assert [entry["epoch"] for entry in result.history] == [1, 2, 3, 4]
    for name, tensor in reference.module.state_dict().items():
        assert torch.equal(tensor, resumed.module.state_dict()[name]), name
    assert resumed.step == reference.step == 24


class _Recorder:
    """An epoch callback that records what it is told and ends training after epoch ``stop_after``."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.stop_after = stop_after
        self.seen: list[tuple[int, float]] = []

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> bool:
        self.seen.append((epoch, metrics["val/loss"]))
        return epoch == self.stop_after


@pytest.mark.slow
def test_injected_callbacks_see_every_epoch_and_one_can_stop_the_run(tmp_path: Path) -> None:
    trainer, tracker = _trainer()
    train, val = _loaders()
    watcher = _Recorder()
    result = trainer.fit(
        train, val, epochs=4, tracker=tracker, run_dir=tmp_path, identity=IDENTITY, callbacks=[watcher]
    )
    assert [epoch for epoch, _ in watcher.seen] == [1, 2, 3, 4] and result.stopped_by_callback is None
    assert [loss for _, loss in watcher.seen] == [entry["val/loss"] for entry in result.history]

    trainer, tracker = _trainer()
    train, val = _loaders()
    watcher, stopper = _Recorder(), _Recorder(stop_after=2)
    result = trainer.fit(
        train, val, epochs=4, tracker=tracker, run_dir=tmp_path, identity=IDENTITY, callbacks=[stopper, watcher]
    )
    # Every callback is told of the epoch that stops the run; the run ends there, its checkpoint saved.
    assert [epoch for epoch, _ in stopper.seen] == [epoch for epoch, _ in watcher.seen] == [1, 2]
    assert result.stopped_by_callback == 2 and [entry["epoch"] for entry in result.history] == [1, 2]
    assert Checkpoint.load(tmp_path / LAST_CHECKPOINT).position.epoch == 3

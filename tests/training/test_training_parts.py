"""Unit tests of the training parts: segments and aggregation, schedules, weight-decay groups, early
stopping, augmentation and the resumable sampler."""

from __future__ import annotations

import math
import random
from itertools import pairwise

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from genre import CONFIG_DIR
from genre.augment import (
    Augmentations,
    ColoredNoise,
    Mixup,
    PitchShift,
    PolarityInversion,
    RandomFilter,
    RandomGain,
    RandomSpeed,
    SpecAugment,
)
from genre.training.early_stopping import EarlyStopping
from genre.training.evaluation import summarize
from genre.training.param_groups import decay_groups
from genre.training.sampling import EpochSampler
from genre.training.segments import clip_probabilities, clip_scores, split_segments
from helpers import compose_config

CONF = CONFIG_DIR


# --- segments and clip-level aggregation ---------------------------------------------------------------


def test_split_segments_is_consecutive_and_drops_the_remainder() -> None:
    audio = torch.arange(2 * 10, dtype=torch.float32).reshape(2, 10)
    segments = split_segments(audio, 3)
    assert segments.shape == (2, 3, 3)
    assert torch.equal(segments[1, 2], audio[1, 6:9])
    with pytest.raises(ValueError):
        split_segments(audio, 11)


def test_mean_and_vote_can_disagree() -> None:
    # Two segments weakly for class 0, one strongly for class 1: the vote says 0, the mean logit says 1.
    logits = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 10.0]]])
    assert clip_scores(logits, "mean").argmax().item() == 1
    assert clip_scores(logits, "vote").argmax().item() == 0
    assert torch.allclose(clip_probabilities(logits, "vote"), torch.tensor([[2 / 3, 1 / 3]]))
    # A tied vote goes to the larger mean logit.
    tied = torch.tensor([[[2.0, 0.0], [0.0, 5.0]]])
    assert clip_scores(tied, "vote").argmax().item() == 1


def test_summarize_reports_clip_and_segment_levels() -> None:
    # Clip 0 (target 0): segments right, right, wrong -> clip right. Clip 1 (target 1): wrong, wrong, right.
    logits = torch.tensor([[[2.0, 0.0], [2.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [2.0, 0.0], [0.0, 1.0]]])
    targets = torch.tensor([0, 1])
    mean = summarize(logits, targets, "mean")
    assert mean.acc == 0.5 and mean.segment_acc == pytest.approx(3 / 6)
    assert mean.loss == pytest.approx(nn.functional.cross_entropy(logits.mean(1), targets).item())
    none = summarize(logits, targets, "none")
    assert none.acc == none.segment_acc and len(none.predictions) == 6


# --- schedules -----------------------------------------------------------------------------------------

SCHEDULERS = sorted(p.stem for p in (CONF / "scheduler").glob("*.yaml"))


def _lrs(
    name: str, epochs: int = 6, steps: int = 10, objective: list[float] | None = None, **overrides: float
) -> list[float]:
    cfg = OmegaConf.load(CONF / "scheduler" / f"{name}.yaml")
    if "mode" in cfg:
        cfg.mode = "max"
    for key, value in overrides.items():
        cfg[key] = value
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0, momentum=0.9)
    schedule = instantiate(cfg)(optimizer, epochs=epochs, steps_per_epoch=steps)
    lrs = [optimizer.param_groups[0]["lr"]]
    for epoch in range(epochs):
        for _ in range(steps):
            optimizer.step()
            schedule.step()
            lrs.append(optimizer.param_groups[0]["lr"])
        schedule.epoch_end(objective[epoch] if objective else 0.5)
    return lrs


def test_every_scheduler_named_in_the_issue_has_a_config() -> None:
    assert {"none", "cosine", "cosine_restarts", "linear", "exponential", "step", "plateau", "onecycle"} <= set(
        SCHEDULERS
    )


@pytest.mark.parametrize("name", SCHEDULERS)
def test_optional_warmup_ramps_linearly(name: str) -> None:
    lrs = _lrs(name, warmup_epochs=1.0, warmup_start_factor=0.1)
    assert lrs[0] == pytest.approx(0.1, rel=1e-6)
    ramp = lrs[:11]
    assert all(b > a for a, b in pairwise(ramp)), ramp
    if name != "onecycle":  # OneCycleLR's own warm-up follows anneal_strategy (cos by default)
        steps = [b - a for a, b in pairwise(ramp)]
        assert max(steps) == pytest.approx(min(steps), rel=1e-6), steps
    assert max(lrs) == pytest.approx(1.0, rel=1e-6)


def test_schedule_shapes() -> None:
    cosine = _lrs("cosine", warmup_epochs=0.0)
    assert cosine[-1] == pytest.approx(0.01, rel=1e-3) and cosine[30] == pytest.approx(0.505, rel=1e-2)
    restarts = _lrs("cosine_restarts", cycle_epochs=2.0)
    assert restarts[20] == pytest.approx(1.0) and restarts[19] < 0.05  # a restart every 2 epochs (20 steps)
    linear = _lrs("linear", warmup_epochs=0.0, end_factor=0.0)
    assert linear[30] == pytest.approx(0.5, rel=1e-6) and linear[-1] == pytest.approx(0.0, abs=1e-9)
    exponential = _lrs("exponential", gamma=0.5)
    assert [exponential[10 * e] for e in range(4)] == pytest.approx([1.0, 0.5, 0.25, 0.125], rel=1e-6)
    step = _lrs("step", step_epochs=2.0, gamma=0.1)
    assert step[19] == pytest.approx(1.0) and step[20] == pytest.approx(0.1) and step[40] == pytest.approx(0.01)
    onecycle = _lrs("onecycle", warmup_epochs=2.0, warmup_start_factor=0.04, final_factor=1e-4)
    # The last lr used (by the last optimizer step) is the minimum.
    assert onecycle.index(max(onecycle)) == 20 and onecycle[-2] == pytest.approx(1e-4, rel=1e-3)
    constant = _lrs("none")
    assert set(constant) == {1.0}


@pytest.mark.parametrize("name", SCHEDULERS)
def test_every_schedule_keeps_the_groups_learning_rates_in_proportion(name: str) -> None:
    # A fine-tuned network's group runs at a fraction of the head's rate, at every step and to the end.
    cfg = OmegaConf.load(CONF / "scheduler" / f"{name}.yaml")
    if "mode" in cfg:
        cfg.mode = "max"
    head, network = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [head]}, {"params": [network], "lr": 0.1}], lr=1.0, momentum=0.9)
    schedule = instantiate(cfg)(optimizer, epochs=6, steps_per_epoch=10)
    for epoch in range(6):
        for _ in range(10):
            optimizer.step()
            schedule.step()
            head_lr, network_lr = (group["lr"] for group in optimizer.param_groups)
            assert network_lr == pytest.approx(0.1 * head_lr, rel=1e-9), (epoch, head_lr, network_lr)
        schedule.epoch_end(0.5 - 0.01 * epoch)  # plateau: an objective that gets worse, so it reduces


def test_plateau_reduces_only_after_patience_epochs_without_improvement() -> None:
    lrs = _lrs("plateau", epochs=6, objective=[0.5, 0.6, 0.6, 0.6, 0.6, 0.6], patience=2, factor=0.5)
    in_epoch = [lrs[10 * e + 1] for e in range(6)]  # the lr used during epochs 1..6
    # Improves at epochs 1-2; epochs 3 and 4 do not (patience 2); epoch 5 is the third bad one: halve.
    assert in_epoch == pytest.approx([1.0, 1.0, 1.0, 1.0, 1.0, 0.5])


def test_plateau_follows_the_objective_mode() -> None:
    cfg = OmegaConf.load(CONF / "scheduler" / "plateau.yaml")
    assert OmegaConf.to_yaml(cfg).count("${objective_mode}") == 1


# --- weight decay, early stopping -----------------------------------------------------------------------


def test_weight_decay_spares_biases_and_norms() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(3))
    model(torch.randn(2, 1, 5, 5))
    optimizer = torch.optim.AdamW(decay_groups(model), lr=0.1, weight_decay=0.5)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer.step()  # zero gradients: only the decoupled decay moves parameters
    for p, old in zip(model.parameters(), before):
        moved = not torch.equal(p, old)
        assert moved == (p.ndim >= 2), (p.shape, moved)


def test_early_stopping_counts_epochs_without_improvement() -> None:
    tracker = EarlyStopping(mode="max", patience=2, min_delta=0.01)
    outcomes = [tracker.update(v, e) for e, v in enumerate([0.5, 0.6, 0.605, 0.59], start=1)]
    assert outcomes == [True, True, False, False] and tracker.should_stop and tracker.best_epoch == 2
    loss = EarlyStopping(mode="min", patience=None)
    assert [loss.update(v, e) for e, v in enumerate([1.0, 0.9, 2.0], start=1)] == [True, True, False]
    assert not loss.should_stop
    with pytest.raises(ValueError, match=r"^patience: 0 is not a positive epoch count\. Use "):
        EarlyStopping(patience=0)


# --- augmentation ---------------------------------------------------------------------------------------


class _Identity(nn.Module):
    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return audio.unsqueeze(1).repeat(1, 12, 1)  # (batch, 12 "bands", samples as frames)


def test_specaugment_masks_each_example_differently_within_bounds() -> None:
    torch.manual_seed(0)
    features = torch.ones(8, 40, 100)
    masked = SpecAugment(freq_masks=1, freq_mask_fraction=0.2, time_masks=1, time_mask_fraction=0.1)(features)
    bands_zeroed = (masked == 0).all(dim=2).sum(dim=1)
    frames_zeroed = (masked == 0).all(dim=1).sum(dim=1)
    assert bands_zeroed.max() <= 8 and frames_zeroed.max() <= 10
    assert bands_zeroed.sum() > 0 and frames_zeroed.sum() > 0
    assert len({tuple(m.flatten().tolist()) for m in (masked == 0)}) > 1  # iid masks


def test_random_gain_scales_each_waveform_within_range() -> None:
    torch.manual_seed(0)
    audio = torch.full((64, 100), 0.1)
    out = RandomGain(min_db=-6.0, max_db=6.0)(audio)
    db = 20 * torch.log10(out[:, 0] / 0.1)
    assert db.min() >= -6.0 - 1e-4 and db.max() <= 6.0 + 1e-4 and db.std() > 1.0
    assert torch.allclose(out, out[:, :1].expand_as(out))  # one gain per example


def test_mixup_mixes_inputs_and_targets_with_the_same_weights() -> None:
    torch.manual_seed(0)
    augment = Augmentations([Mixup(alpha=0.4)], n_classes=3)
    audio = torch.eye(4)[:, :4] * 1.0
    inputs, targets = augment(audio, torch.tensor([0, 1, 2, 0]), features=_Identity())
    assert targets.shape == (4, 3) and torch.allclose(targets.sum(1), torch.ones(4))
    assert not torch.equal(inputs, _Identity()(audio))
    # Each row mixes exactly two one-hot examples: its input weights match its target weights.
    input_weights = inputs[:, 0, :]  # row i: lam at i, 1-lam at perm[i]
    assert torch.allclose(input_weights.sum(1), torch.ones(4))


def test_no_augmentation_is_exactly_the_feature_extractor() -> None:
    audio, targets = torch.randn(3, 50), torch.tensor([0, 1, 2])
    inputs, out_targets = Augmentations([], n_classes=3)(audio, targets, features=_Identity())
    assert torch.equal(inputs, _Identity()(audio)) and torch.equal(out_targets, targets)


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONF / "augment").glob("*.yaml")))
def test_augment_configs_instantiate(option: str) -> None:
    cfg = compose_config([f"augment={option}"])
    items = [instantiate(node) for node in cfg.augment.values()]
    assert all(hasattr(item, "stage") for item in items)
    assert (option == "none") == (not items)
    if option == "waveform":
        assert {type(item).__name__ for item in items} == {
            "PitchShift",
            "RandomSpeed",
            "RandomFilter",
            "ColoredNoise",
            "PolarityInversion",
        }


WAVEFORM = {
    "pitch_shift": lambda p: PitchShift(22050, min_semitones=-2.0, max_semitones=2.0, p=p),
    "speed": lambda p: RandomSpeed(min_rate=0.8, max_rate=0.95, p=p),
    "filter": lambda p: RandomFilter(22050, p=p),
    "noise": lambda p: ColoredNoise(22050, min_snr_db=10.0, max_snr_db=20.0, p=p),
    "polarity": lambda p: PolarityInversion(p=p),
}


@pytest.mark.parametrize("name", sorted(WAVEFORM))
def test_each_waveform_augmentation_changes_examples_on_their_own_and_p_0_changes_nothing(name: str) -> None:
    t = torch.arange(22050 * 2) / 22050
    tone = 0.3 * torch.sin(2 * torch.pi * 440 * t)
    audio = torch.stack([tone, 0.5 * tone, torch.roll(tone, 100), tone.flip(0)])
    torch.manual_seed(0)
    random.seed(0)
    assert torch.equal(WAVEFORM[name](0.0)(audio), audio)
    out = WAVEFORM[name](1.0)(audio)
    assert out.shape == audio.shape and out.dtype == audio.dtype and torch.isfinite(out).all()
    changed = [not torch.allclose(o, a, atol=1e-4) for o, a in zip(out, audio)]
    assert all(changed), changed
    if name == "polarity":
        assert torch.equal(out, -audio)
    elif name == "speed":  # each example its own factor: the zero-crossing counts differ
        crossings = ((out[:, 1:] * out[:, :-1]) < 0).sum(dim=1)
        assert len(set(crossings.tolist())) > 1, crossings


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: PitchShift(22050, min_semitones=3.0, max_semitones=1.0),
            r"^min_semitones: 3.0 is above max_semitones",
        ),
        (lambda: RandomSpeed(min_rate=0.0, max_rate=1.1), r"^min_rate: 0.0 is not above 0"),
        (lambda: ColoredNoise(22050, p=1.5), r"^p: 1.5 is not a probability"),
        (lambda: ColoredNoise(22050, min_decay=1.0, max_decay=-1.0), r"^min_decay: 1.0 is above max_decay"),
    ],
)
def test_a_bad_waveform_augmentation_setting_names_its_parameter(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


# --- sampler --------------------------------------------------------------------------------------------


def test_epoch_sampler_order_depends_on_seed_and_epoch_and_can_start_midway() -> None:
    data = list(range(20))
    sampler = EpochSampler(data, num_replicas=1, rank=0, seed=3)
    sampler.set_epoch(2)
    full = list(sampler)
    again = EpochSampler(data, num_replicas=1, rank=0, seed=3)
    again.set_epoch(2)
    again.set_start(8)
    assert list(again) == full[8:] and len(again) == 12
    sampler.set_epoch(3)
    assert list(sampler) != full and sorted(sampler) == data
    shards = [EpochSampler(data, num_replicas=2, rank=r, seed=3) for r in (0, 1)]
    for shard in shards:
        shard.set_epoch(2)
    assert sorted(list(shards[0]) + list(shards[1])) == data and not set(shards[0]) & set(shards[1])
    assert math.isclose(len(shards[0]), 10)


# --- interruption ---------------------------------------------------------------------------------------


def test_stop_request_records_signals_and_a_second_ctrl_c_stops_at_once() -> None:
    import os
    import signal

    from genre.training.interrupt import StopRequest

    before = signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.signum == signal.SIGTERM
        os.kill(os.getpid(), signal.SIGTERM)  # a launcher's follow-up SIGTERM: still saving
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before

"""feature=note_stats: pooled note statistics of basic-pitch's transcription, per patch of whole windows.

The statistics on hand-made notes (every histogram's values), their transposition invariance on
hand-made posteriorgrams, empty patches, bad parameters; the feature on basic-pitch's output (shape,
patch grid, identity); and one probe run on the tiny demo corpus end to end."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from genre.features.base import PrecomputedTransform
from genre.features.note_events import FRAME_RATE, LOWEST_KEY, NoteEvent, note_events
from genre.features.note_statistics import NoteStatistics, StatisticsLayout
from genre.pretrained.basic_pitch import INSTALL
from helpers import TINY_DEMO, run_cli

needs_wheel = pytest.mark.skipif(
    importlib.util.find_spec("basic_pitch") is None, reason=f"the basic-pitch wheel is not installed ({INSTALL})"
)
LAYOUT = StatisticsLayout()


def part(vector: np.ndarray, name: str) -> np.ndarray:
    return vector[LAYOUT.offsets(name)]


def test_the_statistics_of_three_rising_half_second_notes() -> None:
    events = [NoteEvent(0, 43, 60, 0.8), NoteEvent(43, 86, 64, 0.8), NoteEvent(86, 129, 67, 0.8)]
    vector = LAYOUT.vector(events, frames=172)
    assert vector.shape == (LAYOUT.dims,) == (69,) and vector.dtype == np.float32
    intervals = np.zeros(25)
    intervals[[12 + 4, 12 + 3]] = 0.5
    np.testing.assert_allclose(part(vector, "interval"), intervals)
    # 43 frames = 0.499 s: bin 6 of 12 half-octave bins from 0.05 s (0.4-0.57 s); of 10 from 0.1 s, bin 4.
    np.testing.assert_allclose(part(vector, "ioi"), np.eye(12)[6])
    np.testing.assert_allclose(part(vector, "duration"), np.eye(10)[4])
    np.testing.assert_allclose(part(vector, "polyphony"), [43 / 172, 129 / 172, 0, 0, 0, 0, 0], rtol=1e-6)
    profile = np.zeros(12)
    profile[[0, 4, 7]] = 1 / 3  # C, E, G: a tie, the lowest class first
    np.testing.assert_allclose(part(vector, "pitch_class"), profile, rtol=1e-6)
    np.testing.assert_allclose(vector[-3:], [3 / (172 / FRAME_RATE), 7, 191 / 3], rtol=1e-6)


def test_polyphony_caps_and_intervals_clip() -> None:
    events = [NoteEvent(0, 100, pitch, 0.5) for pitch in (30, 50, 52, 55, 59, 62, 66, 69)]
    vector = LAYOUT.vector(events, frames=100)
    np.testing.assert_allclose(part(vector, "polyphony"), np.eye(7)[6])  # 8 notes: the "6 or more" bin
    assert part(vector, "interval")[-1] == pytest.approx(1 / 7)  # 30 -> 50 clipped to +12
    assert part(vector, "ioi").sum() == 0  # one onset time: no inter-onset interval


def test_an_empty_patch_is_zeros_never_nan_but_for_its_silent_frames() -> None:
    vector = LAYOUT.vector([], frames=710)
    silent = np.zeros(LAYOUT.dims)
    silent[LAYOUT.offsets("polyphony").start] = 1  # every frame has 0 notes sounding
    np.testing.assert_array_equal(vector, silent)


def passage(shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Hand-made posteriorgrams of a melody over a held chord in D (D strongest), moved by ``shift``."""
    note, onset = np.zeros((710, 88), np.float32), np.zeros((710, 88), np.float32)
    melody = [(62, 0, 60), (66, 60, 90), (69, 90, 150), (74, 150, 200), (73, 200, 230), (71, 230, 330)]
    chord = [(50, 0, 300), (57, 100, 300)]
    for pitch, start, end in melody + chord + [(62, 400, 700), (64, 420, 480)]:
        key = pitch + shift - LOWEST_KEY
        note[start:end, key] = 0.7
        onset[start, key] = 0.9
    return note, onset


@pytest.mark.parametrize("shift", [3, -5])
def test_intervals_and_pitch_class_profile_do_not_change_under_transposition(shift: int) -> None:
    original, moved = (LAYOUT.vector(note_events(*passage(s)), frames=710) for s in (0, shift))
    assert part(original, "interval").sum() == pytest.approx(1)
    for name in ("interval", "pitch_class", "ioi", "duration", "polyphony"):
        np.testing.assert_allclose(part(moved, name), part(original, name), err_msg=name)
    assert part(original, "pitch_class")[0] > part(original, "pitch_class")[1:].max()  # D, rotated first
    assert moved[-1] == pytest.approx(original[-1] + shift)  # the mean pitch moves, the profile does not


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"ioi_bins": 0}, "ioi_bins: 0"),
        ({"duration_range": (0.5, 0.1)}, r"duration_range: \[0.5, 0.1\]"),
        ({"ioi_range": (0.0, 1.0)}, "ioi_range:"),
        ({"max_interval": -1}, "max_interval: -1"),
        ({"max_polyphony": 0}, "max_polyphony: 0"),
    ],
)
def test_bad_bins_are_refused_naming_the_parameter(arguments: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StatisticsLayout(**arguments)


def test_bad_feature_parameters_are_refused_naming_the_parameter() -> None:
    with pytest.raises(ValueError, match="windows_per_patch: 0"):
        NoteStatistics(22050, windows_per_patch=0)
    with pytest.raises(ValueError, match="onset_threshold: 0"):
        NoteStatistics(22050, onset_threshold=0.0)
    with pytest.raises(ValueError, match="max_polyphony: 0"):
        NoteStatistics(22050, max_polyphony=0)


@pytest.fixture(scope="module")
def two_windows() -> NoteStatistics:
    return NoteStatistics(sample_rate=22050, windows_per_patch=2)


@needs_wheel
def test_is_a_precomputed_feature_of_whole_patches(two_windows: NoteStatistics) -> None:
    assert isinstance(two_windows, PrecomputedTransform) and two_windows.n_bands == 69
    assert two_windows.steps_per_patch == 1 and two_windows.frames_per_patch == 284
    assert two_windows.patch_seconds == pytest.approx(3.45, abs=0.01)
    assert NoteStatistics(22050).patch_seconds == pytest.approx(8.37, abs=0.01)
    # 2 windows per patch: 76168 samples hold 2 windows, 148496 hold 4.
    assert [two_windows.steps_in(n) for n in (76167, 76168, 148495, 148496)] == [0, 1, 1, 2]


@needs_wheel
def test_each_patch_is_the_statistics_of_its_own_frames(two_windows: NoteStatistics) -> None:
    t = torch.arange(148496) / 22050
    waveform = 0.1 * torch.sin(2 * torch.pi * 220 * t) * (torch.sin(2 * torch.pi * 0.7 * t) > 0)
    out = two_windows(torch.stack([waveform, 0.5 * waveform.flip(0)]))
    assert out.shape == (2, 69, 2) and torch.isfinite(out).all()
    posteriors = two_windows.basic_pitch.posteriorgrams(waveform[None], ("note", "onset"))
    span = slice(284, 568)
    events = note_events(posteriors["note"][0, span], posteriors["onset"][0, span])
    assert {event.pitch for event in events} == {57}  # A3, 220 Hz
    expected = two_windows.layout.vector(events, 284)
    np.testing.assert_allclose(out[0, :, 1].numpy(), expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"waveform: note statistics need at least 3\.45 s"):
        two_windows(torch.zeros(1, 76167))


@needs_wheel
def test_the_cache_key_hashes_the_statistics_and_basic_pitch(two_windows: NoteStatistics) -> None:
    identity = two_windows.identity()
    assert identity["basic_pitch"]["weights"] == two_windows.basic_pitch.identity()["weights"]  # type: ignore[index]
    assert identity["windows_per_patch"] == 2 and identity["tracking"]["onset_threshold"] == 0.5  # type: ignore[index]
    assert NoteStatistics(22050, windows_per_patch=2, frame_threshold=0.4).identity() != identity
    assert NoteStatistics(22050, windows_per_patch=2, ioi_bins=8).identity() != identity
    assert NoteStatistics(22050, windows_per_patch=3).identity() != identity


@needs_wheel
@pytest.mark.slow
def test_a_probe_on_note_statistics_runs_on_the_demo_corpus(tmp_path: Path, cache_dir: Path) -> None:
    run_dir = tmp_path / "run"
    args = [*TINY_DEMO, "experiment=probe", "feature=note_stats", "feature.transform.windows_per_patch=2"]
    result = run_cli([*args, "trainer.progress=false", f"hydra.run.dir={run_dir}"], tmp_path, cache_dir)
    assert "test accuracy:" in result.stdout
    assert "features NoteStatistics: 69 bands" in (run_dir / "run.log").read_text()

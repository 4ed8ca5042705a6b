"""Pooled note statistics as a feature: what the notes do, not what the instruments sound like.

Per patch of ``windows_per_patch`` consecutive basic-pitch windows (default 5: 710 frames, about 8.2 s;
the first patch needs 8.37 s of audio), the notes that basic-pitch's posteriorgrams decode to
(:func:`~genre.features.note_events.note_events`) are summarised into one fixed-length vector:

* ``interval``: successive melodic intervals, signed semitones clipped to +-``max_interval`` (25 bins),
  between consecutive notes ordered by onset (then pitch: a chord's notes read upwards);
* ``ioi``: inter-onset intervals between distinct onset frames, in seconds, ``ioi_bins`` log-spaced
  bins over ``ioi_range`` (values outside go to the first or last bin);
* ``duration``: note durations in seconds, ``duration_bins`` log-spaced bins over ``duration_range``;
* ``polyphony``: notes sounding per frame, 0 ... ``max_polyphony`` (the last bin: that many or more),
  over every frame of the patch (silence included);
* ``pitch_class``: the 12 pitch classes weighted by note duration, rotated so the strongest comes first
  (transposition-invariant; a tie goes to the lowest class);
* ``density`` (notes per second), ``pitch_range`` (semitones, highest less lowest) and ``pitch_mean``
  (MIDI).

Every histogram sums to 1, or is all zeros when it has nothing to count, never NaN: a patch without notes
gives zeros but for the polyphony histogram's first bin, 1 (every frame silent). Notes are decoded per
patch, so a note sounding over a patch boundary counts in the patch where it starts (ending at the
boundary) only.

Why patches of whole windows: basic-pitch's windows (1.64 s apart) are the grid its posteriors come on,
so a patch is ``windows_per_patch`` of them and the feature is one step per patch, like a pooled
musicnn layer: the embedding cache stores a clip's patches, training crops and evaluation segments are
whole patches, and a segment of ``eval.segment_seconds`` holds as many as fit. Statistics need several
seconds of notes to mean anything, so a patch is longer than one window; a per-clip vector would not
compose with segment cropping.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from genre.features.note_events import FRAME_RATE, NoteEvent, NoteTracking, note_events
from genre.features.transcription import LEAD, WINDOW_HOP, BasicPitch
from genre.pretrained.basic_pitch import SAMPLE_RATE, WINDOW_SAMPLES

# Bumped when what this feature computes changes, so embedding caches of the old code are rebuilt.
FEATURE_VERSION = 1


def normalized(counts: np.ndarray) -> np.ndarray:
    """``counts`` scaled to sum 1; all zeros when they sum to 0."""
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts)


def log_edges(bins: int, low: float, high: float) -> np.ndarray:
    """``bins + 1`` log-spaced bin edges from ``low`` to ``high`` (both > 0)."""
    return np.geomspace(low, high, bins + 1)


def log_histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Normalised histogram of ``values`` over ``edges``; values outside go to the first or last bin."""
    index = np.searchsorted(edges[1:-1], values, side="right")
    return normalized(np.bincount(index, minlength=len(edges) - 1).astype(np.float64))


def interval_histogram(pitches: np.ndarray, max_interval: int) -> np.ndarray:
    """Normalised histogram of successive pitch differences clipped to +-``max_interval`` (2 m + 1 bins)."""
    steps = np.clip(np.diff(pitches), -max_interval, max_interval) + max_interval
    return normalized(np.bincount(steps, minlength=2 * max_interval + 1).astype(np.float64))


def polyphony_histogram(starts: np.ndarray, ends: np.ndarray, frames: int, max_polyphony: int) -> np.ndarray:
    """Share of the ``frames`` frames with 0, 1, ... ``max_polyphony`` (or more) notes sounding."""
    change = np.zeros(frames + 1, dtype=np.int64)
    np.add.at(change, np.minimum(starts, frames), 1)
    np.add.at(change, np.minimum(ends, frames), -1)
    sounding = np.minimum(np.cumsum(change[:frames]), max_polyphony)
    return normalized(np.bincount(sounding, minlength=max_polyphony + 1).astype(np.float64))


def pitch_class_profile(pitches: np.ndarray, durations: np.ndarray) -> np.ndarray:
    """Duration-weighted pitch-class shares, rotated so the strongest class comes first (12 values)."""
    profile = np.bincount(pitches % 12, weights=durations.astype(np.float64), minlength=12)
    return normalized(np.roll(profile, -int(np.argmax(profile))))


class StatisticsLayout:
    """Which statistics a vector holds, in order, and their bins (see the module doc).

    Raises ValueError naming the parameter for a bin count below 1, a range not ``0 < low < high``, or
    a negative ``max_interval`` / ``max_polyphony`` below 1.
    """

    def __init__(
        self,
        ioi_bins: int = 12,
        ioi_range: Sequence[float] = (0.05, 3.2),
        duration_bins: int = 10,
        duration_range: Sequence[float] = (0.1, 3.2),
        max_interval: int = 12,
        max_polyphony: int = 6,
    ) -> None:
        for name, value, least in (
            ("ioi_bins", ioi_bins, 1),
            ("duration_bins", duration_bins, 1),
            ("max_interval", max_interval, 0),
            ("max_polyphony", max_polyphony, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name}: {value!r} is not a whole number >= {least}. Use e.g. {max(least, 6)}")
        for name, bounds in (("ioi_range", ioi_range), ("duration_range", duration_range)):
            if len(bounds) != 2 or not 0 < bounds[0] < bounds[1]:
                raise ValueError(f"{name}: {list(bounds)!r} is not [low, high] seconds with 0 < low < high")
        self.ioi_edges = log_edges(ioi_bins, *map(float, ioi_range))
        self.duration_edges = log_edges(duration_bins, *map(float, duration_range))
        self.max_interval, self.max_polyphony = max_interval, max_polyphony
        self.parts = {
            "interval": 2 * max_interval + 1,
            "ioi": ioi_bins,
            "duration": duration_bins,
            "polyphony": max_polyphony + 1,
            "pitch_class": 12,
            "density": 1,
            "pitch_range": 1,
            "pitch_mean": 1,
        }
        self.dims = sum(self.parts.values())

    def identity(self) -> dict[str, object]:
        """The bins, for the embedding cache's key."""
        return {
            "ioi_edges": self.ioi_edges.round(9).tolist(),
            "duration_edges": self.duration_edges.round(9).tolist(),
            "max_interval": self.max_interval,
            "max_polyphony": self.max_polyphony,
            "parts": list(self.parts),
        }

    def offsets(self, part: str) -> slice:
        """Where ``part`` lies in the vector."""
        names = list(self.parts)
        start = sum(self.parts[name] for name in names[: names.index(part)])
        return slice(start, start + self.parts[part])

    def vector(self, events: Sequence[NoteEvent], frames: int) -> np.ndarray:
        """The statistics of ``events`` decoded from ``frames`` frames, as one float32 vector of ``dims``."""
        ordered = sorted(events, key=lambda event: (event.start, event.pitch))
        starts = np.array([event.start for event in ordered], dtype=np.int64)
        ends = np.array([event.end for event in ordered], dtype=np.int64)
        pitches = np.array([event.pitch for event in ordered], dtype=np.int64)
        durations = (ends - starts) / FRAME_RATE
        seconds = frames / FRAME_RATE
        scalars = [
            len(ordered) / seconds,
            np.ptp(pitches) if len(ordered) else 0,
            pitches.mean() if len(ordered) else 0,
        ]
        parts = [
            interval_histogram(pitches, self.max_interval),
            log_histogram(np.diff(np.unique(starts)) / FRAME_RATE, self.ioi_edges),
            log_histogram(durations, self.duration_edges),
            polyphony_histogram(starts, ends, frames, self.max_polyphony),
            pitch_class_profile(pitches, durations),
            np.array(scalars, dtype=np.float64),
        ]
        return np.concatenate(parts).astype(np.float32)


class NoteStatistics(nn.Module):
    """Note statistics of basic-pitch's transcription, one vector per patch (the module doc).

    Args:
        sample_rate: the run's sample rate (resampled to 22050 Hz for basic-pitch).
        windows_per_patch: basic-pitch windows (1.64 s apart) per patch; 5 (about 8.2 s) by default.
        onset_threshold, frame_threshold, min_note_frames, gap_tolerance, infer_onsets: how notes are
            decoded (:class:`~genre.features.note_events.NoteTracking`; basic-pitch's defaults).
        ioi_bins, ioi_range, duration_bins, duration_range, max_interval, max_polyphony: the histograms'
            bins (:class:`StatisticsLayout`).
        cache: computed once per audio cache into the embedding cache; false recomputes it in every run.
        windows_per_pass: basic-pitch windows pushed through the network at once.

    Raises ValueError naming the parameter for a value out of its range.
    """

    precomputed = True
    frozen = True
    trainable = False
    steps_per_patch = 1

    def __init__(
        self,
        sample_rate: int,
        windows_per_patch: int = 5,
        onset_threshold: float = 0.5,
        frame_threshold: float = 0.3,
        min_note_frames: int = 11,
        gap_tolerance: int = 11,
        infer_onsets: bool = True,
        ioi_bins: int = 12,
        ioi_range: Sequence[float] = (0.05, 3.2),
        duration_bins: int = 10,
        duration_range: Sequence[float] = (0.1, 3.2),
        max_interval: int = 12,
        max_polyphony: int = 6,
        cache: bool = True,
        windows_per_pass: int = 8,
    ) -> None:
        super().__init__()
        if isinstance(windows_per_patch, bool) or not isinstance(windows_per_patch, int) or windows_per_patch < 1:
            raise ValueError(f"windows_per_patch: {windows_per_patch!r} is not a whole number >= 1. Use e.g. 5")
        self.tracking = NoteTracking(
            onset_threshold, frame_threshold, min_note_frames, gap_tolerance, bool(infer_onsets)
        )
        self.layout = StatisticsLayout(ioi_bins, ioi_range, duration_bins, duration_range, max_interval, max_polyphony)
        self.basic_pitch = BasicPitch(sample_rate, layer="note", cache=cache, windows_per_pass=windows_per_pass)
        self.windows_per_patch, self.cache = windows_per_patch, bool(cache)
        self.n_bands = self.layout.dims
        self.frames_per_patch = windows_per_patch * self.basic_pitch.steps_per_patch
        # The first patch's audio: its windows less the silence basic-pitch puts in front.
        self.patch_seconds = (WINDOW_SAMPLES + (windows_per_patch - 1) * WINDOW_HOP - LEAD) / SAMPLE_RATE
        # Seconds from one patch (one step) to the next: its windows' hop.
        self.step_seconds = windows_per_patch * WINDOW_HOP / SAMPLE_RATE

    def identity(self) -> dict[str, object]:
        """Everything the output depends on besides the audio: basic-pitch's identity and this feature's own."""
        return {
            "feature_version": FEATURE_VERSION,
            "layer": "note statistics",
            "basic_pitch": {**self.basic_pitch.identity(), "layer": "note+onset"},
            "windows_per_patch": self.windows_per_patch,
            "tracking": vars(self.tracking),
            "statistics": self.layout.identity(),
        }

    def steps_in(self, samples: int) -> int:
        """Whole patches in a waveform of ``samples`` samples at the run's rate (one step each)."""
        return self.basic_pitch.windows_in(samples) // self.windows_per_patch

    def embed(self, waveform: Tensor) -> Tensor:
        """``(batch, samples)`` float waveforms -> ``(batch, n_bands, patches)`` note statistics.

        Raises ValueError naming ``waveform`` for anything else, or for audio shorter than one patch.
        """
        patches = self.steps_in(waveform.shape[-1]) if waveform.dim() == 2 else 0
        if waveform.dim() == 2 and patches < 1:
            seconds = waveform.shape[-1] / self.basic_pitch.sample_rate
            raise ValueError(
                f"waveform: note statistics need at least {self.patch_seconds:.2f} s of audio per patch "
                f"(windows_per_patch={self.windows_per_patch}); got {seconds:.2f} s: "
                "raise trainer.segment_seconds and eval.segment_seconds, or lower windows_per_patch"
            )
        posteriors = self.basic_pitch.posteriorgrams(waveform, ("note", "onset"))
        note, onset = (posteriors[name].cpu().numpy() for name in ("note", "onset"))
        size = self.frames_per_patch
        out = np.zeros((len(note), patches, self.n_bands), dtype=np.float32)
        for clip in range(len(note)):
            for patch in range(patches):
                span = slice(patch * size, (patch + 1) * size)
                events = note_events(note[clip, span], onset[clip, span], self.tracking)
                out[clip, patch] = self.layout.vector(events, size)
        return torch.from_numpy(out).to(waveform.device).transpose(1, 2)

    def forward(self, waveform: Tensor) -> Tensor:
        """Float waveforms ``(batch, samples)`` -> note statistics (:meth:`embed`)."""
        return self.embed(waveform)

"""Note events from a transcriber's posteriorgrams: where notes start, how long they last, how loud.

basic-pitch (Bittner et al., ICASSP 2022) gives, per frame of hop 256 at 22050 Hz (86.13 frames/s) and
per piano key (MIDI 21-108), the posterior that a note sounds (``note``) and that one starts (``onset``).
:func:`note_events` turns one clip's pair into :class:`NoteEvent` records. It follows the idea of
basic-pitch's own decoder (``note_creation.output_to_notes_polyphonic``), in our own code:

1. Onsets are local maxima in time of the onset posterior at or above ``onset_threshold``. With
   ``infer_onsets``, the onset posterior is first raised to where the note posterior rises steeply (its
   rise over one and over two frames, the smaller of the two, scaled so its largest value is the onset
   posterior's largest): notes the onset head missed still get an onset.
2. Onsets are taken latest first. A note starting at onset frame ``t`` lasts until the first run of
   ``gap_tolerance`` consecutive frames whose note posterior is below ``frame_threshold`` (ending where
   that run begins), or until the last frame at or above it when the clip ends first.
3. A note shorter than ``min_note_frames`` frames is dropped. A kept note takes its frames, at its key
   and the keys a semitone either side, out of the posterior that earlier onsets are tracked on: a note
   ends where a later note at its key or a semitone away starts (basic-pitch's guard against the
   network smearing a note onto its neighbouring keys), and of two onsets a semitone apart at one frame
   the higher key's note is kept.
4. Its amplitude is the mean note posterior over its frames at its key.

Differences from basic-pitch's decoder, on purpose: no "melodia trick" (notes grown from leftover
posterior without an onset; inferred onsets cover most of them, and a note tied over from before the
posteriorgram's first frame is not counted); a note is kept when it lasts at least ``min_note_frames``
frames (basic-pitch keeps those longer than 11, one frame more); the clip's last frame is tracked too;
a plateau's first frame counts as a peak. The defaults are basic-pitch's (``predict``): onset 0.5,
frame 0.3, minimum length 127.7 ms (11 frames), gap tolerance 11 frames, inferred onsets on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor

from genre.pretrained.basic_pitch import HOP, SAMPLE_RATE

FRAME_RATE = SAMPLE_RATE / HOP  # 86.13 posterior frames per second
LOWEST_KEY = 21  # MIDI number of the posteriorgram's first column (A0)
KEYS = 88


@dataclass(frozen=True)
class NoteEvent:
    """One note: frames ``start`` (its onset) up to ``end`` (exclusive), MIDI ``pitch``, mean posterior."""

    start: int
    end: int
    pitch: int
    amplitude: float

    @property
    def frames(self) -> int:
        """How many frames the note lasts."""
        return self.end - self.start


@dataclass(frozen=True)
class NoteTracking:
    """How :func:`note_events` decodes notes (the module doc); defaults are basic-pitch's.

    Raises ValueError naming the parameter for a threshold outside (0, 1] or a length below 1 frame.
    """

    onset_threshold: float = 0.5
    frame_threshold: float = 0.3
    min_note_frames: int = 11
    gap_tolerance: int = 11
    infer_onsets: bool = True

    def __post_init__(self) -> None:
        for name in ("onset_threshold", "frame_threshold"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f"{name}: {value!r} is not a posterior in (0, 1]. Use e.g. 0.5")
        for name in ("min_note_frames", "gap_tolerance"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: {value!r} is not a whole number of frames >= 1. Use e.g. 11")


def _as_array(name: str, posteriors: np.ndarray | Tensor) -> np.ndarray:
    """``(frames, 88)`` posteriors as float32 numpy; ValueError naming ``name`` for another shape."""
    array = posteriors.detach().cpu().numpy() if isinstance(posteriors, Tensor) else np.asarray(posteriors)
    if array.ndim != 2 or array.shape[1] != KEYS:
        raise ValueError(f"{name}: posteriors must be (frames, {KEYS}), got shape {tuple(array.shape)}")
    return array.astype(np.float32, copy=False)


def inferred_onsets(note: np.ndarray, onset: np.ndarray) -> np.ndarray:
    """The onset posterior raised to the note posterior's steep rises (step 1 of the module doc)."""
    padded = np.concatenate([np.zeros((2, note.shape[1]), dtype=note.dtype), note])
    rise = np.minimum(padded[2:] - padded[1:-1], padded[2:] - padded[:-2]).clip(min=0)
    rise[:2] = 0
    highest = rise.max(initial=0.0)
    if highest <= 0:
        return onset
    return np.maximum(onset, rise * (onset.max(initial=0.0) / highest))


def onset_peaks(onset: np.ndarray, threshold: float) -> np.ndarray:
    """``(frames, keys)`` bool: local maxima in time at or above ``threshold`` (a plateau: its first frame)."""
    zero = np.zeros((1, onset.shape[1]), dtype=onset.dtype)
    before = np.concatenate([zero, onset[:-1]])
    after = np.concatenate([onset[1:], zero])
    return (onset >= threshold) & (onset > before) & (onset >= after)


def note_end(column: np.ndarray, start: int, threshold: float, tolerance: int) -> int:
    """Where a note starting at ``start`` ends on one key's posterior ``column`` (step 2 of the module doc)."""
    low = column[start + 1 :] < threshold
    lows_before = np.concatenate([[0], np.cumsum(low)])
    runs = np.flatnonzero(lows_before[tolerance:] - lows_before[:-tolerance] == tolerance)
    if runs.size:
        return start + 1 + int(runs[0])
    highs = np.flatnonzero(~low)
    return start + 1 + (int(highs[-1]) + 1 if highs.size else 0)


def note_events(
    note: np.ndarray | Tensor, onset: np.ndarray | Tensor, tracking: NoteTracking | None = None
) -> list[NoteEvent]:
    """The notes of one clip's ``(frames, 88)`` note and onset posteriorgrams, by start frame then pitch.

    Raises ValueError naming ``note`` or ``onset`` for posteriors of another shape than ``(frames, 88)``.
    """
    tracking = tracking or NoteTracking()
    frames, onsets = _as_array("note", note), _as_array("onset", onset)
    if onsets.shape != frames.shape:
        raise ValueError(f"onset: shape {onsets.shape} differs from the note posteriors' {frames.shape}")
    if tracking.infer_onsets:
        onsets = inferred_onsets(frames, onsets)
    starts, keys = np.nonzero(onset_peaks(onsets, tracking.onset_threshold))
    remaining = frames.copy()
    events = []
    for start, key in zip(starts[::-1].tolist(), keys[::-1].tolist(), strict=True):  # latest first
        end = note_end(remaining[:, key], start, tracking.frame_threshold, tracking.gap_tolerance)
        if end - start < tracking.min_note_frames:
            continue
        remaining[start:end, max(key - 1, 0) : key + 2] = 0
        events.append(NoteEvent(start, end, key + LOWEST_KEY, float(frames[start:end, key].mean())))
    return sorted(events, key=lambda event: (event.start, event.pitch))

"""Note events decoded from note/onset posteriorgrams: on hand-made posteriorgrams (onsets, tracking,
minimum length, gaps, repeated and neighbouring notes, inferred onsets) and on basic-pitch's own output
for a synthesised arpeggio."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from genre.features.note_events import LOWEST_KEY, NoteEvent, NoteTracking, note_events
from genre.pretrained.basic_pitch import INSTALL, SAMPLE_RATE

FRAMES = 300


def blank() -> tuple[np.ndarray, np.ndarray]:
    """Empty ``(frames, 88)`` note and onset posteriorgrams."""
    return np.zeros((FRAMES, 88), np.float32), np.zeros((FRAMES, 88), np.float32)


def put(note: np.ndarray, onset: np.ndarray, pitch: int, start: int, end: int, level: float = 0.8) -> None:
    """A note of MIDI ``pitch`` sounding over frames ``start:end``, with an onset spike at ``start``."""
    note[start:end, pitch - LOWEST_KEY] = level
    onset[start, pitch - LOWEST_KEY] = 0.9


def spans(events: list[NoteEvent]) -> list[tuple[int, int, int]]:
    return [(event.start, event.end, event.pitch) for event in events]


def test_two_notes_with_a_gap_are_two_events_each_to_where_its_posterior_falls() -> None:
    note, onset = blank()
    put(note, onset, 60, 10, 50)
    put(note, onset, 60, 80, 120)
    put(note, onset, 64, 30, 90, level=0.6)
    events = note_events(note, onset)
    assert spans(events) == [(10, 50, 60), (30, 90, 64), (80, 120, 60)]
    assert events[1].amplitude == pytest.approx(0.6) and events[0].frames == 40


def test_a_note_shorter_than_the_minimum_is_dropped() -> None:
    note, onset = blank()
    put(note, onset, 60, 10, 20)  # 10 frames
    put(note, onset, 62, 40, 51)  # 11 frames: basic-pitch's 127.7 ms
    assert spans(note_events(note, onset)) == [(40, 51, 62)]
    assert note_events(note, onset, NoteTracking(min_note_frames=12)) == []


def test_a_sustained_note_is_tracked_until_its_decaying_posterior_falls_below_the_frame_threshold() -> None:
    note, onset = blank()
    put(note, onset, 55, 20, 120)
    note[20:120, 55 - LOWEST_KEY] = np.linspace(1.0, 0.0, 100)  # below 0.3 from frame 20 + 70
    assert spans(note_events(note, onset)) == [(20, 90, 55)]
    assert spans(note_events(note, onset, NoteTracking(frame_threshold=0.5))) == [(20, 70, 55)]


def test_a_short_dip_is_bridged_unless_the_rise_after_it_is_taken_for_an_onset() -> None:
    note, onset = blank()
    put(note, onset, 60, 10, 100)
    note[50:55, 60 - LOWEST_KEY] = 0.1  # 5 frames below 0.3: under the 11-frame tolerance
    assert spans(note_events(note, onset, NoteTracking(infer_onsets=False))) == [(10, 100, 60)]
    # Inferred onsets: the rise at frame 55 starts a second note, so the first ends where it dipped.
    assert spans(note_events(note, onset)) == [(10, 50, 60), (55, 100, 60)]


def test_a_repeated_note_ends_the_one_before_and_a_semitone_away_too() -> None:
    note, onset = blank()
    put(note, onset, 60, 10, 150)
    onset[70, 60 - LOWEST_KEY] = 0.9  # struck again, posterior never falling
    put(note, onset, 67, 30, 60)
    put(note, onset, 68, 45, 100)  # a semitone above: ends the 67 at 45
    tracking = NoteTracking(infer_onsets=False)
    assert spans(note_events(note, onset, tracking)) == [(10, 70, 60), (30, 45, 67), (45, 100, 68), (70, 150, 60)]


def test_a_note_without_an_onset_needs_inferred_onsets() -> None:
    note, onset = blank()
    put(note, onset, 60, 10, 60)
    note[100:160, 72 - LOWEST_KEY] = 0.7  # no onset posterior at all
    assert spans(note_events(note, onset, NoteTracking(infer_onsets=False))) == [(10, 60, 60)]
    assert spans(note_events(note, onset)) == [(10, 60, 60), (100, 160, 72)]


def test_tensors_give_what_arrays_give_and_nothing_gives_nothing() -> None:
    note, onset = blank()
    put(note, onset, 40, 5, 60)
    assert note_events(torch.from_numpy(note), torch.from_numpy(onset)) == note_events(note, onset)
    assert note_events(*blank()) == []


def test_bad_parameters_and_shapes_are_refused_naming_the_parameter() -> None:
    with pytest.raises(ValueError, match="onset_threshold: 0"):
        NoteTracking(onset_threshold=0)
    with pytest.raises(ValueError, match=r"frame_threshold: 1\.5"):
        NoteTracking(frame_threshold=1.5)
    with pytest.raises(ValueError, match="min_note_frames: 0"):
        NoteTracking(min_note_frames=0)
    with pytest.raises(ValueError, match=r"gap_tolerance: 2\.5"):
        NoteTracking(gap_tolerance=2.5)  # type: ignore[arg-type]
    note, onset = blank()
    with pytest.raises(ValueError, match=r"note: posteriors must be \(frames, 88\)"):
        note_events(note[:, :12], onset)
    with pytest.raises(ValueError, match="onset: shape"):
        note_events(note, onset[:100])


def arpeggio(pitches: tuple[int, ...], gap: float = 0.35, seconds: float = 3.0) -> torch.Tensor:
    """Plucked harmonic tones (five partials, decaying), one every ``gap`` s from 0.1 s, at 22050 Hz."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    out = np.zeros_like(t)
    for k, midi in enumerate(pitches):
        start, f0 = 0.1 + gap * k, 440.0 * 2 ** ((midi - 69) / 12)
        envelope = np.where(t >= start, np.exp(-(t - start) * 1.5), 0.0)
        out += 0.06 * envelope * sum(np.sin(2 * np.pi * h * f0 * (t - start)) / h**1.5 for h in range(1, 6))
    return torch.tensor(out, dtype=torch.float32)[None]


@pytest.mark.skipif(importlib.util.find_spec("basic_pitch") is None, reason=f"needs the basic-pitch wheel ({INSTALL})")
@pytest.mark.parametrize("pitches", [(48, 60, 64, 67, 72), (50, 57, 62, 66, 69)])
def test_basic_pitch_on_a_synthesised_arpeggio_gives_its_pitches_where_they_start(pitches: tuple[int, ...]) -> None:
    from genre.features import BasicPitch

    posteriors = BasicPitch(SAMPLE_RATE).posteriorgrams(arpeggio(pitches), ("note", "onset"))
    events = note_events(posteriors["note"][0], posteriors["onset"][0])
    assert {event.pitch for event in events} == set(pitches)
    frame_rate = SAMPLE_RATE / 256
    for k, pitch in enumerate(pitches):
        first = min(event.start for event in events if event.pitch == pitch)
        assert abs(first - (0.1 + 0.35 * k) * frame_rate) <= 2, (pitch, first)

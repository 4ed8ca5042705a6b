"""Music theory for the demo corpus's scores: musical time (tempo, swing, humanisation), chords and
progressions, voicings, and the line writers (comping, bass pitches, melodies, phrase rhythms).

Everything here works in beats and MIDI pitches; :class:`Timeline` turns beat-time events into the
seconds the renderer plays. Each writer draws from the clip's random generator in a fixed order, which
is what makes a clip reproducible from its seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

# A note: (start seconds, held seconds, MIDI pitch, velocity 0..1).
Note = tuple[float, float, float, float]
# A note in musical time: (position in beats, length in beats, MIDI pitch, velocity).
BeatNote = tuple[float, float, int, float]


@dataclass
class Timeline:
    """Maps positions in beats to clip seconds: tempo, swing, a random start point and humanisation."""

    rng: np.random.Generator
    bpm: float
    beats_per_bar: int = 4
    swing: float = 0.5  # where the off-beat 8th falls within the beat; 0.5 = straight
    humanize_s: float = 0.006
    offset_s: float = 0.0  # song time at which the clip starts

    @property
    def beat_s(self) -> float:
        """Seconds per beat."""
        return 60.0 / self.bpm

    def bars_for(self, seconds: float) -> int:
        """How many bars cover ``seconds`` of clip from the random start point (one spare bar)."""
        return math.ceil((seconds + self.offset_s) / (self.beat_s * self.beats_per_bar)) + 1

    def seconds(self, pos: float) -> float:
        """Clip time of beat position ``pos``, swung and humanised (draws one normal from ``rng``)."""
        whole = math.floor(pos)
        frac = pos - whole
        warped = 2 * frac * self.swing if frac < 0.5 else self.swing + (frac - 0.5) * 2 * (1 - self.swing)
        return (whole + warped) * self.beat_s - self.offset_s + self.rng.normal(0.0, self.humanize_s)

    def notes(self, events: Sequence[BeatNote], legato: float = 0.95) -> list[Note]:
        """Convert beat-time events to seconds (durations scaled by ``legato``)."""
        return [(self.seconds(pos), dur * self.beat_s * legato, float(midi), vel) for pos, dur, midi, vel in events]


def draw_timeline(
    rng: np.random.Generator,
    bpm_range: tuple[float, float],
    beats_per_bar: int = 4,
    swing: float = 0.5,
    humanize_s: float = 0.006,
) -> Timeline:
    """A tempo drawn from the genre's range with +-8 % jitter; the clip starts anywhere in a bar."""
    bpm = rng.uniform(*bpm_range) * rng.uniform(0.92, 1.08)
    tl = Timeline(rng, bpm, beats_per_bar, swing, humanize_s)
    tl.offset_s = rng.uniform(0.0, beats_per_bar * tl.beat_s)
    return tl


# Chord qualities as intervals above the root.
MAJ, MIN, POWER = (0, 4, 7), (0, 3, 7), (0, 7, 12)
DOM7, MAJ7, MIN7 = (0, 4, 7, 10), (0, 4, 7, 11), (0, 3, 7, 10)
DOM9, MAJ9, MIN9 = (0, 4, 7, 10, 14), (0, 4, 7, 11, 14), (0, 3, 7, 10, 14)
Progression = Sequence[tuple[int, tuple[int, ...]]]  # (root semitones above the tonic, quality)


@dataclass(frozen=True)
class Chord:
    """A chord as an absolute root pitch class and its quality's intervals."""

    root: int  # absolute pitch class
    intervals: tuple[int, ...]

    @property
    def pitch_classes(self) -> frozenset[int]:
        """The chord's tones as pitch classes 0..11."""
        return frozenset((self.root + i) % 12 for i in self.intervals)


@dataclass
class Changes:
    """A progression laid out in time: one chord every ``beats_per_chord`` beats."""

    chords: list[Chord]
    beats_per_chord: float

    def at(self, pos: float) -> Chord:
        """The chord sounding at beat ``pos`` (the last one beyond the end)."""
        return self.chords[min(int(pos // self.beats_per_chord), len(self.chords) - 1)]

    def spans(self) -> Iterator[tuple[float, Chord]]:
        """Every chord with the beat it starts on."""
        for i, chord in enumerate(self.chords):
            yield i * self.beats_per_chord, chord


def chord_changes(
    rng: np.random.Generator,
    progression: Progression,
    beats_per_chord: float,
    total_beats: float,
    tonic: int,
    enrich: Callable[[tuple[int, ...]], tuple[int, ...]] = lambda q: q,
) -> Changes:
    """Cycle ``progression`` from a random chord (clips are excerpts) to cover ``total_beats``."""
    start = int(rng.integers(len(progression)))
    count = math.ceil(total_beats / beats_per_chord) + 1
    chords = []
    for i in range(count):
        root, quality = progression[(start + i) % len(progression)]
        chords.append(Chord((tonic + root) % 12, enrich(quality)))
    return Changes(chords, beats_per_chord)


def voicing(chord: Chord, center: float, previous: Sequence[int] | None, drop_root: bool = False) -> list[int]:
    """Place the chord's tones near ``center``, choosing the inversion that moves least from ``previous``."""
    intervals = [i for i in chord.intervals if not (drop_root and i % 12 == 0)]
    best: list[int] = []
    best_cost = math.inf
    for inv in range(len(intervals)):
        stack = intervals[inv:] + [i + 12 for i in intervals[:inv]]
        notes = [chord.root + i for i in stack]
        shift = 12 * round((center - sum(notes) / len(notes)) / 12)
        notes = [x + shift for x in notes]
        cost = abs(sum(notes) / len(notes) - center)
        if previous:
            cost += sum(min(abs(x - p) for p in previous) for x in notes) / len(notes)
        if cost < best_cost:
            best, best_cost = notes, cost
    return best


def bass_pitch(pitch_class: int, low: int = 31) -> int:
    """The pitch of ``pitch_class`` in the octave starting at MIDI ``low`` (G1 by default)."""
    return low + (pitch_class - low) % 12


def comping(
    changes: Changes,
    pattern: Sequence[tuple[float, float]],
    n_bars: int,
    beats_per_bar: int,
    center: float,
    rng: np.random.Generator,
    drop_root: bool = False,
    vel: float = 0.6,
) -> list[BeatNote]:
    """Chord hits: every (position in bar, length) of ``pattern`` plays the chord sounding there."""
    events: list[BeatNote] = []
    previous: list[int] | None = None
    voiced: dict[int, list[int]] = {}
    for bar in range(n_bars):
        for pos, dur in pattern:
            at = bar * beats_per_bar + pos
            key = int(at // changes.beats_per_chord)
            if key not in voiced:
                voiced[key] = previous = voicing(changes.at(at), center, previous, drop_root)
            v = vel * rng.uniform(0.8, 1.1)
            events.extend((at, dur, m, v) for m in voiced[key])
    return events


def scale_mask(pitch_classes: Sequence[int] | frozenset[int], tonic: int) -> np.ndarray:
    """A boolean mask over the 12 pitch classes: ``pitch_classes`` transposed to ``tonic``."""
    mask = np.zeros(12, dtype=bool)
    mask[[(tonic + p) % 12 for p in pitch_classes]] = True
    return mask


def melody_line(
    rng: np.random.Generator,
    rhythm: Sequence[tuple[float, float]],
    changes: Changes,
    scale: Callable[[Chord], np.ndarray],
    low: int,
    high: int,
    chord_tone_p: float = 0.7,
    chromatic_p: float = 0.0,
    vel: float = 0.7,
) -> list[BeatNote]:
    """A mostly stepwise random walk in ``scale``, landing on chord tones on the beat."""
    pitches = np.arange(low, high + 1)
    current = int(rng.integers(low + 5, high - 4))
    events: list[BeatNote] = []
    for pos, dur in rhythm:
        chord = changes.at(pos)
        on_beat = pos % 1 == 0
        mask = scale_mask(sorted(chord.pitch_classes), 0) if on_beat and rng.random() < chord_tone_p else scale(chord)
        candidates = pitches[mask[pitches % 12]]
        weights = np.exp(-np.abs(candidates - current) / 2.5)
        weights[candidates == current] *= 0.3
        current = int(rng.choice(candidates, p=weights / weights.sum()))
        pitch = current
        if not on_beat and rng.random() < chromatic_p:
            pitch = current + int(rng.choice((-1, 1)))  # chromatic neighbour / approach tone
        events.append((pos, dur, pitch, vel * rng.uniform(0.8, 1.15) * (1.1 if on_beat else 1.0)))
    return events


def phrase_rhythm(
    rng: np.random.Generator,
    n_bars: int,
    beats_per_bar: int,
    grid: float,
    fill: float,
    lengths: Sequence[int],
    rest_bar_p: float,
) -> list[tuple[float, float]]:
    """Melodic rhythm: bars of notes on a ``grid`` (lengths in grid steps), with whole bars of rest between."""
    rhythm: list[tuple[float, float]] = []
    for bar in range(n_bars):
        if rng.random() < rest_bar_p:
            continue
        pos = 0.0
        while pos < beats_per_bar - 1e-9:
            if rng.random() < fill:
                dur = min(grid * int(rng.choice(lengths)), beats_per_bar - pos)
                rhythm.append((bar * beats_per_bar + pos, dur))
                pos += dur
            else:
                pos += grid
    return rhythm

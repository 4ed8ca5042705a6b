"""Blues and jazz: one swing composer for both, so that the two genres differ only in harmony.

Both draw the same swing feel, tempo range, comping patterns, instruments, walking-bass rhythm and
kit; blues plays 12-bar forms with dominant-7th chords, a boogie bass and the blues scale, jazz plays
ii-V-I turnarounds with rootless 7th/9th voicings, a chromatic walking bass and chord-scale melodies.
"""

from __future__ import annotations

import numpy as np

from genre.demo.drums import Hit, drum_track
from genre.demo.instruments import CLEAN_GUITAR, EPIANO, FINGER_BASS, HORN, ORGAN, UPRIGHT_BASS, VIBES, pick
from genre.demo.mixing import Arrangement, Context, Part, draw_gain
from genre.demo.theory import (
    DOM7,
    DOM9,
    MAJ7,
    MAJ9,
    MIN7,
    MIN9,
    BeatNote,
    Changes,
    Chord,
    Progression,
    Timeline,
    bass_pitch,
    chord_changes,
    comping,
    draw_timeline,
    melody_line,
    phrase_rhythm,
    scale_mask,
)

_BLUES_FORMS: tuple[Progression, ...] = (
    [(0, DOM7)] * 4 + [(5, DOM7)] * 2 + [(0, DOM7)] * 2 + [(7, DOM7), (5, DOM7), (0, DOM7), (7, DOM7)],
    [(0, DOM7), (5, DOM7), (0, DOM7), (0, DOM7)]
    + [(5, DOM7)] * 2
    + [(0, DOM7)] * 2
    + [(7, DOM7), (5, DOM7), (0, DOM7), (7, DOM7)],
    [(0, MIN7)] * 4 + [(5, MIN7)] * 2 + [(0, MIN7)] * 2 + [(8, DOM7), (7, DOM7), (0, MIN7), (7, DOM7)],
)
_JAZZ_PROGRESSIONS: tuple[Progression, ...] = (
    [(2, MIN7), (7, DOM7), (0, MAJ7), (0, MAJ7)],
    [(0, MAJ7), (9, MIN7), (2, MIN7), (7, DOM7)],
    [(4, MIN7), (9, MIN7), (2, MIN7), (7, DOM7)],
    [(0, MAJ7), (9, DOM7), (2, MIN7), (7, DOM7)],
)
_SWING_COMPING: tuple[tuple[tuple[float, float], ...], ...] = (
    ((0.0, 1.0), (1.5, 0.5)),  # Charleston
    ((0.0, 3.8),),  # whole-bar pads
    ((1.0, 0.6), (3.0, 0.6)),  # on 2 and 4
    ((0.0, 1.4), (2.5, 1.2)),  # anticipated 3
)
_BLUES_SCALE = (0, 3, 5, 6, 7, 10)
_MODES = {MIN7: (0, 2, 3, 5, 7, 9, 10), DOM7: (0, 2, 4, 5, 7, 9, 10), MAJ7: (0, 2, 4, 5, 7, 9, 11)}


def compose_blues(ctx: Context) -> Arrangement:
    """One blues clip: 12-bar dominant-7th forms, boogie bass, blues-scale melody over a swing kit."""
    return _compose_swing(ctx, jazz=False)


def compose_jazz(ctx: Context) -> Arrangement:
    """One jazz clip: ii-V-I turnarounds, rootless voicings, chromatic walking bass over a swing kit."""
    return _compose_swing(ctx, jazz=True)


def _compose_swing(ctx: Context, *, jazz: bool) -> Arrangement:
    """Blues or jazz: identical swing rhythm section and instrument draws; only the harmony differs."""
    rng = ctx.rng
    tl = draw_timeline(rng, (76, 136), swing=rng.uniform(0.6, 0.7), humanize_s=0.01)
    n_bars = tl.bars_for(ctx.seconds)
    beats = n_bars * 4
    changes = _swing_changes(rng, beats, ctx.tonic, jazz=jazz)
    parts = _comping_parts(rng, tl, changes, n_bars, jazz=jazz)
    # Walking bass in quarters for both; the note choice carries the harmony.
    bass = _walking_bass(rng, changes, beats, jazz=jazz)
    parts.append(Part(pick(rng, (UPRIGHT_BASS, FINGER_BASS)), tl.notes(bass, 0.9), draw_gain(rng, 0.35)))
    if rng.random() < 0.85:
        parts.append(_lead_part(rng, tl, changes, n_bars, ctx.tonic, jazz=jazz))
    return Arrangement(parts, _swing_drums(rng, tl, n_bars), drum_gain=draw_gain(rng, 0.35))


def _swing_changes(rng: np.random.Generator, beats: int, tonic: int, *, jazz: bool) -> Changes:
    """A jazz turnaround (two or four beats per chord, half the chords enriched to 9ths) or a blues form."""
    if jazz:
        progression = _JAZZ_PROGRESSIONS[int(rng.integers(len(_JAZZ_PROGRESSIONS)))]
        nines: dict[tuple[int, ...], tuple[int, ...]] = {MIN7: MIN9, DOM7: DOM9, MAJ7: MAJ9}
        return chord_changes(
            rng,
            progression,
            float(rng.choice([2, 4])),
            beats,
            tonic,
            enrich=lambda q: nines[q] if rng.random() < 0.5 else q,
        )
    return chord_changes(rng, _BLUES_FORMS[int(rng.choice(3, p=[0.45, 0.35, 0.2]))], 4.0, beats, tonic)


def _comping_parts(rng: np.random.Generator, tl: Timeline, changes: Changes, n_bars: int, *, jazz: bool) -> list[Part]:
    """Comping, plus an optional sustained organ pad under it; jazz drops the root (rootless voicings)."""
    comp_inst = pick(rng, (EPIANO, ORGAN, CLEAN_GUITAR, VIBES))
    pattern = _SWING_COMPING[int(rng.integers(len(_SWING_COMPING)))]
    comp = comping(changes, pattern, n_bars, 4, rng.uniform(60, 66), rng, drop_root=jazz)
    parts = [Part(comp_inst, tl.notes(comp, 0.9), draw_gain(rng, 0.2))]
    if rng.random() < 0.3:
        pad = comping(changes, ((0.0, 3.9),), n_bars, 4, 58, rng, drop_root=jazz, vel=0.4)
        parts.append(Part(ORGAN.jittered(rng), tl.notes(pad, 1.0), draw_gain(rng, 0.1)))
    return parts


def _walking_bass(rng: np.random.Generator, changes: Changes, beats: int, *, jazz: bool) -> list[BeatNote]:
    """Quarter notes: jazz walks chord tones with chromatic approaches, blues plays the boogie R-3-5-6 / b7-6-5-3."""
    bass: list[BeatNote] = []
    for beat in range(beats):
        chord = changes.at(beat)
        nxt = changes.at(beat + 1)
        root = bass_pitch(chord.root)
        step = beat % 4 if changes.beats_per_chord == 4 else beat % 2
        if jazz:
            if step == 0:
                pitch = root
            elif nxt is not chord or step == int(changes.beats_per_chord) - 1:
                pitch = bass_pitch(nxt.root) + int(rng.choice((-1, 1)))  # chromatic approach
            else:
                pitch = root + int(rng.choice([i for i in chord.intervals if 0 < i < 12]))
        else:
            third = 3 if 3 in chord.intervals else 4
            boogie = (0, third, 7, 9) if (beat // 4) % 2 == 0 else (10, 9, 7, third)
            pitch = root + boogie[beat % 4]
        bass.append((beat, 1.0, pitch, 0.75 * rng.uniform(0.85, 1.1)))
    return bass


def _chord_scale(chord: Chord) -> np.ndarray:
    """The mode whose tones differ least from ``chord``'s, on the chord's root (jazz's chord-scale choice)."""
    base = min(_MODES, key=lambda q: len(set(q) ^ set(chord.intervals)))
    return scale_mask(_MODES[base], chord.root)


def _lead_part(
    rng: np.random.Generator, tl: Timeline, changes: Changes, n_bars: int, tonic: int, *, jazz: bool
) -> Part:
    """The melody: chord scales with chromatic neighbours (jazz) or the blues scale of the key (blues)."""
    rhythm = phrase_rhythm(rng, n_bars, 4, 0.5, fill=0.7, lengths=(1, 1, 1, 2, 3), rest_bar_p=0.35)
    if jazz:
        lead = melody_line(rng, rhythm, changes, _chord_scale, 62, 86, chord_tone_p=0.6, chromatic_p=0.2)
    else:
        blues_scale = scale_mask(_BLUES_SCALE, tonic)
        lead = melody_line(rng, rhythm, changes, lambda chord: blues_scale, 62, 86, chord_tone_p=0.5)
    return Part(pick(rng, (HORN, CLEAN_GUITAR, EPIANO, VIBES)), tl.notes(lead, 0.9), draw_gain(rng, 0.2))


def _swing_drums(rng: np.random.Generator, tl: Timeline, n_bars: int) -> list[Hit]:
    """Ride or shuffled hats, hats on 2 and 4, feathered or 1-and-3 kick, backbeat or ghost snare."""
    ride = rng.random() < 0.6
    backbeat = rng.random() < 0.5
    feather = rng.random() < 0.5

    def bar_pattern(bar: int) -> list[Hit]:
        hits: list[Hit] = []
        if ride:  # "ding, ding-a ding, ding-a"
            hits += [(p, "ride", v) for p, v in ((0, 0.5), (1, 0.6), (1.5, 0.35), (2, 0.5), (3, 0.6), (3.5, 0.35))]
        else:  # shuffled hats
            hits += [(p / 2, "hat", 0.5 if p % 2 == 0 else 0.3) for p in range(8)]
        hits += [(1.0, "hat", 0.35), (3.0, "hat", 0.35)]
        hits += [(float(b), "kick", 0.3) for b in range(4)] if feather else [(0.0, "kick", 0.6), (2.0, "kick", 0.5)]
        if backbeat:
            hits += [(1.0, "snare", 0.45), (3.0, "snare", 0.45)]
        else:
            hits += [(p / 2, "snare", 0.2) for p in range(1, 8, 2) if rng.random() < 0.3]
        return hits

    return drum_track(tl, n_bars, bar_pattern)

"""Classical: no percussion, functional major or harmonic-minor progressions (often in 3/4), string
pads, Alberti arpeggios on piano or harpsichord, a cello on the roots and a stepwise melody.
"""

from __future__ import annotations

import numpy as np

from genre.demo.instruments import CELESTA, CELLO, FLUTE, HARPSICHORD, PIANO, SOLO_STRING, STRINGS, pick
from genre.demo.mixing import Arrangement, Context, Part, draw_gain
from genre.demo.theory import (
    DOM7,
    MAJ,
    MIN,
    BeatNote,
    Changes,
    Chord,
    Progression,
    bass_pitch,
    chord_changes,
    comping,
    draw_timeline,
    melody_line,
    phrase_rhythm,
    scale_mask,
    voicing,
)

_CLASSICAL_MAJOR: tuple[Progression, ...] = (
    [(0, MAJ), (5, MAJ), (7, DOM7), (0, MAJ)],
    [(0, MAJ), (9, MIN), (5, MAJ), (7, MAJ)],
    [(0, MAJ), (2, MIN), (7, DOM7), (0, MAJ)],
    [(0, MAJ), (7, MAJ), (9, MIN), (4, MIN), (5, MAJ), (0, MAJ), (5, MAJ), (7, MAJ)],
    [(0, MAJ), (5, MAJ), (0, MAJ), (7, DOM7)],
)
_CLASSICAL_MINOR: tuple[Progression, ...] = (
    [(0, MIN), (5, MIN), (7, DOM7), (0, MIN)],
    [(0, MIN), (8, MAJ), (5, MIN), (7, MAJ)],
)
_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
_HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 11)


def compose_classical(ctx: Context) -> Arrangement:
    """Classical: no drums, slow sustained strings, arpeggios and a stepwise melody in major/harmonic minor."""
    rng = ctx.rng
    bpb = int(rng.choice([3, 4], p=[0.4, 0.6]))
    tl = draw_timeline(rng, (60, 100), beats_per_bar=bpb, humanize_s=0.015)
    n_bars = tl.bars_for(ctx.seconds)
    major = rng.random() < 0.75
    forms = _CLASSICAL_MAJOR if major else _CLASSICAL_MINOR
    per_chord = bpb / 2 if bpb == 4 and rng.random() < 0.3 else bpb
    changes = chord_changes(rng, forms[int(rng.integers(len(forms)))], per_chord, n_bars * bpb, ctx.tonic)
    scale = scale_mask(_MAJOR_SCALE if major else _HARMONIC_MINOR, ctx.tonic)

    parts = []
    use_pad, use_arp = rng.random() < 0.7, rng.random() < 0.6
    if not (use_pad or use_arp):
        use_pad = True
    if use_pad:
        hits = ((0.0, float(bpb)),) if per_chord == bpb else ((0.0, 2.0), (2.0, 2.0))
        pad = comping(changes, hits, n_bars, bpb, rng.uniform(58, 66), rng, vel=0.5)
        parts.append(Part(STRINGS.jittered(rng), tl.notes(pad, 1.0), draw_gain(rng, 0.12)))
    if use_arp:
        arp = _alberti(rng, changes, n_bars, bpb)
        parts.append(Part(pick(rng, (PIANO, HARPSICHORD)), tl.notes(arp, 1.0), draw_gain(rng, 0.15)))
    if rng.random() < 0.6:  # cello on the chord roots
        cello = [(start, per_chord, bass_pitch(chord.root, 36), 0.6) for start, chord in changes.spans()]
        parts.append(Part(CELLO.jittered(rng), tl.notes(cello, 1.0), draw_gain(rng, 0.2)))
    rhythm = phrase_rhythm(rng, n_bars, bpb, 0.5, fill=0.8, lengths=(1, 2, 2, 2, 4), rest_bar_p=0.15)
    melody = melody_line(rng, rhythm, changes, lambda chord: scale, 64, 88, chord_tone_p=0.75)
    parts.append(Part(pick(rng, (FLUTE, SOLO_STRING, CELESTA, PIANO)), tl.notes(melody, 1.0), draw_gain(rng, 0.2)))
    return Arrangement(parts)


def _alberti(rng: np.random.Generator, changes: Changes, n_bars: int, bpb: int) -> list[BeatNote]:
    """Alberti-style broken chords in 8ths (low, high, middle, high), voice-led from chord to chord."""
    arp: list[BeatNote] = []
    voiced: list[int] = []  # empty before the first chord: voicing() then has nothing to lead from
    chord: Chord | None = None
    for pos in np.arange(0, n_bars * bpb, 0.5):
        if changes.at(pos) is not chord:
            chord = changes.at(pos)
            voiced = voicing(chord, 57, voiced)
        order = (0, -1, 1, -1)[int(pos * 2) % 4]
        arp.append((float(pos), 0.5, voiced[order], 0.5 * rng.uniform(0.85, 1.1)))
    return arp

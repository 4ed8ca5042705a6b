"""Rock and metal: one guitar-band composer for both, so that the two genres differ only in the amp.

Both draw natural-minor power-chord progressions in straight 8ths, a root-note bass, a
minor-pentatonic lead and a backbeat kit from the same distributions; rock's guitars go through mild
overdrive and a dark cabinet, metal's through heavy distortion and a bright one.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from genre.demo.drums import Hit, drum_track
from genre.demo.instruments import FINGER_BASS, LEAD_GUITAR, ORGAN, POWER_GUITAR, UPRIGHT_BASS, pick
from genre.demo.mixing import Arrangement, Context, Drive, Part, draw_gain
from genre.demo.theory import (
    MAJ,
    MIN,
    POWER,
    BeatNote,
    Changes,
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

_ROCK_PROGRESSIONS: tuple[Progression, ...] = (
    [(0, MIN), (8, MAJ), (3, MAJ), (10, MAJ)],
    [(0, MIN), (10, MAJ), (8, MAJ), (10, MAJ)],
    [(0, MIN), (5, MIN), (8, MAJ), (10, MAJ)],
    [(0, MIN), (8, MAJ), (10, MAJ), (0, MIN)],
    [(0, MIN), (3, MAJ), (10, MAJ), (8, MAJ)],
    [(0, MIN), (1, MAJ), (0, MIN), (10, MAJ)],
)
_ROCK_STRUMS: tuple[tuple[tuple[float, float], ...], ...] = (
    tuple((p / 2, 0.5) for p in range(8)),  # straight 8th chugs
    ((0.0, 1.5), (1.5, 1.0), (2.5, 0.5), (3.0, 1.0)),  # syncopated
    ((0.0, 0.5), (0.5, 0.5), (1.0, 1.0), (2.0, 0.5), (2.5, 0.5), (3.0, 1.0)),
    ((0.0, 4.0),),  # let ring
)
_MINOR_PENTATONIC = (0, 3, 5, 7, 10)


def compose_rock(ctx: Context) -> Arrangement:
    """One rock clip: power chords through mild overdrive and a dark cabinet (2-3.5 kHz)."""
    return _compose_guitar_band(ctx, metal=False)


def compose_metal(ctx: Context) -> Arrangement:
    """One metal clip: rock's score through heavy distortion and a bright cabinet (4.5-8 kHz)."""
    return _compose_guitar_band(ctx, metal=True)


def _compose_guitar_band(ctx: Context, *, metal: bool) -> Arrangement:
    """Rock or metal: identical score distribution; only the amp (distortion, cabinet brightness) differs."""
    rng = ctx.rng
    tl = draw_timeline(rng, (100, 156), humanize_s=0.005)
    n_bars = tl.bars_for(ctx.seconds)
    progression = _ROCK_PROGRESSIONS[int(rng.integers(len(_ROCK_PROGRESSIONS)))]
    changes = chord_changes(rng, progression, float(rng.choice([4, 4, 8])), n_bars * 4, ctx.tonic)

    parts = _rhythm_section(rng, tl, changes, n_bars)
    if rng.random() < 0.7:
        rhythm = phrase_rhythm(rng, n_bars, 4, 0.5, fill=0.6, lengths=(1, 2, 2, 3, 4), rest_bar_p=0.4)
        pent = scale_mask(_MINOR_PENTATONIC, ctx.tonic)
        lead = melody_line(rng, rhythm, changes, lambda chord: pent, 60, 84, chord_tone_p=0.5)
        parts.append(Part(LEAD_GUITAR.jittered(rng), tl.notes(lead, 0.95), draw_gain(rng, 0.2), bus="lead"))
    if rng.random() < 0.35:  # optional organ pad with full triads
        pad = comping(changes, ((0.0, 4.0),), n_bars, 4, 60, rng, vel=0.4)
        parts.append(Part(ORGAN.jittered(rng), tl.notes(pad, 1.0), draw_gain(rng, 0.08)))
    drives = _amp_drives(rng, metal=metal)
    return Arrangement(parts, _rock_drums(rng, tl, n_bars), drum_gain=draw_gain(rng, 0.45), drives=drives)


def _rhythm_section(rng: np.random.Generator, tl: Timeline, changes: Changes, n_bars: int) -> list[Part]:
    """Power chords on the low strings (optionally palm-muted) in a drawn strum pattern, the bass in unison."""
    strum = _ROCK_STRUMS[int(rng.integers(len(_ROCK_STRUMS)))]
    palm_mute = rng.random() < 0.4
    guitar = replace(POWER_GUITAR.jittered(rng), decay=0.12) if palm_mute else POWER_GUITAR.jittered(rng)
    power: list[BeatNote] = []
    bass: list[BeatNote] = []
    for bar in range(n_bars):
        for pos, dur in strum:
            at = bar * 4 + pos
            root = 40 + (changes.at(at).root - 40) % 12  # E2..D#3, like a guitar's low strings
            v = (0.8 if pos % 1 == 0 else 0.65) * rng.uniform(0.9, 1.1)
            power.extend((at, dur, root + i, v) for i in POWER)
            bass.append((at, dur, bass_pitch(changes.at(at).root, 28), v))
    return [
        Part(guitar, tl.notes(power, 0.98), draw_gain(rng, 0.3), bus="amp"),
        Part(pick(rng, (FINGER_BASS, UPRIGHT_BASS)), tl.notes(bass, 0.9), draw_gain(rng, 0.3)),
    ]


def _amp_drives(rng: np.random.Generator, *, metal: bool) -> dict[str, Drive]:
    """The rhythm ("amp") and lead buses' drive: heavy and bright for metal, mild and dark for rock."""
    drives = {}
    for bus in ("amp", "lead"):
        if metal:
            drives[bus] = Drive(rng.uniform(12.0, 40.0), rng.uniform(4500.0, 8000.0), draw_gain(rng, 0.45))
        else:
            drives[bus] = Drive(rng.uniform(1.5, 5.0), rng.uniform(2000.0, 3500.0), draw_gain(rng, 0.45))
    if "lead" in drives:
        drives["lead"].level *= 0.7
    return drives


def _rock_drums(rng: np.random.Generator, tl: Timeline, n_bars: int) -> list[Hit]:
    """Straight 8th hats or ride, backbeat snare, drawn extra kicks, crashes and fills every four bars."""
    ride = rng.random() < 0.3
    kick_extra = [p for p in (1.5, 2.5, 3.5) if rng.random() < 0.4]

    def bar_pattern(bar: int) -> list[Hit]:
        hits = [(p / 2, "ride" if ride else "hat", 0.55 if p % 2 == 0 else 0.4) for p in range(8)]
        hits += [(0.0, "kick", 0.9), (2.0, "kick", 0.8)] + [(p, "kick", 0.7) for p in kick_extra]
        hits += [(1.0, "snare", 0.85), (3.0, "snare", 0.85)]
        if bar % 4 == 0:
            hits.append((0.0, "crash", 0.5))
        if bar % 4 == 3 and rng.random() < 0.4:  # fill into the next phrase
            hits += [(3.0 + k / 4, "snare", 0.5 + 0.1 * k) for k in range(4)]
        return hits

    return drum_track(tl, n_bars, bar_pattern)

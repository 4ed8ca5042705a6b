"""Disco: four-on-the-floor kit, an octave-jumping 8th bass under dorian minor-7th/9th vamps, with bright
detuned stabs, string pads and/or 16th-note muted guitar, and sometimes a synth or string lead.
"""

from __future__ import annotations

from genre.demo.drums import Hit, drum_track
from genre.demo.instruments import FINGER_BASS, MUTED_GUITAR, STRINGS, SYNTH_BASS, SYNTH_LEAD, SYNTH_STAB, pick
from genre.demo.mixing import Arrangement, Context, Part, draw_gain
from genre.demo.theory import (
    DOM7,
    DOM9,
    MAJ,
    MIN7,
    MIN9,
    Progression,
    bass_pitch,
    chord_changes,
    comping,
    draw_timeline,
    melody_line,
    phrase_rhythm,
    scale_mask,
)

_DISCO_VAMPS: tuple[Progression, ...] = (
    [(0, MIN7), (5, DOM7)],
    [(0, MIN9), (5, DOM9)],
    [(0, MIN7), (5, MIN7)],
    [(0, MIN7), (0, MIN7), (10, MAJ), (5, DOM7)],
)
_DORIAN = (0, 2, 3, 5, 7, 9, 10)


def compose_disco(ctx: Context) -> Arrangement:
    """Disco: four-on-the-floor, octave bass, dorian m7 vamps, bright stabs / strings / muted guitar."""
    rng = ctx.rng
    tl = draw_timeline(rng, (112, 130), humanize_s=0.003)
    n_bars = tl.bars_for(ctx.seconds)
    changes = chord_changes(
        rng, _DISCO_VAMPS[int(rng.integers(len(_DISCO_VAMPS)))], float(rng.choice([4, 8])), n_bars * 4, ctx.tonic
    )
    parts = []
    bass = [
        (p / 2, 0.5, bass_pitch(changes.at(p / 2).root, 33) + (12 if p % 2 else 0), 0.75) for p in range(n_bars * 8)
    ]
    parts.append(Part(pick(rng, (SYNTH_BASS, FINGER_BASS)), tl.notes(bass, 0.8), draw_gain(rng, 0.3)))

    use = {"stabs": rng.random() < 0.6, "strings": rng.random() < 0.5, "guitar": rng.random() < 0.4}
    if not any(use.values()):
        use["stabs"] = True
    if use["stabs"]:  # off-beat chord stabs
        stabs = comping(changes, tuple((b + 0.5, 0.25) for b in range(4)), n_bars, 4, rng.uniform(62, 70), rng)
        parts.append(Part(SYNTH_STAB.jittered(rng), tl.notes(stabs, 1.0), draw_gain(rng, 0.12)))
    if use["strings"]:
        pad = comping(changes, ((0.0, 4.0),), n_bars, 4, rng.uniform(62, 70), rng, vel=0.5)
        parts.append(Part(STRINGS.jittered(rng), tl.notes(pad, 1.0), draw_gain(rng, 0.1)))
    if use["guitar"]:  # 16th "chicken scratch"
        scratch = [
            e
            for e in comping(changes, tuple((k / 4, 0.2) for k in range(16)), n_bars, 4, 67, rng, vel=0.35)
            if rng.random() < 0.7
        ]
        parts.append(Part(MUTED_GUITAR.jittered(rng), tl.notes(scratch, 1.0), draw_gain(rng, 0.1)))
    if rng.random() < 0.5:
        rhythm = phrase_rhythm(rng, n_bars, 4, 0.25, fill=0.5, lengths=(1, 2, 2, 3), rest_bar_p=0.4)
        dorian = scale_mask(_DORIAN, ctx.tonic)
        lead = melody_line(rng, rhythm, changes, lambda chord: dorian, 62, 86, chord_tone_p=0.6)
        parts.append(Part(pick(rng, (SYNTH_LEAD, STRINGS)), tl.notes(lead, 0.85), draw_gain(rng, 0.16)))

    sixteenths = rng.random() < 0.5

    def bar_pattern(bar: int) -> list[Hit]:
        hits = [(float(b), "kick", 0.9) for b in range(4)]
        hits += [(b + 0.5, "open_hat", 0.5) for b in range(4)]
        hits += [(1.0, "clap", 0.7), (3.0, "clap", 0.7)]
        if sixteenths:
            hits += [(k / 4, "hat", 0.3) for k in range(16) if k % 2 == 0 or rng.random() < 0.7]
        if bar % 8 == 0:
            hits.append((0.0, "crash", 0.4))
        return hits

    return Arrangement(parts, drum_track(tl, n_bars, bar_pattern), drum_gain=draw_gain(rng, 0.45))

"""The demo corpus's instruments: what a synth voice is (oscillator, spectrum, envelope) and the
nominal voices the genres draw from.

Which oscillator a voice uses and how a note of it sounds is :func:`genre.demo.synthesis.render_note`;
the drum kit is in :mod:`genre.demo.drums`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Instrument:
    """A synth voice: oscillator kind + spectrum, brightness and an attack/decay/sustain/release envelope."""

    kind: str = "table"  # "table" (wavetable), "fm" (electric piano) or "bell" (inharmonic partials)
    spectrum: str = "saw"  # key of synthesis._SPECTRA (table) or synthesis._BELLS (bell)
    cutoff_hz: float = 6000.0  # harmonics above this are left out: the brightness knob
    attack: float = 0.005
    decay: float = 0.5  # time constant of the decay towards ``sustain``
    sustain: float = 0.0
    release: float = 0.05
    vibrato: float = 0.0  # depth as a frequency ratio
    detune_cents: float = 0.0  # > 0: a second, detuned oscillator (ensemble / supersaw)
    pluck: float = 0.0  # > 0: upper harmonics die away with this time constant (strings, piano)
    fm_index: float = 0.0

    def jittered(self, rng: np.random.Generator) -> Instrument:
        """A per-clip variant: brightness and envelope times drawn around the nominal values."""
        return replace(
            self,
            cutoff_hz=self.cutoff_hz * rng.uniform(0.75, 1.3),
            attack=self.attack * rng.uniform(0.8, 1.25),
            decay=self.decay * rng.uniform(0.75, 1.3),
            fm_index=self.fm_index * rng.uniform(0.7, 1.3),
        )


# Nominal settings; each clip jitters them (Instrument.jittered).
EPIANO = Instrument("fm", "sine", attack=0.002, decay=1.2, sustain=0.1, release=0.15, fm_index=1.6)
ORGAN = Instrument("table", "organ", cutoff_hz=6000, attack=0.01, decay=1.0, sustain=1.0, release=0.06)
CLEAN_GUITAR = Instrument("table", "string", cutoff_hz=4500, attack=0.003, decay=0.6, release=0.08, pluck=0.12)
VIBES = Instrument("bell", "vibes", attack=0.002, decay=1.5, sustain=1.0, release=0.2)
HORN = Instrument("table", "reed", cutoff_hz=3500, attack=0.04, decay=1.0, sustain=0.8, release=0.08, vibrato=0.004)
UPRIGHT_BASS = Instrument("table", "mellow", cutoff_hz=1200, attack=0.006, decay=0.5, sustain=0.25, release=0.06)
FINGER_BASS = Instrument(
    "table", "string", cutoff_hz=1800, attack=0.004, decay=0.8, sustain=0.4, release=0.05, pluck=0.08
)
SYNTH_BASS = Instrument("table", "square", cutoff_hz=2500, attack=0.002, decay=0.2, sustain=0.45, release=0.03)
POWER_GUITAR = Instrument("table", "saw", cutoff_hz=5000, attack=0.002, decay=1.5, sustain=0.5, release=0.05)
LEAD_GUITAR = Instrument(
    "table", "saw", cutoff_hz=5000, attack=0.004, decay=2.0, sustain=0.6, release=0.08, vibrato=0.006
)
STRINGS = Instrument(
    "table",
    "string",
    cutoff_hz=3500,
    attack=0.35,
    decay=1.0,
    sustain=1.0,
    release=0.35,
    vibrato=0.003,
    detune_cents=8.0,
)
SOLO_STRING = Instrument(
    "table", "string", cutoff_hz=5000, attack=0.08, decay=1.0, sustain=1.0, release=0.15, vibrato=0.006
)
CELLO = Instrument("table", "string", cutoff_hz=2500, attack=0.15, decay=1.0, sustain=1.0, release=0.25, vibrato=0.004)
FLUTE = Instrument("table", "flute", cutoff_hz=4000, attack=0.07, decay=1.0, sustain=1.0, release=0.1, vibrato=0.005)
PIANO = Instrument("table", "piano", cutoff_hz=6000, attack=0.002, decay=1.0, release=0.15, pluck=0.25)
HARPSICHORD = Instrument("table", "saw", cutoff_hz=9000, attack=0.001, decay=0.6, release=0.05, pluck=0.08)
CELESTA = Instrument("bell", "celesta", attack=0.001, decay=0.9, sustain=1.0, release=0.1)
SYNTH_STAB = Instrument(
    "table", "saw", cutoff_hz=9000, attack=0.002, decay=0.15, sustain=0.3, release=0.05, detune_cents=14.0
)
SYNTH_LEAD = Instrument(
    "table", "square", cutoff_hz=7000, attack=0.01, decay=0.5, sustain=0.7, release=0.06, vibrato=0.004
)
MUTED_GUITAR = Instrument("table", "string", cutoff_hz=5000, attack=0.001, decay=0.04, release=0.02, pluck=0.02)


def pick(rng: np.random.Generator, options: Sequence[Instrument]) -> Instrument:
    """One of ``options`` at random, jittered for this clip."""
    return options[int(rng.integers(len(options)))].jittered(rng)

"""An arrangement (the voices, drum hits and guitar amps a composer chose for one clip) and its mixdown
into one signal with noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from genre.demo.drums import Hit, drum_kit
from genre.demo.instruments import Instrument
from genre.demo.synthesis import Audio, add_at, biquad, filtered, render_note, white_noise
from genre.demo.theory import Note


@dataclass
class Context:
    """Everything a composer may use for one clip."""

    rng: np.random.Generator
    sr: int
    n: int  # output length in samples
    tonic: int  # pitch class of the key, 0 = C

    @property
    def seconds(self) -> float:
        """The clip's length in seconds."""
        return self.n / self.sr


def draw_gain(rng: np.random.Generator, nominal: float) -> float:
    """Per-clip voice level: nominal -6...+3 dB."""
    return nominal * 10.0 ** (rng.uniform(-6.0, 3.0) / 20.0)


@dataclass
class Part:
    """One voice of an arrangement: an instrument, its notes (in seconds), a level and the bus it plays into."""

    instrument: Instrument
    notes: list[Note]
    gain: float
    bus: str = "dry"


@dataclass
class Drive:
    """Guitar amp: tanh distortion with ``gain`` into a cabinet low-pass at ``cutoff_hz``."""

    gain: float
    cutoff_hz: float
    level: float


@dataclass
class Arrangement:
    """What a composer returns: the parts, the drum hits and the amp drives of the named buses."""

    parts: list[Part]
    drums: list[Hit] = field(default_factory=list)  # (seconds, kit piece, velocity)
    drum_gain: float = 1.0
    drives: dict[str, Drive] = field(default_factory=dict)


def mix_down(arrangement: Arrangement, ctx: Context) -> Audio:
    """Render all parts into buses, run the amp buses through their drive, and sum."""
    sr, n, rng = ctx.sr, ctx.n, ctx.rng
    buses: dict[str, Audio] = {}
    for part in arrangement.parts:
        bus = buses.setdefault(part.bus, np.zeros(n, dtype=np.float32))
        for start, dur, midi, vel in part.notes:
            if start >= ctx.seconds or start + dur + part.instrument.release <= 0:
                continue
            wave = render_note(part.instrument, dur, midi, sr, int(rng.integers(2**32)))
            add_at(bus, round(start * sr), wave, vel * part.gain)
    mix = np.zeros(n, dtype=np.float32)
    for name, bus in buses.items():
        drive = arrangement.drives.get(name)
        if drive is not None:
            peak = float(np.max(np.abs(bus))) or 1.0
            bus = np.tanh(bus * np.float32(drive.gain / peak)) * np.float32(drive.level / math.tanh(drive.gain))
            # Cabinet: 4th-order Butterworth low-pass as two biquads (Q values of the Butterworth poles).
            bus = filtered(
                bus, biquad("lowpass", drive.cutoff_hz, sr, 0.5412), biquad("lowpass", drive.cutoff_hz, sr, 1.3066)
            )
        mix += bus
    if arrangement.drums:
        kit = drum_kit(rng, sr)
        for start, piece, vel in arrangement.drums:
            if start < ctx.seconds:
                add_at(mix, round(start * sr), kit[piece], vel * arrangement.drum_gain)
    return mix


def add_noise(mix: Audio, rng: np.random.Generator, sr: int, snr_db: float) -> Audio:
    """Add white or low-passed ("hum and rumble") noise at ``snr_db`` below the signal's RMS."""
    noise = white_noise(rng, len(mix))
    if rng.random() < 0.5:
        noise = filtered(noise, biquad("lowpass", rng.uniform(300.0, 3000.0), sr))
    signal_rms = math.sqrt(float(np.mean(np.square(mix, dtype=np.float64))))
    noise_rms = math.sqrt(float(np.mean(np.square(noise, dtype=np.float64)))) or 1.0
    return mix + noise * np.float32(signal_rms / noise_rms * 10.0 ** (-snr_db / 20.0))

"""Sound generation for the demo corpus: band-limited wavetable, FM and inharmonic-bell oscillators,
envelopes, one rendered note, and the filters, noise and bus mixing the rest is built from.

Everything works on whole notes with numpy (no per-sample Python); the oscillators use 32-bit
fixed-point phase so that a note's samples do not depend on float rounding of its start time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy import signal

from genre.demo.instruments import Instrument

Audio = npt.NDArray[np.float32]

_TABLE_BITS = 12
_TABLE_SIZE = 1 << _TABLE_BITS
_TABLE_MASK = _TABLE_SIZE - 1
_PHASE_SHIFT = 32 - _TABLE_BITS  # 32-bit fixed-point phase -> table index

_SPECTRA: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sine": lambda k: (k == 1).astype(np.float64),
    "saw": lambda k: 1.0 / k,  # bright, all harmonics
    "square": lambda k: np.where(k % 2 == 1, 1.0 / k, 0.0),  # hollow, odd harmonics
    "reed": lambda k: np.where(k % 2 == 1, 1.0 / k, 0.3 / k),  # sax/clarinet-like: odd-dominant
    "mellow": lambda k: 1.0 / k**2,  # dark, bass-like
    "string": lambda k: 1.0 / k**1.3,
    "piano": lambda k: 1.0 / k**1.6,
    "flute": lambda k: np.select([k == 1, k == 2, k == 3], [1.0, 0.22, 0.07], 0.0),
    # Hammond drawbars 8' 4' 2 2/3' 2' 1 3/5' 1': harmonics 1, 2, 3, 4, 5, 8.
    "organ": lambda k: np.select(
        [k == 1, k == 2, k == 3, k == 4, k == 5, k == 8], [1.0, 0.8, 0.6, 0.45, 0.2, 0.3], 0.0
    ),
}

# Inharmonic partials (frequency ratio, amplitude, decay-time scale) for bar percussion.
_BELLS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "vibes": ((1.0, 1.0, 1.0), (3.98, 0.35, 0.35), (9.96, 0.12, 0.15)),  # tuned bars, nearly harmonic
    "celesta": ((1.0, 1.0, 1.0), (2.76, 0.45, 0.5), (5.40, 0.25, 0.25), (8.93, 0.12, 0.12)),  # free bars
}


@lru_cache(maxsize=2048)
def _wavetable(spectrum: str, n_harmonics: int) -> Audio:
    """One band-limited period with ``n_harmonics`` harmonics of ``spectrum``, peak 1."""
    n_harmonics = max(1, min(n_harmonics, _TABLE_SIZE // 2 - 1))
    k = np.arange(1, n_harmonics + 1, dtype=np.float64)
    bins = np.zeros(_TABLE_SIZE // 2 + 1, dtype=np.complex128)
    bins[1 : n_harmonics + 1] = -1j * _SPECTRA[spectrum](k)
    table = np.fft.irfft(bins, n=_TABLE_SIZE)
    return (table / np.max(np.abs(table))).astype(np.float32)


_SINE = _wavetable("sine", 1)
_MAX_LFO_S = 12.0  # vibrato LFO cache length; longer notes just get a longer one
_RAMP = np.arange(0, dtype=np.int64)
_RAMP_F = np.arange(0, dtype=np.float32)


def ramps(n: int) -> tuple[npt.NDArray[np.int64], Audio]:
    """Sample-index ramps (int64 and float32) of length ``n``, grown and reused across notes."""
    global _RAMP, _RAMP_F
    if len(_RAMP) < n:
        _RAMP = np.arange(max(n, 2 * len(_RAMP)), dtype=np.int64)
        _RAMP_F = _RAMP.astype(np.float32)
    return _RAMP[:n], _RAMP_F[:n]


def _phase_index(freq: float, n: int, sr: int, phase0: int) -> npt.NDArray[np.int64]:
    """Table indices of a constant-frequency oscillator (exact integer phase, no drift)."""
    inc = int(round(freq / sr * 2**32))
    return ((ramps(n)[0] * inc + phase0) >> _PHASE_SHIFT) & _TABLE_MASK


@lru_cache(maxsize=8)
def _lfo(rate: float, sr: int, n: int) -> Audio:
    """1 - cos(2 pi rate t), cached: every vibrato note shares it."""
    return (1.0 - np.cos(2.0 * np.pi * rate / sr * np.arange(n))).astype(np.float32)


def _vibrato_index(freq: float, n: int, sr: int, phase0: int, depth: float, rate: float) -> npt.NDArray[np.int64]:
    """Table indices of an oscillator with sinusoidal vibrato (analytic phase integral, fixed point)."""
    lfo = _lfo(rate, sr, max(n, int(_MAX_LFO_S * sr)))[:n]
    wobble = (lfo * np.float32(freq * depth / (2.0 * np.pi * rate) * 2**32)).astype(np.int64)
    inc = int(round(freq / sr * 2**32))
    return ((ramps(n)[0] * inc + phase0 + wobble) >> _PHASE_SHIFT) & _TABLE_MASK


@lru_cache(maxsize=64)
def decay_curve(n: int, tau_s: float, sr: int) -> Audio:
    """exp(-t / tau) over ``n`` samples; cached (notes of one part share lengths), so read-only."""
    curve = np.exp(ramps(n)[1] * np.float32(-1.0 / (tau_s * sr)))
    curve.flags.writeable = False
    return curve


def _hz(midi: float) -> float:
    """Equal-tempered frequency of a (fractional) MIDI pitch, A4 = 440 Hz."""
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


@lru_cache(maxsize=64)
def _envelope(inst: Instrument, n_hold: int, n: int, sr: int) -> Audio:
    """Attack ramp, exponential decay to the sustain level, linear release after ``n_hold`` samples.

    Cached like ``decay_curve`` (hence read-only): most notes of a part have the same length.
    """
    if inst.sustain >= 1.0:
        env = np.ones(n, dtype=np.float32)
    else:
        env = decay_curve(n, inst.decay, sr).copy()
        if inst.sustain > 0.0:
            env *= np.float32(1.0 - inst.sustain)
            env += np.float32(inst.sustain)
    attack = min(int(inst.attack * sr), n)
    if attack > 1:
        env[:attack] *= ramps(attack)[1] * np.float32(1.0 / (attack - 1))
    if n > n_hold:
        fall = n - n_hold
        env[n_hold:] *= ramps(fall)[1][::-1] * np.float32(1.0 / max(fall - 1, 1))
    env.flags.writeable = False
    return env


def render_note(inst: Instrument, dur_s: float, midi: float, sr: int, phase0: int) -> Audio:
    """One note of ``inst`` at MIDI pitch ``midi``: ``dur_s`` held plus its release tail, unit velocity.

    ``phase0`` is the oscillator's 32-bit start phase (drawn per note by the caller).
    """
    f0 = _hz(midi)
    n_hold = max(1, int(dur_s * sr))
    n = n_hold + max(1, int(inst.release * sr))
    if inst.kind == "bell":
        wave = _bell_wave(inst, f0, n, sr, phase0)
    elif inst.kind == "fm":
        wave = _fm_wave(inst, f0, n, sr, phase0)
    else:
        wave = _table_wave(inst, f0, n, sr, phase0)
    wave *= _envelope(inst, n_hold, n, sr)
    return wave


def _bell_wave(inst: Instrument, f0: float, n: int, sr: int, phase0: int) -> Audio:
    """Inharmonic partials, each decaying at its own rate (vibraphone, celesta)."""
    nyquist = 0.45 * sr
    wave = np.zeros(n, dtype=np.float32)
    for ratio, amp, decay_scale in _BELLS[inst.spectrum]:
        if f0 * ratio < nyquist:
            wave += _SINE[_phase_index(f0 * ratio, n, sr, phase0)] * (
                decay_curve(n, inst.decay * decay_scale, sr) * np.float32(amp)
            )
    return wave


def _fm_wave(inst: Instrument, f0: float, n: int, sr: int, phase0: int) -> Audio:
    """DX-style electric piano: 1:1 modulator whose index decays (bright attack, mellow tail) + a tine."""
    nyquist = 0.45 * sr
    idx = _phase_index(f0, n, sr, phase0)
    mod = _SINE[idx] * decay_curve(n, 0.35, sr) * np.float32(inst.fm_index * _TABLE_SIZE / (2 * np.pi))
    wave = _SINE[(idx + mod.astype(np.int64)) & _TABLE_MASK]
    if 14 * f0 < nyquist:
        wave += _SINE[_phase_index(14 * f0, n, sr, phase0)] * decay_curve(n, 0.03, sr) * np.float32(0.15)
    return wave


def _table_wave(inst: Instrument, f0: float, n: int, sr: int, phase0: int) -> Audio:
    """Band-limited wavetable oscillator(s): optional detuned unison, vibrato and pluck (bright-to-dark decay)."""
    nyquist = 0.45 * sr
    n_harm = int(min(inst.cutoff_hz, nyquist) / f0)
    table = _wavetable(inst.spectrum, n_harm)
    freqs = (
        [f0]
        if inst.detune_cents <= 0
        else [f0 * 2 ** (-inst.detune_cents / 2400), f0 * 2 ** (inst.detune_cents / 2400)]
    )
    # Unison oscillators start at different phases (and vibrate at slightly different rates).
    phases = [(phase0 + 0x5A5A5A5A * j) & 0xFFFFFFFF for j in range(len(freqs))]
    indices = [
        _vibrato_index(f, n, sr, p, inst.vibrato, 5.0 + 0.4 * j) if inst.vibrato else _phase_index(f, n, sr, p)
        for j, (f, p) in enumerate(zip(freqs, phases))
    ]
    wave = table[indices[0]]
    for idx in indices[1:]:
        wave += table[idx]
    if inst.pluck > 0:
        # Plucked/struck strings: start bright, decay towards the lowest few harmonics.
        dark = _wavetable(inst.spectrum, min(n_harm, 3))
        dark_wave = dark[indices[0]]
        for idx in indices[1:]:
            dark_wave += dark[idx]
        wave -= dark_wave
        wave *= decay_curve(n, inst.pluck, sr)
        wave += dark_wave
    if len(freqs) > 1:
        wave *= np.float32(1.0 / len(freqs))
    return wave


def biquad(kind: str, cutoff_hz: float, sr: int, q: float = 0.7071) -> np.ndarray:
    """RBJ-cookbook low/high-pass second-order section, as an sos row (designing it is ~100x
    cheaper than ``scipy.signal.butter``, which mattered: a clip designs a dozen filters)."""
    w = 2.0 * math.pi * min(cutoff_hz, 0.45 * sr) / sr
    cos_w, alpha = math.cos(w), math.sin(w) / (2.0 * q)
    if kind == "lowpass":
        b = [(1.0 - cos_w) / 2.0, 1.0 - cos_w, (1.0 - cos_w) / 2.0]
    else:
        b = [(1.0 + cos_w) / 2.0, -(1.0 + cos_w), (1.0 + cos_w) / 2.0]
    a = [1.0 + alpha, -2.0 * cos_w, 1.0 - alpha]
    return np.array(b + a) / a[0]


def filtered(x: Audio, *sections: np.ndarray) -> Audio:
    """Run ``x`` through the cascade of second-order sections."""
    return signal.sosfilt(np.vstack(sections), x).astype(np.float32)


def add_at(bus: Audio, start: int, wave: Audio, gain: float) -> None:
    """Mix ``wave * gain`` into ``bus`` at sample ``start``, clipped to the bus."""
    if start < 0:
        wave, start = wave[-start:], 0
    end = min(len(bus), start + len(wave))
    if end > start:
        bus[start:end] += wave[: end - start] * np.float32(gain)


def white_noise(rng: np.random.Generator, n: int) -> Audio:
    """Unit-variance white noise; uniform rather than Gaussian because it is 4x faster to draw
    and sounds the same."""
    noise = rng.random(n, dtype=np.float32)
    noise -= np.float32(0.5)
    noise *= np.float32(math.sqrt(12.0))
    return noise

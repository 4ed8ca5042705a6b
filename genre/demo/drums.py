"""The demo corpus's drum kit (a pitch-swept sine kick, filtered-noise snare, claps, hats and cymbals,
tuned per clip) and drum tracks built from per-bar patterns.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from genre.demo.synthesis import Audio, add_at, biquad, decay_curve, filtered, ramps, white_noise
from genre.demo.theory import Timeline

# A drum hit: (position or seconds, kit piece, velocity).
Hit = tuple[float, str, float]


def drum_kit(rng: np.random.Generator, sr: int) -> dict[str, Audio]:
    """Synthesise one clip's drum samples (tunings and decays drawn per clip)."""

    def noise(seconds: float) -> Audio:
        return white_noise(rng, int(seconds * sr))

    def band(x: Audio, low: float | None, high: float | None) -> Audio:
        sections = ([biquad("highpass", low, sr)] if low else []) + ([biquad("lowpass", high, sr)] if high else [])
        return filtered(x, *sections)

    kit: dict[str, Audio] = {}
    n = int(0.4 * sr)
    t = ramps(n)[1] / np.float32(sr)
    f_end, f_start = rng.uniform(45, 62), rng.uniform(110, 190)
    freq = f_end + (f_start - f_end) * np.exp(-t / rng.uniform(0.02, 0.05))
    kick = np.sin(2 * np.pi * np.cumsum(freq) / sr).astype(np.float32) * decay_curve(n, rng.uniform(0.1, 0.22), sr)
    kick[: int(0.004 * sr)] += band(noise(0.004), 1500.0, None) * np.float32(0.4)  # beater click
    kit["kick"] = kick

    n = int(0.3 * sr)
    body = np.sin(2 * np.pi * rng.uniform(170, 230) * t[:n]).astype(np.float32) * decay_curve(n, 0.05, sr)
    kit["snare"] = 0.5 * body + band(noise(0.3), 1200.0, 9000.0) * decay_curve(n, rng.uniform(0.08, 0.16), sr)
    claps = np.zeros(int(0.25 * sr), dtype=np.float32)
    for k in range(3):  # three hands slightly apart, then the room tail
        burst = band(noise(0.03), 900.0, 3000.0) * decay_curve(int(0.03 * sr), 0.006, sr)
        add_at(claps, int(k * 0.011 * sr), burst, 1.0)
    claps += band(noise(0.25), 900.0, 3000.0) * decay_curve(len(claps), 0.06, sr) * np.float32(0.5)
    kit["clap"] = claps
    kit["hat"] = band(noise(0.08), rng.uniform(6000, 8500), None) * decay_curve(int(0.08 * sr), 0.02, sr)
    kit["open_hat"] = band(noise(0.45), rng.uniform(6000, 8500), None) * decay_curve(int(0.45 * sr), 0.15, sr)
    n = int(1.2 * sr)
    ride = band(noise(1.2), 5000.0, None) * decay_curve(n, 0.35, sr) * np.float32(0.6)
    for ratio in (1.0, 1.47, 1.93):  # a few inharmonic bell partials give the ride its "ping"
        ride += (
            np.sin(2 * np.pi * rng.uniform(2900, 3300) * ratio * ramps(n)[1] / sr).astype(np.float32)
            * decay_curve(n, 0.5, sr)
            * np.float32(0.15)
        )
    kit["ride"] = ride
    n = int(1.8 * sr)
    kit["crash"] = band(noise(1.8), 3500.0, None) * decay_curve(n, 0.6, sr)
    return kit


def drum_track(tl: Timeline, n_bars: int, bar_pattern: Callable[[int], list[Hit]]) -> list[Hit]:
    """Repeat a per-bar drum pattern (positions in beats within the bar) over ``n_bars``, in clip seconds.

    ``bar_pattern`` is called once per bar, in order, so patterns may draw from the clip's generator.
    """
    hits = []
    for bar in range(n_bars):
        for pos, piece, vel in bar_pattern(bar):
            hits.append((tl.seconds(bar * tl.beats_per_bar + pos), piece, vel * tl.rng.uniform(0.85, 1.1)))
    return hits

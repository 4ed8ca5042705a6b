"""The demo corpus's genres: which composer writes each one, and how one clip of a genre is made.

A clip is composed (an :class:`~genre.demo.mixing.Arrangement` drawn from the genre's distributions),
mixed down, noised at a random SNR and peak-normalised, all from one random generator seeded by
``(seed, genre index, clip index)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from genre.demo.classical import compose_classical
from genre.demo.disco import compose_disco
from genre.demo.guitar_band import compose_metal, compose_rock
from genre.demo.mixing import Arrangement, Context, add_noise, mix_down
from genre.demo.swing import compose_blues, compose_jazz

# The order matters: a genre's index is part of its clips' seeds.
DEMO_GENRES: tuple[str, ...] = ("blues", "classical", "disco", "jazz", "metal", "rock")

COMPOSERS: dict[str, Callable[[Context], Arrangement]] = {
    "blues": compose_blues,
    "jazz": compose_jazz,
    "rock": compose_rock,
    "metal": compose_metal,
    "classical": compose_classical,
    "disco": compose_disco,
}


def synthesize_clip(
    genre: str, index: int, *, clip_seconds: float, sample_rate: int, seed: int
) -> npt.NDArray[np.int16]:
    """Render clip ``index`` of ``genre`` as int16 samples, deterministic in (seed, genre, index)."""
    rng = np.random.default_rng([seed, DEMO_GENRES.index(genre), index])
    ctx = Context(rng=rng, sr=sample_rate, n=max(1, round(clip_seconds * sample_rate)), tonic=int(rng.integers(12)))
    arrangement = COMPOSERS[genre](ctx)
    mix = mix_down(arrangement, ctx)
    mix = add_noise(mix, rng, sample_rate, snr_db=rng.uniform(10.0, 40.0))
    peak = float(np.max(np.abs(mix)))
    target = 10.0 ** (rng.uniform(-6.0, -1.0) / 20.0)  # small level change, always below full scale
    mix *= np.float32(target / peak if peak > 0 else 0.0)
    return np.round(mix * 32767.0).astype(np.int16)

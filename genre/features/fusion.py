"""Several frozen representations as one feature: their activations concatenated per patch.

``Fusion(parts=["MTT_musicnn/max_pool", "MSD_musicnn/max_pool"])`` is every part's layer side by side
on the parts' common 3-s patch grid: ``(batch, sum of dims, patches)``. Each part is a frozen pretrained
layer named ``<model>/<layer>`` (the names of :class:`~genre.features.pretrained.Musicnn`); the
feature extractor standardises every dimension on the training split, so each part is standardised on
its own. Frozen, fusion is precomputed; the data layer caches each part on its own (the embedding
cache of that part alone), so a fusion reuses what single-part runs computed and vice versa.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from genre.features.base import PrecomputedTransform
from genre.features.pretrained import Musicnn
from genre.pretrained.weights import MODELS


def build_part(name: str, sample_rate: int, cache: bool) -> Musicnn:
    """The part named ``<model>/<layer>`` (e.g. ``MTT_musicnn/max_pool``), built from genre's own classes."""
    model, _, layer = name.partition("/")
    if model not in MODELS or not layer:
        raise ValueError(
            f"parts: '{name}' is not <model>/<layer> of a pretrained network. Use e.g. MTT_musicnn/max_pool "
            f"(models: {', '.join(MODELS)})"
        )
    try:
        return Musicnn(sample_rate=sample_rate, model=model, layer=layer, cache=cache)
    except ValueError as exc:
        raise ValueError(f"parts: '{name}': {exc}") from exc


class Fusion(nn.Module):
    """Frozen pretrained layers concatenated per patch (see the module doc).

    Args:
        sample_rate: the run's sample rate.
        parts: two or more ``<model>/<layer>`` names, each once; all on one step grid (the pooled layers:
            one step per patch; or the frame layers: 187 per patch).
        cache: each part's activations go to the embedding cache (false: computed in memory every run).
    """

    # Always a fixed function of the audio: the run computes it once per clip.
    precomputed = True

    def __init__(self, sample_rate: int, parts: list[str], cache: bool = True) -> None:
        super().__init__()
        names = [str(name) for name in parts]
        if len(names) < 2:
            raise ValueError(
                f"parts: fusion needs two or more parts, got {names}. Use e.g. "
                "[MTT_musicnn/max_pool,MSD_musicnn/max_pool]"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"parts: {names} names a part twice. Name each part once")
        self.names = names
        self.parts = nn.ModuleList([build_part(name, sample_rate, cache) for name in names])
        grids = {part.steps_per_patch for part in self.components}
        if len(grids) != 1:
            raise ValueError(
                f"parts: {names} mixes pooled layers (one step per patch) with frame layers (187 per patch). "
                "Fuse layers of one kind"
            )
        self.steps_per_patch = grids.pop()
        self.part_bands = tuple(part.n_bands for part in self.components)
        self.n_bands = sum(self.part_bands)
        self.cache = bool(cache)
        self.patch_seconds = self.components[0].patch_seconds

    @property
    def components(self) -> list[PrecomputedTransform]:
        """The parts, in order, each a precomputed transform of its own (cached on its own)."""
        return [cast(PrecomputedTransform, part) for part in self.parts]

    def identity(self) -> dict[str, object]:
        """Every part's identity, in order."""
        return {"fusion": [part.identity() for part in self.components]}

    def steps_in(self, samples: int) -> int:
        """Steps of the fused activations: the fewest of any part (the grids agree up to a rounding)."""
        return min(part.steps_in(samples) for part in self.components)

    def embed(self, waveform: Tensor) -> Tensor:
        """``(batch, samples)`` -> ``(batch, n_bands, steps)``: every part's activations, concatenated."""
        outputs = [part.embed(waveform) for part in self.components]
        steps = min(out.shape[-1] for out in outputs)
        return torch.cat([out[..., :steps] for out in outputs], dim=1)

    def forward(self, waveform: Tensor) -> Tensor:
        """Float waveforms ``(batch, samples)`` -> the fused activations (:meth:`embed`)."""
        return self.embed(waveform)

"""Several frozen representations as one feature: their activations concatenated per step.

``Fusion(parts=["MTT_musicnn/max_pool", "MSD_musicnn/max_pool"])`` is every part's layer side by side
on the parts' common 3-s patch grid: ``(batch, sum of dims, patches)``. Each part is a frozen pretrained
layer named ``<model>/<layer>`` (the names of :class:`~genre.features.pretrained.Musicnn`),
``note_stats`` (:class:`~genre.features.note_statistics.NoteStatistics` with its defaults), or hand-made
statistics, ``mfcc_stats`` or ``chroma_stats`` (:class:`~genre.features.frame_statistics.FrameStatistics`:
each band's mean and deviation per 3-s patch); the
feature extractor standardises every dimension on the training split, so each part is standardised on
its own. Frozen, fusion is precomputed; the data layer caches each part on its own (the embedding
cache of that part alone), so a fusion reuses what single-part runs computed and vice versa.

The steps follow the first part. A part on a coarser grid (note statistics: one step per ~8.2 s
against musicnn's 3-s patches) gives each step the step of its own around the same time (the one
holding the step's centre, the last where it ends earlier), so the statistics of a stretch of notes sit
beside each 3-s patch inside it; pooled over a clip, each part still describes the whole clip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import torch
from torch import Tensor, nn

from genre.features.base import PrecomputedTransform
from genre.features.frame_statistics import FrameStatistics
from genre.features.note_statistics import NoteStatistics
from genre.features.pretrained import Musicnn
from genre.pretrained.weights import MODELS

# The part name of the note statistics (feature=note_stats with its defaults).
NOTE_STATS = "note_stats"
# The part names of hand-made statistics: part name -> the frame feature summarised.
FRAME_STATS = {"mfcc_stats": "mfcc", "chroma_stats": "chroma"}
Part = Musicnn | NoteStatistics | FrameStatistics


def build_part(name: str, sample_rate: int, cache: bool) -> Part:
    """The part named ``<model>/<layer>`` (e.g. ``MTT_musicnn/max_pool``), ``note_stats``, ``mfcc_stats`` or
    ``chroma_stats``, built from genre's own classes."""
    if name == NOTE_STATS:
        return NoteStatistics(sample_rate=sample_rate, cache=cache)
    if name in FRAME_STATS:
        return FrameStatistics(sample_rate=sample_rate, feature=FRAME_STATS[name], cache=cache)
    model, _, layer = name.partition("/")
    if model not in MODELS or not layer:
        raise ValueError(
            f"parts: '{name}' is not <model>/<layer> of a pretrained network, {NOTE_STATS} or "
            f"{' or '.join(FRAME_STATS)}. Use e.g. MTT_musicnn/max_pool (models: {', '.join(MODELS)})"
        )
    try:
        return Musicnn(sample_rate=sample_rate, model=model, layer=layer, cache=cache)
    except ValueError as exc:
        raise ValueError(f"parts: '{name}': {exc}") from exc


class Fusion(nn.Module):
    """Frozen pretrained layers concatenated per patch (see the module doc).

    Args:
        sample_rate: the run's sample rate.
        parts: two or more ``<model>/<layer>`` names, ``note_stats``, ``mfcc_stats`` or ``chroma_stats``,
            each once; all pooled (one step per patch) or all musicnn frame layers (187 per patch).
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
        # Every segment must hold a whole patch of every part.
        self.patch_seconds = max(part.patch_seconds for part in self.components)
        self.step_seconds = tuple(float(cast(Part, part).step_seconds) for part in self.parts)

    @property
    def components(self) -> list[PrecomputedTransform]:
        """The parts, in order, each a precomputed transform of its own (cached on its own)."""
        return [cast(PrecomputedTransform, part) for part in self.parts]

    def identity(self) -> dict[str, object]:
        """Every part's identity, in order."""
        return {"fusion": [part.identity() for part in self.components]}

    def steps_in(self, samples: int) -> int:
        """Steps of the fused activations: the first part's grid (0 unless every part has a whole patch)."""
        return self._steps([part.steps_in(samples) for part in self.components])

    def _steps(self, part_steps: Sequence[int]) -> int:
        """The fused steps of parts with ``part_steps`` steps: the fewest on the first part's grid (those
        grids agree up to a rounding); 0 when a part has none."""
        if min(part_steps) < 1:
            return 0
        return min(n for n, step in zip(part_steps, self.step_seconds, strict=True) if step == self.step_seconds[0])

    def step_maps(self, part_steps: Sequence[int]) -> list[np.ndarray | None]:
        """For parts of ``part_steps`` steps, each part's step for every fused step: ``None`` for a part on
        the first part's grid (its first steps), else the index of its step holding the fused step's
        centre (its last step past its end)."""
        steps, first = self._steps(part_steps), self.step_seconds[0]
        centres = (np.arange(steps) + 0.5) * first
        return [
            None if step == first else np.minimum((centres // step).astype(np.int64), count - 1)
            for count, step in zip(part_steps, self.step_seconds, strict=True)
        ]

    def embed(self, waveform: Tensor) -> Tensor:
        """``(batch, samples)`` -> ``(batch, n_bands, steps)``: every part's activations, on the first
        part's steps, concatenated."""
        outputs = [part.embed(waveform) for part in self.components]
        counts = [out.shape[-1] for out in outputs]
        maps, steps = self.step_maps(counts), self._steps(counts)
        aligned = [
            out[..., :steps] if index is None else out[..., torch.as_tensor(index, device=out.device)]
            for out, index in zip(outputs, maps, strict=True)
        ]
        return torch.cat(aligned, dim=1)

    def forward(self, waveform: Tensor) -> Tensor:
        """Float waveforms ``(batch, samples)`` -> the fused activations (:meth:`embed`)."""
        return self.embed(waveform)

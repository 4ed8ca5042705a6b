"""Cutting clips into consecutive segments and turning segment logits into clip-level decisions.

Training sees random ``segment_seconds`` crops; evaluation and prediction cut every clip into
consecutive segments of the same length, score each one, and aggregate the segment logits per clip
(how the strong GTZAN/FMA results in the literature are obtained).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

# mean: average the segment logits; vote: majority of the segment predictions; none: no aggregation,
# every segment is scored as an example of its own (clip metrics then equal segment metrics).
AGGREGATES: tuple[str, ...] = ("mean", "vote", "none")


def split_segments(audio: Tensor, segment_samples: int) -> Tensor:
    """``(batch, samples)`` -> ``(batch, n_segments, segment_samples)``: consecutive, non-overlapping.

    A trailing remainder shorter than a segment is dropped (a 30-s clip in 4-s segments gives 7
    segments): a zero-padded partial segment would be scored as if it were music. Precomputed
    activations ``(batch, dims, steps)`` are cut the same way along their last (time) axis, into
    ``(batch, n_segments, dims, segment_samples)``.
    """
    if audio.dim() not in (2, 3):
        raise ValueError(f"audio must be (batch, samples), got {tuple(audio.shape)}")
    n_segments = audio.shape[-1] // segment_samples
    if n_segments < 1:
        raise ValueError(f"clips of {audio.shape[-1]} samples are shorter than one segment ({segment_samples})")
    cut = audio[..., : n_segments * segment_samples].unflatten(-1, (n_segments, segment_samples))
    return cut.movedim(-2, 1)


def vote_counts(logits: Tensor) -> Tensor:
    """``(clips, segments, classes)`` logits -> ``(clips, classes)`` number of segments predicting each class."""
    return F.one_hot(logits.argmax(dim=-1), logits.shape[-1]).sum(dim=1).to(logits.dtype)


def clip_scores(logits: Tensor, aggregate: str) -> Tensor:
    """Per-clip class scores whose argmax is the clip's prediction (``mean`` or ``vote``).

    For ``vote``, ties between equally voted classes go to the larger mean logit: the tie-break adds
    a softmax (< 1 in total), which can never outweigh a difference of one vote.
    """
    mean = logits.mean(dim=1)
    if aggregate == "mean":
        return mean
    if aggregate == "vote":
        return vote_counts(logits) + 0.5 * mean.softmax(dim=-1)
    raise ValueError(f"aggregate must be mean or vote here, got {aggregate!r}")


def clip_probabilities(logits: Tensor, aggregate: str) -> Tensor:
    """Per-clip class probabilities: softmax of the mean logits (``mean``) or vote shares (``vote``)."""
    if aggregate == "vote":
        return vote_counts(logits) / logits.shape[1]
    return logits.mean(dim=1).softmax(dim=-1)

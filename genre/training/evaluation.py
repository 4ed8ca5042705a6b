"""Evaluation on whole clips: segment logits, clip-level aggregation and the metrics of both levels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from genre.training.device import Precision
from genre.training.loaders import batch_on_device
from genre.training.segments import clip_probabilities, clip_scores, split_segments


@dataclass
class EvalResult:
    """Clip-level and segment-level loss and accuracy of one split, and the predictions behind them.

    ``loss``/``acc`` are clip-level (the numbers to compare with papers and between runs): the loss is
    the cross-entropy of the mean segment logits. ``targets``/``predictions``/``probabilities`` are per
    clip in the split's order, or, when the aggregate is ``none``, per segment (clip-major,
    ``rows_per_clip`` rows per clip). ``probabilities`` are ``(rows, classes)``: the softmax of
    the mean logits (``mean``), the share of segments voting each class (``vote``), or each segment's
    softmax (``none``).
    """

    loss: float
    acc: float
    segment_loss: float
    segment_acc: float
    targets: np.ndarray
    predictions: np.ndarray
    probabilities: np.ndarray | None = None
    # 1 for clip-level results; with aggregate none, the number of segments (rows) per clip.
    rows_per_clip: int = 1

    def metrics(self, split: str) -> dict[str, float]:
        """The four numbers under ``<split>/acc``, ``<split>/loss``, ``<split>/segment_acc`` and
        ``<split>/segment_loss``."""
        return {
            f"{split}/loss": self.loss,
            f"{split}/acc": self.acc,
            f"{split}/segment_loss": self.segment_loss,
            f"{split}/segment_acc": self.segment_acc,
        }


@torch.no_grad()
def segment_logits(
    model: nn.Module,
    features: Callable[[Tensor], Tensor],
    loader: DataLoader,
    *,
    device: torch.device,
    precision: Precision,
    segment_samples: int,
    precomputed: bool = False,
    progress: bool = False,
    desc: str = "eval",
) -> tuple[Tensor, Tensor]:
    """Logits ``(clips, segments, classes)`` (float32, CPU) and targets ``(clips,)`` of every clip in ``loader``.

    Each batch of whole clips becomes one batch of segments, so features are computed per segment
    exactly as in training (a crop's features never see audio outside the crop). With ``precomputed``
    the clips are a feature transform's activations, cut into segments of ``segment_samples`` steps,
    and ``features`` are the extractor's stages after its transform.
    """
    model.eval()
    all_logits: list[Tensor] = []
    all_targets: list[Tensor] = []
    for batch, targets in tqdm(loader, desc=desc, leave=False, disable=not progress, unit="batch"):
        segments = split_segments(batch_on_device(batch, device, precomputed=precomputed), segment_samples)
        clips, n_segments = segments.shape[:2]
        inputs = features(segments.flatten(0, 1))
        with precision.autocast():
            logits = model(inputs).float()
        all_logits.append(logits.reshape(clips, n_segments, -1).cpu())
        all_targets.append(targets)
    if not all_logits:  # a rank whose shard is empty (fewer clips than processes)
        return torch.empty(0, 0, 0), torch.empty(0, dtype=torch.long)
    return torch.cat(all_logits), torch.cat(all_targets)


def summarize(logits: Tensor, targets: Tensor, aggregate: str) -> EvalResult:
    """Clip- and segment-level metrics of ``(clips, segments, classes)`` logits with ``(clips,)`` targets."""
    clips, n_segments, n_classes = logits.shape
    flat = logits.reshape(clips * n_segments, n_classes)
    flat_targets = targets.repeat_interleave(n_segments)
    segment_predictions = flat.argmax(dim=1)
    segment_loss = F.cross_entropy(flat, flat_targets).item()
    segment_acc = (segment_predictions == flat_targets).double().mean().item()
    if aggregate == "none":
        return EvalResult(
            loss=segment_loss,
            acc=segment_acc,
            segment_loss=segment_loss,
            segment_acc=segment_acc,
            targets=flat_targets.numpy(),
            predictions=segment_predictions.numpy(),
            probabilities=flat.softmax(dim=-1).numpy(),
            rows_per_clip=n_segments,
        )
    predictions = clip_scores(logits, aggregate).argmax(dim=1)
    return EvalResult(
        loss=F.cross_entropy(logits.mean(dim=1), targets).item(),
        acc=(predictions == targets).double().mean().item(),
        segment_loss=segment_loss,
        segment_acc=segment_acc,
        targets=targets.numpy(),
        predictions=predictions.numpy(),
        probabilities=clip_probabilities(logits, aggregate).numpy(),
    )

"""The training-time feature pipeline: transform -> log compression -> per-band standardisation."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from genre.features.base import PrecomputedTransform, check_positive, check_top_db

LOG_MODES = ("db", "log1p", "none")

# Power floor before the logarithm, as in librosa.power_to_db / torchaudio.amplitude_to_DB.
_AMIN = 1e-10


def power_to_db(power: Tensor, top_db: float | None = 80.0) -> Tensor:
    """``10 * log10(max(power, 1e-10))`` of a ``(batch, bands, frames)`` tensor.

    With ``top_db``, each item is clamped to at least its OWN maximum minus ``top_db``, so an
    item's result never depends on the rest of the batch (unlike torchaudio's
    ``amplitude_to_DB``, whose reference max spans the last three dims).
    """
    db = 10.0 * torch.log10(torch.clamp(power, min=_AMIN))
    if top_db is not None:
        floor = db.amax(dim=(-2, -1), keepdim=True) - top_db
        db = torch.maximum(db, floor)
    return db


def _scale_of(variance: Tensor, mean: Tensor, count: int, eps: float) -> Tensor:
    """Per-band std for standardisation: 1 where the band is constant (as scikit-learn's
    ``StandardScaler`` treats zero-variance features), else the std floored at ``eps``.

    "Constant" is scikit-learn's bound on the rounding error of a float64 variance over ``count``
    values: a band whose only variance is rounding is not scaled up by its reciprocal.
    """
    precision = torch.finfo(torch.float64).eps
    rounding = count * precision * variance + (count * mean.abs() * precision).square()
    return torch.where(variance <= rounding, torch.ones_like(variance), variance.sqrt().clamp(min=eps))


class FeatureExtractor(nn.Module):
    mean: Tensor  # buffers, declared for type checkers
    std: Tensor
    fitted: Tensor

    """Feature pipeline used by training: ``transform`` -> log compression -> standardisation.

    Args:
        transform: module mapping ``(batch, samples)`` to ``(batch, bands, frames)``, with an
            int attribute ``n_bands``. One that declares ``precomputed = True`` (a frozen pretrained
            network, see :class:`~genre.features.base.PrecomputedTransform`) is computed once per clip
            by the run's data layer; training then feeds its activations to :meth:`forward_transformed`.
        log: ``"db"`` (10·log10 with a per-item ``top_db`` clamp), ``"log1p"`` or ``"none"``.
        top_db: dynamic range kept by ``"db"``; None disables the clamp. Ignored otherwise.
        standardize: subtract the per-band mean and divide by the per-band std fitted with
            :meth:`fit_normalization`. The statistics are buffers (``mean``, ``std`` of shape
            ``(bands, 1)`` and bool ``fitted``), so they travel with ``state_dict()``.
        eps: lower bound on the std of a band that varies on the training frames. A band that is
            constant there (its variance zero up to float64 rounding, scikit-learn's test in
            ``StandardScaler``) is centred but not scaled (std 1): a unit that never fires on the
            training clips and fires on a test clip then moves the features by its own value, not by
            that value over ``eps`` (a huge logit).
    """

    def __init__(
        self,
        transform: nn.Module,
        log: str = "db",
        top_db: float | None = 80.0,
        standardize: bool = True,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if log not in LOG_MODES:
            raise ValueError(f"log: {log!r} is not one of {', '.join(LOG_MODES)}. Use db")
        check_top_db(top_db)
        check_positive("eps", eps)
        n_bands = getattr(transform, "n_bands", None)
        if not isinstance(n_bands, int) or n_bands < 1:
            raise ValueError(
                f"transform: its n_bands is {n_bands!r}, not a positive int. Use a feature module from genre.features"
            )
        if getattr(transform, "precomputed", False) is True and not isinstance(transform, PrecomputedTransform):
            raise ValueError(
                f"transform: {type(transform).__name__} declares precomputed=True but lacks what a precomputed "
                "feature provides (embed, identity, steps_in, steps_per_patch, patch_seconds, cache)"
            )
        self.transform = transform
        self.log = log
        self.top_db = top_db
        self.standardize = standardize
        self.eps = eps
        self.n_bands = n_bands
        self.register_buffer("mean", torch.zeros(n_bands, 1))
        self.register_buffer("std", torch.ones(n_bands, 1))
        self.register_buffer("fitted", torch.tensor(False))
        # Host-side mirror of `fitted`: reading the buffer in forward would force a device
        # sync every training step. Kept in step by fit_normalization and load_state_dict.
        self._is_fitted = False
        self.register_load_state_dict_post_hook(FeatureExtractor._mirror_fitted)

    @staticmethod
    def _mirror_fitted(module: nn.Module, incompatible_keys: object) -> None:
        """Refresh the host-side fitted flag after ``load_state_dict``."""
        assert isinstance(module, FeatureExtractor)
        module._is_fitted = bool(module.fitted)

    @property
    def precomputed_transform(self) -> PrecomputedTransform | None:
        """The transform when it declares itself precomputed (a run computes it once per clip), else None."""
        transform = self.transform
        return transform if isinstance(transform, PrecomputedTransform) and transform.precomputed is True else None

    def compress(self, waveform: Tensor) -> Tensor:
        """Transform and log-compress a waveform batch, without standardisation (float32)."""
        with torch.autocast(device_type=waveform.device.type, enabled=False):
            return self._log(self.transform(waveform.to(torch.float32)))

    def _log(self, features: Tensor) -> Tensor:
        """Log-compress the transform's output (called with autocast disabled)."""
        if self.log == "db":
            return power_to_db(features, self.top_db)
        if self.log == "log1p":
            return torch.log1p(features)
        return features

    @torch.no_grad()
    def fit_normalization(self, batches: Iterable[Tensor], *, transformed: bool = False) -> None:
        """Fit the per-band mean and std over all frames of the given waveform batches (with
        ``transformed``: batches of the transform's output, a precomputed feature's activations).

        Pass the training split only. Statistics are merged batch by batch in float64
        (Chan et al.'s parallel mean/variance update), so any number of batches fits in
        constant memory without the cancellation of a naive sum-of-squares.

        Raises:
            ValueError: if the batches hold no frames.
        """
        count = 0
        mean = torch.zeros(self.n_bands, 1, dtype=torch.float64, device=self.mean.device)
        m2 = torch.zeros_like(mean)  # sum of squared deviations from the running mean
        for batch in batches:
            batch = batch.to(self.mean.device)
            features = (self._compress_transformed(batch) if transformed else self.compress(batch)).to(torch.float64)
            # (batch, bands, frames) -> (bands, batch * frames)
            values = features.transpose(0, 1).reshape(self.n_bands, -1)
            n = values.shape[1]
            if n == 0:
                continue
            batch_mean = values.mean(dim=1, keepdim=True)
            batch_m2 = (values - batch_mean).square().sum(dim=1, keepdim=True)
            total = count + n
            delta = batch_mean - mean
            mean += delta * (n / total)
            m2 += batch_m2 + delta.square() * (count * n / total)
            count = total
        if count == 0:
            raise ValueError("fit_normalization got no frames: batches is empty")
        self.mean.copy_(mean)
        self.std.copy_(_scale_of(m2 / count, mean, count, self.eps))
        self.fitted.fill_(True)
        self._is_fitted = True

    def forward(self, waveform: Tensor) -> Tensor:
        """Features ``(batch, n_bands, frames)`` of a ``(batch, samples)`` waveform batch.

        Raises:
            RuntimeError: if ``standardize`` is on and :meth:`fit_normalization` never ran
                (nor were fitted statistics loaded from a state dict).
        """
        self._check_fitted()
        return self._standardized(self.compress(waveform))

    def forward_transformed(self, transformed: Tensor) -> Tensor:
        """Features ``(batch, n_bands, frames)`` of the transform's output (a precomputed feature's
        activations): the log compression and standardisation :meth:`forward` applies after the transform.

        Raises:
            RuntimeError: as :meth:`forward`.
        """
        self._check_fitted()
        return self._standardized(self._compress_transformed(transformed))

    def _compress_transformed(self, transformed: Tensor) -> Tensor:
        """Log-compress the transform's output (float32)."""
        with torch.autocast(device_type=transformed.device.type, enabled=False):
            return self._log(transformed.to(torch.float32))

    def _check_fitted(self) -> None:
        if self.standardize and not self._is_fitted:
            raise RuntimeError(
                "FeatureExtractor(standardize=True) is not fitted: call "
                "fit_normalization() on the training split, or load a fitted state_dict"
            )

    def _standardized(self, features: Tensor) -> Tensor:
        if not self.standardize:
            return features
        with torch.autocast(device_type=features.device.type, enabled=False):
            return (features - self.mean) / self.std

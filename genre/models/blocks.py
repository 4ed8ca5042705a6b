"""Building blocks shared by several models: conv blocks, residual blocks and safe pooling.

Pooling here is "capped": a pool factor larger than the remaining size shrinks that dimension
to exactly 1 instead of failing, and ``ceil_mode`` keeps a trailing partial window, so 12 chroma
bands or a 16-frame crop pass through stacks designed for 128 x 1292 inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "elu": nn.ELU}


def activation(name: str) -> nn.Module:
    """Return a fresh activation module by name (``relu`` or ``elu``)."""
    try:
        # In place: every caller applies it to a fresh tensor nobody else reads.
        return _ACTIVATIONS[name](inplace=True)
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(_ACTIVATIONS)}") from None


def _same(kernel: tuple[int, int]) -> tuple[int, int]:
    """Padding that keeps the size for odd kernels (stride 1)."""
    return kernel[0] // 2, kernel[1] // 2


def capped_max_pool2d(x: torch.Tensor, kernel: tuple[int, int]) -> torch.Tensor:
    """Max-pool ``(B, C, H, W)`` by ``kernel`` (= stride), never reducing H or W below 1."""
    kh, kw = min(kernel[0], x.shape[-2]), min(kernel[1], x.shape[-1])
    if kh == 1 and kw == 1:
        return x
    return F.max_pool2d(x, (kh, kw), ceil_mode=True)


def capped_max_pool1d(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """Max-pool ``(B, C, T)`` by ``kernel`` (= stride), never reducing T below 1."""
    k = min(kernel, x.shape[-1])
    if k == 1:
        return x
    return F.max_pool1d(x, k, ceil_mode=True)


def global_mean_max(x: torch.Tensor) -> torch.Tensor:
    """Pool ``(B, C, ...)`` over every axis after C into ``(B, 2C)``: [mean, max].

    Mean summarises texture over the whole clip; max keeps short salient events that the mean
    would dilute (a snare hit, a vocal onset).
    """
    flat = x.flatten(2)
    return torch.cat([flat.mean(dim=-1), flat.amax(dim=-1)], dim=1)


def mlp_head(in_features: int, hidden: int, n_classes: int, dropout: float) -> nn.Sequential:
    """Two-layer classifier head: Linear -> ReLU -> Dropout -> Linear (logits)."""
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, n_classes),
    )


class ConvBlock2d(nn.Module):
    """Conv2d 3x3 -> BatchNorm -> activation -> capped MaxPool -> optional dropout.

    The activation is applied after the pool: for monotonic ReLU/ELU, act(max(x)) == max(act(x))
    exactly (values and gradients), and it costs a quarter as much on the full-resolution first
    block. ``pool=None`` leaves pooling to the caller (FCN chooses its pool sizes per input), and
    the activation then runs before the caller's pooling — same result.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        pool: tuple[int, int] | None = (2, 2),
        act: str = "relu",
        dropout: float = 0.0,
        kernel: tuple[int, int] = (3, 3),
    ) -> None:
        super().__init__()
        # No conv bias: the BatchNorm shift that follows makes it redundant.
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=kernel, padding=_same(kernel), bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = activation(act)
        self.pool = pool
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``(B, C_in, H, W)``."""
        x = self.bn(self.conv(x))
        if self.pool is not None:
            x = capped_max_pool2d(x, self.pool)
        return self.drop(self.act(x))


class ResBlock2d(nn.Module):
    """Residual basic block: (3x3 conv -> BN -> ReLU -> 3x3 conv -> BN) + shortcut -> ReLU.

    He et al. 2016 ("Deep residual learning for image recognition") project the shortcut with a
    1x1 conv; Won et al. 2020's Res-2D block uses a 3x3 one — ``shortcut_kernel`` picks. The
    projection is used only when stride or channel count changes the shape. A stride-2 3x3 conv
    with padding 1 maps size n to ceil(n/2), so it never reduces a dimension below 1.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        shortcut_kernel: int = 1,
        kernel: tuple[int, int] = (3, 3),
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=_same(kernel), bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel, padding=_same(kernel), bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        # A one-row (frequency-as-channel) block keeps its shortcut one row high too.
        short = (min(shortcut_kernel, kernel[0]), shortcut_kernel)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, short, stride=stride, padding=_same(short), bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``(B, C_in, H, W)``."""
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)

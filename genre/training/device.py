"""Device selection and mixed-precision policy."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch


def resolve_device(spec: str) -> torch.device:
    """``auto`` picks CUDA when available, else CPU; anything else must name an available device."""
    spec = str(spec).strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise ValueError(f"device: '{spec}' is not a device. Use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: '{spec}' asked for but CUDA is not available. Use auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device: '{spec}' does not exist ({torch.cuda.device_count()} GPU(s)). "
                "Pick an index below the GPU count"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device: MPS is not available. Use auto or cpu")
    return device


@dataclass(frozen=True)
class Precision:
    """The autocast dtype of a run (None: full fp32) and whether losses need a GradScaler."""

    device_type: str
    dtype: torch.dtype | None

    @property
    def needs_scaler(self) -> bool:
        """fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none."""
        return self.dtype == torch.float16

    def autocast(self) -> AbstractContextManager:
        """The context to run the model's forward pass (and loss) in."""
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def __str__(self) -> str:
        return "fp32" if self.dtype is None else f"mixed {str(self.dtype).removeprefix('torch.')}"


def resolve_precision(spec: str | int, device: torch.device) -> Precision:
    """``auto``: bf16 autocast on CUDA where supported, else fp16 (with a scaler); fp32 off CUDA."""
    spec = str(spec).strip().lower()
    if spec in ("32", "fp32", "32-true"):
        return Precision(device.type, None)
    if spec == "auto":
        if device.type != "cuda":
            return Precision(device.type, None)
        return Precision("cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    if spec in ("bf16", "bf16-mixed"):
        return Precision(device.type, torch.bfloat16)
    if spec in ("16", "fp16", "16-mixed"):
        if device.type != "cuda":
            raise ValueError("precision: fp16 mixed precision needs CUDA. Use auto, 32 or bf16")
        return Precision(device.type, torch.float16)
    raise ValueError(f"precision: '{spec}' is not a precision. Use auto, 32, bf16 or 16")

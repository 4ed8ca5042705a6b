"""Skip marks for tests that need CUDA GPUs."""

from __future__ import annotations

import pytest
import torch


def needs_gpus(count: int = 1) -> pytest.MarkDecorator:
    """A mark that skips the test unless at least ``count`` CUDA GPUs are visible."""
    if count == 1:
        return pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
    return pytest.mark.skipif(torch.cuda.device_count() < count, reason=f"needs {count} CUDA GPUs")

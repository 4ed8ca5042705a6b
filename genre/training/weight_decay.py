"""Parameter groups that keep weight decay off biases and normalisation parameters."""

from __future__ import annotations

from typing import Any

from torch import nn


def decay_groups(model: nn.Module) -> list[dict[str, Any]]:
    """Two optimizer parameter groups: weights that decay, and biases and norm scales/shifts that don't.

    Decaying a bias or a BatchNorm scale does not regularise the function a network computes (the
    next BatchNorm undoes any scale), it only drags those values towards 0 (Goyal et al. 2017, "bag
    of tricks"). Every parameter with at most one dimension is a bias or a norm parameter in our
    models; conv, linear and recurrent weight matrices have two or more. The decay group takes the
    optimizer's ``weight_decay``; the other group sets it to 0.
    """
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    groups: list[dict[str, Any]] = [{"params": decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups

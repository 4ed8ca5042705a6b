"""Optimizer parameter groups: weight decay kept off biases and normalisation parameters, and a fine-tuned
network's own learning rate."""

from __future__ import annotations

from typing import Any

from torch import nn

from genre.training.finetuned import FineTuned


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


def optimizer_groups(model: nn.Module, backbone_lr: float) -> list[dict[str, Any]]:
    """The optimizer's parameter groups of ``model``: :func:`decay_groups`, and for a fine-tuned model
    (:class:`~genre.training.finetuned.FineTuned`) its network's in groups of their own at ``backbone_lr``, tagged
    ``backbone: True`` (the unfreezing schedule finds them by the tag)."""
    if not isinstance(model, FineTuned):
        return decay_groups(model)
    network = [{**group, "lr": backbone_lr, "backbone": True} for group in decay_groups(model.backbone)]
    return decay_groups(model.head) + [group for group in network if group["params"]]

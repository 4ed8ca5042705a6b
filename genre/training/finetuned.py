"""A pretrained network fine-tuned with a head: the model a run trains when its feature is trainable."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from genre.features.extractor import FeatureExtractor


@runtime_checkable
class Backbone(Protocol):
    """A feature transform whose network can train (``trainable``): :class:`genre.features.Musicnn`."""

    trainable: bool
    n_bands: int

    def activations(self, log_mel: Tensor) -> Tensor:
        """The network's layer ``(batch, n_bands, steps)`` of the front end's output."""
        ...

    def front_end(self) -> nn.Module:
        """The fixed part in front of the network, as a feature module (``n_bands`` attribute)."""
        ...


class FineTuned(nn.Module):
    """Front-end output -> the pretrained network's layer -> its standardisation -> ``head``.

    The network is ``features.transform`` (a trainable :class:`Backbone`); ``features`` standardises its
    layer with statistics fitted once on the training split by the pretrained network
    (:meth:`fit_normalization`: the same statistics a frozen probe would use), so that fine-tuning starts
    from the probe's inputs. ``head`` is any model of the zoo.

    :meth:`freeze_backbone` runs the network without gradients and with its pretrained batch-norm
    statistics (the head epochs of "linear probe, then fine-tune", Kumar et al. 2022).

    Args:
        features: the configured feature extractor, its transform trainable.
        head: the classifier reading ``(batch, n_bands, steps)``.
    """

    def __init__(self, features: FeatureExtractor, head: nn.Module) -> None:
        super().__init__()
        transform = features.transform
        if not isinstance(transform, Backbone) or transform.trainable is not True:
            raise ValueError(
                f"features: {type(transform).__name__} is not a trainable pretrained network. Use "
                "feature=musicnn feature.transform.trainable=true"
            )
        if getattr(head, "closed_form", False) is True:
            raise ValueError(
                "head: a closed-form probe is solved on frozen features, not trained by gradient with a "
                "network. Use model=linear or model=mlp, or feature.transform.trainable=false"
            )
        self.features = features
        self.head = head
        self.backbone_frozen = False

    @property
    def backbone(self) -> nn.Module:
        """The pretrained network being fine-tuned (the feature's transform)."""
        return self.features.transform

    def freeze_backbone(self, frozen: bool) -> None:
        """Run the network without gradients and in eval mode (``frozen``), or train it with the head."""
        self.backbone_frozen = bool(frozen)
        self.train(self.training)

    def train(self, mode: bool = True) -> FineTuned:
        """Set training mode; a frozen backbone stays in eval mode (its pretrained statistics)."""
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.train(False)
        return self

    @torch.no_grad()
    def fit_normalization(self, inputs: Iterable[Tensor]) -> None:
        """Fit the layer's standardisation on front-end outputs of the training clips (pretrained network)."""
        network = self.features.transform
        assert isinstance(network, Backbone)
        was_training = self.training
        self.eval()
        self.features.fit_normalization((network.activations(x) for x in inputs), transformed=True)
        self.train(was_training)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(batch, n_classes)`` of front-end outputs ``x`` (musicnn: log-mel ``(batch, 96, frames)``)."""
        network = self.features.transform
        assert isinstance(network, Backbone)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.backbone_frozen):
            activations = network.activations(x)
        return self.head(self.features.forward_transformed(activations))

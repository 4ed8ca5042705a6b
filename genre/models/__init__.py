"""Model zoo: every model maps features ``(batch, bands, frames)`` to logits ``(batch, n_classes)``.

Each is built as ``Model(n_bands, n_classes, **hyperparameters)``; Hydra configs for them live in
``genre/conf/model/`` and are instantiated with ``n_bands``/``n_classes`` supplied by the training code.
"""

from genre.models.base import GenreModel
from genre.models.cnn import CNN
from genre.models.cnn1d import CNN1D
from genre.models.crnn import CRNN
from genre.models.fcn import FCN
from genre.models.late_fusion import LateFusionProbe
from genre.models.linear import LinearBaseline
from genre.models.mlp import MLP
from genre.models.probe import ClosedFormProbe
from genre.models.resnet import ResNet
from genre.models.shortchunk import ShortChunkCNN

__all__ = [
    "CNN",
    "CNN1D",
    "CRNN",
    "FCN",
    "MLP",
    "ClosedFormProbe",
    "GenreModel",
    "LateFusionProbe",
    "LinearBaseline",
    "ResNet",
    "ShortChunkCNN",
]

"""Training-time augmentation, applied on the run's device inside the training step (never in evaluation).

Each augmentation works at one stage of the step: on the waveform batch (:class:`RandomGain`, and
:class:`PitchShift`, :class:`RandomSpeed`, :class:`RandomFilter`, :class:`ColoredNoise`,
:class:`PolarityInversion` from torch-audiomentations and julius), on the
feature batch (:class:`SpecAugment`) or on features and targets together (:class:`Mixup`).
:class:`Augmentations` runs a composed set in that order around the feature extractor. Configs live in
``genre/conf/augment/``; several compose as ``augment=[specaugment,mixup]``.
"""

from genre.augment.gain import RandomGain
from genre.augment.masking import SpecAugment
from genre.augment.mixup import Mixup
from genre.augment.pipeline import Augmentation, Augmentations
from genre.augment.waveform import ColoredNoise, PitchShift, PolarityInversion, RandomFilter, RandomSpeed

__all__ = [
    "Augmentation",
    "Augmentations",
    "ColoredNoise",
    "Mixup",
    "PitchShift",
    "PolarityInversion",
    "RandomFilter",
    "RandomGain",
    "RandomSpeed",
    "SpecAugment",
]

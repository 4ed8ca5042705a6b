"""How long a training crop is unless set: it follows the model.

``trainer.segment_seconds`` defaults to the ``genre.segment_seconds`` config resolver's answer for the
run's ``model._target_``: a model trained by gradient sees short random crops (the number the trainer
config gives), a model solved in closed form (``closed_form = True``: ``model=logreg``, ``linear_svm``,
``late_fusion``) sees each clip whole, which is the pooled-clip protocol of the published frozen-embedding
results, and what clip-level features such as note statistics need. ``eval.segment_seconds`` follows the
training crops. A number set on the command line or in a preset wins over both.
Kept free of heavy imports: it is registered whenever ``genre`` is imported; the model's class is
imported only when a config is resolved.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

RESOLVER = "genre.segment_seconds"


def closed_form_target(target: str) -> bool:
    """Whether the model class ``target`` (a ``_target_`` path) declares ``closed_form = True`` (False for a
    target that does not import: building the model names it)."""
    from hydra.utils import get_class  # only when a config is resolved: importing genre stays light

    try:
        model_class = get_class(str(target))
    except (ImportError, ValueError, AttributeError):
        return False
    return getattr(model_class, "closed_form", False) is True


def _resolve(target: Any, trained_seconds: Any, clip_seconds: Any) -> Any:
    # Values are passed on as they are: the run spec checks them and names the key of a bad one.
    return clip_seconds if closed_form_target(str(target)) else trained_seconds


if not OmegaConf.has_resolver(RESOLVER):
    OmegaConf.register_new_resolver(RESOLVER, _resolve)

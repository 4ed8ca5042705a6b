"""A study is one setup: what defines it is recorded when it is made, and a sweep that resumes it with
anything different is refused (one line naming the differences and the two ways on).

The setup (:func:`study_setup`), a flat mapping of text values stored as the study's user attribute
``genre.setup``:

- ``override.<key>``: each fixed override of the sweep (a plain ``key=value`` on the command line or in
  ``hydra.sweeper.params``), except keys that do not change results (:data:`NOT_SETUP`).
- ``search.<key>``: each searched key's distribution (``choice(cnn, crnn)``, ``float [0.0001, 0.01] log``).
- ``objective`` and ``direction``.
- ``dataset.<key>``: every value of the ``dataset`` node as composed (name, root, source, clip length,
  split); a value under ``paths.*`` (the demo corpus's cache folder) is kept as written, since where the
  cache lives does not change the clips.
- ``code.genre`` and ``code.git_commit``: the package version and, in a git checkout, its commit. They
  only warn when they differ: a commit changes with every edit while developing.

A study made before genre recorded setups (or by hand, e.g. to enqueue trials) has no ``genre.setup``:
the first sweep on it records its own, with a warning when the study already holds trials, which were
not checked. ``hydra.sweeper.on_setup_change=continue`` resumes a study despite the differences; the
study keeps the setup it was made with and lists each accepted change in ``genre.setup_changes``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import optuna
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from genre.core import versions
from genre.core.errors import ConfigError
from genre.sweeps.optuna.search_space import SearchSpace

log = logging.getLogger(__name__)

SETUP_ATTR = "genre.setup"
CHANGES_ATTR = "genre.setup_changes"
ON_CHANGE_KEY = "hydra.sweeper.on_setup_change"
ON_CHANGE = ("refuse", "continue")
# Overrides that do not change a trial's result: where files go, how progress is shown, how many
# loader or decoding processes run, the sweeper's own settings and the per-job trial handle.
NOT_SETUP = (
    "hydra.",
    "paths.",
    "optuna_trial.",
    "trainer.progress",
    "trainer.num_workers",
    "dataset.decode_workers",
)
# Keys whose differences are reported, never refused.
CODE_PREFIX = "code."


def study_setup(config: DictConfig, space: SearchSpace, directions: list[str]) -> dict[str, str]:
    """What defines a study run with ``config`` (the sweep's composed config) over ``space``."""
    setup = {f"override.{key}": value for key, value in sorted(fixed_overrides(space).items())}
    setup.update({f"search.{key}": describe(dist) for key, dist in sorted(space.distributions.items())})
    setup["objective"] = ", ".join(objective_names(config))
    setup["direction"] = ", ".join(directions)
    setup.update({f"dataset.{key}": value for key, value in dataset_identity(config).items()})
    setup.update({f"{CODE_PREFIX}{key}": value for key, value in code_version().items()})
    return setup


def fixed_overrides(space: SearchSpace) -> dict[str, str]:
    """The sweep's fixed overrides that can change a result (without ``+``/``~`` prefixes)."""
    kept = {}
    for key, value in space.fixed.items():
        name = key.lstrip("+~")
        if not any(name == skip.rstrip(".") or (skip.endswith(".") and name.startswith(skip)) for skip in NOT_SETUP):
            kept[name] = value
    return kept


def describe(distribution: BaseDistribution) -> str:
    """A distribution as short text: ``choice(cnn, crnn)``, ``int [8, 32] step 8``, ``float [0.0001, 0.01] log``."""
    if isinstance(distribution, CategoricalDistribution):
        return f"choice({', '.join(map(str, distribution.choices))})"
    if isinstance(distribution, (IntDistribution, FloatDistribution)):
        kind = "int" if isinstance(distribution, IntDistribution) else "float"
        text = f"{kind} [{distribution.low:g}, {distribution.high:g}]"
        if distribution.step is not None and not (kind == "int" and distribution.step == 1):
            text += f" step {distribution.step:g}"
        return text + (" log" if distribution.log else "")
    return repr(distribution)


def dataset_identity(config: DictConfig) -> dict[str, str]:
    """Every leaf of ``config.dataset`` as text (keys relative to it), best effort: a value that does not
    resolve is kept as written; ``dataset.decode_workers`` (speed only) is left out."""
    node = config.get("dataset")
    if not isinstance(node, DictConfig):
        return {}
    raw = OmegaConf.to_container(node, resolve=False)
    leaves: dict[str, str] = {}
    _flatten(raw, "", leaves)
    identity = {}
    for key, written in leaves.items():
        if f"dataset.{key}" in NOT_SETUP:
            continue
        if "${paths." in written or "${oc.env" in written:
            identity[key] = written  # where the cache lives is no part of the data
            continue
        try:
            value = OmegaConf.select(config, f"dataset.{key}", throw_on_missing=False)
        except (
            OmegaConfBaseException,
            ValueError,
            KeyError,
        ):  # an interpolation that resolves only inside a job: keep it as written
            value = written
        identity[key] = written if value is None else _text(value)
    return identity


def _flatten(value: Any, prefix: str, into: dict[str, str]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), into)
    else:
        into[prefix] = _text(value)


def _text(value: Any) -> str:
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=False)
    return str(value)


def code_version() -> dict[str, str]:
    """The genre package's version, and the commit of the git checkout it runs from (when it is one: see
    :func:`genre.core.versions.git_state`)."""
    version = versions.code_version()
    found = {"genre": version.package_version or "unknown"}
    if version.git_commit:
        found["git_commit"] = version.git_commit
    return found


def setup_differences(stored: Mapping[str, Any], now: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """``(key, stored, now)`` for each key whose value differs (``-`` where a side lacks it), sorted."""
    missing = "-"
    return [
        (key, str(stored.get(key, missing)), str(now.get(key, missing)))
        for key in sorted(set(stored) | set(now))
        if str(stored.get(key, missing)) != str(now.get(key, missing))
    ]


def _listed(differences: list[tuple[str, str, str]]) -> str:
    return "; ".join(f"{key}: {old} -> {new}" for key, old, new in differences)


def check_setup(study: optuna.Study, setup: dict[str, str], on_change: str) -> None:
    """Record ``setup`` on a study that has none; else compare it with the stored one and raise
    :class:`ConfigError` on any difference outside ``code.*``, unless ``on_change`` is ``continue``."""
    if on_change not in ON_CHANGE:
        raise ValueError(f"on_change must be one of {', '.join(ON_CHANGE)}, got {on_change!r}")
    stored = study.user_attrs.get(SETUP_ATTR)
    if not isinstance(stored, dict):
        ran = [trial for trial in study.trials if trial.state != optuna.trial.TrialState.WAITING]  # not enqueued
        if ran:
            log.warning(
                "Study %s has %d trial(s) but no recorded setup (made by an older genre or by hand): recording "
                "this sweep's; its earlier trials were not checked against it",
                study.study_name,
                len(ran),
            )
        study.set_user_attr(SETUP_ATTR, setup)
        return
    differences = setup_differences(stored, setup)
    code = [item for item in differences if item[0].startswith(CODE_PREFIX)]
    setup_changes = [item for item in differences if not item[0].startswith(CODE_PREFIX)]
    if code:
        log.warning("Study %s was made by other code (%s); resuming it", study.study_name, _listed(code))
    if not setup_changes:
        return
    if on_change == "refuse":
        raise ConfigError(
            "hydra.sweeper.study_name",
            f"study {study.study_name} was made with another setup ({_listed(setup_changes)})",
            f"Name a new study for this setup (hydra.sweeper.study_name=...), or add these trials to it anyway "
            f"with {ON_CHANGE_KEY}=continue",
        )
    log.warning(
        "Study %s continues with another setup than it was made with (%s=continue): %s",
        study.study_name,
        ON_CHANGE_KEY,
        _listed(setup_changes),
    )
    changes = list(study.user_attrs.get(CHANGES_ATTR) or [])
    changes.append({"from_trial": len(study.trials), "changes": _listed(setup_changes)})
    study.set_user_attr(CHANGES_ATTR, changes)


def objective_names(config: DictConfig) -> list[str]:
    """The run's objective names (``objective``: one, or a list for several)."""
    objective = config.get("objective")
    return [str(item) for item in objective] if isinstance(objective, ListConfig) else [str(objective)]

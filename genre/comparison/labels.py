"""Names for compared configurations: the config keys that differ among them (``feature=mel`` vs
``feature=mfcc``), not the folders their runs happen to live in.

Each configuration is described by its stored config, read as plain data (nothing in it resolved), and its
config-group choices (Hydra's ``hydra.runtime.choices``: ``feature: mel``). A group whose choice differs is
named by the choice alone; a key inside such a group is named only where the choice does not explain it
(two ``feature=mel`` runs with different ``feature.n_mels``). Keys where runs differ without being different
experiments (output paths, ``hydra``, ``resume``) and the repeat keys (seed, fold) are left out, unless two
configurations could not be told apart otherwise; then their fallback (the folder) is added.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Where runs differ without being different experiments.
IGNORED_PREFIXES = ("hydra", "paths", "resume")
_ABSENT = object()


@dataclass(frozen=True)
class Described:
    """One configuration as its stored files describe it: its config (plain nested mappings) and its
    config-group choices (``{"feature": "mel", "dataset/split": "kfold"}``)."""

    config: Mapping[str, Any] = field(default_factory=dict)
    choices: Mapping[str, str] = field(default_factory=dict)


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``config``'s leaves under dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``); a list is one leaf."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def format_value(value: Any) -> str:
    """A config value as an override writes it: ``null``, ``true``, ``0.001``, ``[8,16]``, ``mel``."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


def _ignored(key: str, repeat_keys: Sequence[str]) -> bool:
    return key in repeat_keys or any(key == prefix or key.startswith(f"{prefix}.") for prefix in IGNORED_PREFIXES)


def _differing(values: Mapping[str, Mapping[str, Any]], keys: Sequence[str]) -> list[str]:
    """The ``keys`` whose value (or absence) is not the same in every configuration of ``values``."""
    found = []
    for key in keys:
        seen = {json.dumps(flat.get(key, _ABSENT), default=repr, sort_keys=True) for flat in values.values()}
        if len(seen) > 1:
            found.append(key)
    return found


def _explained(key: str, groups: Sequence[str], choices: Mapping[str, Mapping[str, str]], values: Any) -> bool:
    """Whether ``key`` lies under one of the differing ``groups`` and the group's choice fixes its value."""
    for group in groups:
        node = group.replace("/", ".")
        if key.startswith(f"{node}."):
            by_option: dict[str, set[str]] = {}
            for name, flat in values.items():
                option = choices[name].get(group, "")
                by_option.setdefault(option, set()).add(json.dumps(flat.get(key, None), default=repr))
            if all(len(seen) == 1 for seen in by_option.values()):
                return True
    return False


def _keys_labels(keys: Sequence[str], groups: Sequence[str], described: Mapping[str, Described], values: Any) -> Any:
    labels = {}
    for name, item in described.items():
        parts = [f"{group}={item.choices.get(group, 'null')}" for group in groups]
        parts += [f"{key}={format_value(values[name][key])}" for key in keys if key in values[name]]
        labels[name] = " ".join(parts)
    return labels


def differing_labels(
    described: Mapping[str, Described], fallback: Mapping[str, str], repeat_keys: Sequence[str] = ()
) -> dict[str, str]:
    """Each configuration's label (``name -> label``): the choices and keys that differ among ``described``.

    ``fallback`` names each configuration where nothing tells it apart (its folder): used alone when no key
    differs, and added in parentheses to labels two configurations share (after the ``repeat_keys`` that
    differ among those, e.g. ``seed``)."""
    values = {name: flatten(item.config) for name, item in described.items()}
    choices = {name: dict(item.choices) for name, item in described.items()}
    every_group = sorted(
        {group for item in choices.values() for group in item if not _ignored(group.replace("/", "."), repeat_keys)}
    )
    groups = [g for g in every_group if len({item.get(g) for item in choices.values()}) > 1]
    every_key = list(dict.fromkeys(key for flat in values.values() for key in flat))
    keys = [
        key
        for key in _differing(values, [key for key in every_key if not _ignored(key, repeat_keys)])
        if not _explained(key, groups, choices, values)
    ]
    if not groups and not keys:
        return {name: fallback[name] for name in described}
    labels = _keys_labels(keys, groups, described, values)
    for label in set(labels.values()):
        sharing = [name for name in labels if labels[name] == label]
        if len(sharing) < 2 and label:
            continue
        repeats = _differing({name: values[name] for name in sharing}, [k for k in repeat_keys if k in every_key])
        for name in sharing:
            extra = " ".join(f"{key}={format_value(values[name].get(key))}" for key in repeats)
            labels[name] = " ".join(part for part in (label, extra) if part)
    for label in set(labels.values()):
        sharing = [name for name in labels if labels[name] == label]
        if len(sharing) > 1 or not label:
            for name in sharing:
                labels[name] = f"{label} ({fallback[name]})" if label else fallback[name]
    return labels

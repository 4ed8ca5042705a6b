"""The YAML configs and the code agree on defaults.

For every node with a ``_target_`` in genre's own code, a key that the YAML sets and that the target's
signature gives a default must hold that default: otherwise ``CNN()`` in Python and ``model=cnn`` on
the command line build different models. Two kinds of keys are not compared: interpolations
(``${dataset.sample_rate}``: the value comes from elsewhere in the config), and keys of a target that
several options configure with different values (e.g. ``FeatureExtractor.log`` is ``db`` for mel but
``none`` for mfcc): there the code's default can only be one option's choice. Library targets
(``torch.optim.SGD``) are not ours to change and are skipped.
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

from genre import CONFIG_DIR

# Hydra's instantiation keywords: not parameters of the target.
HYDRA_KEYS = {"_target_", "_partial_", "_args_", "_recursive_", "_convert_"}


def _targeted_nodes(node: Any, where: str) -> Iterator[tuple[str, DictConfig]]:
    """Every DictConfig under ``node`` (itself included) that has a ``_target_``, with its location."""
    if isinstance(node, DictConfig):
        if "_target_" in node:
            yield where, node
        for key in node:
            yield from _targeted_nodes(node._get_node(key), f"{where}.{key}")
    elif isinstance(node, ListConfig):
        for index in range(len(node)):
            yield from _targeted_nodes(node._get_node(index), f"{where}[{index}]")


def _comparable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _set_defaults() -> list[tuple[str, str, str, Any, Any]]:
    """(where, target, key, YAML value, code default) for every literal YAML key with a code default."""
    found = []
    for path in sorted(CONFIG_DIR.rglob("*.yaml")):
        for where, node in _targeted_nodes(OmegaConf.load(path), path.relative_to(CONFIG_DIR).as_posix()):
            target = str(node._target_)
            if not target.startswith("genre."):
                continue
            parameters = inspect.signature(get_object(target)).parameters
            values = OmegaConf.to_container(node, resolve=False)
            assert isinstance(values, dict)
            for key in node:
                parameter = parameters.get(str(key))
                if key in HYDRA_KEYS or parameter is None or parameter.default is inspect.Parameter.empty:
                    continue
                if OmegaConf.is_interpolation(node, str(key)):
                    continue
                found.append((where, target, str(key), values[key], _comparable(parameter.default)))
    return found


SET_DEFAULTS = _set_defaults()


def _per_option_keys() -> set[tuple[str, str]]:
    """(target, key) pairs that different configs of one target set to different values."""
    values: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for _, target, key, value, _ in SET_DEFAULTS:
        values[target, key].append(value)
    return {pair for pair, seen in values.items() if any(v != seen[0] for v in seen)}


def test_the_configs_set_many_defaulted_keys() -> None:
    # Guards the walk itself: a broken walk would find nothing and pass the test below vacuously.
    targets = {target for _, target, _, _, _ in SET_DEFAULTS}
    assert len(SET_DEFAULTS) > 80, len(SET_DEFAULTS)
    assert {"genre.models.CNN", "genre.models.CRNN", "genre.features.FeatureExtractor"} <= targets


@pytest.mark.parametrize(
    "where,target,key,value,default",
    [
        pytest.param(*entry, id=f"{entry[0]}:{entry[2]}")
        for entry in SET_DEFAULTS
        if (entry[1], entry[2]) not in _per_option_keys()
    ],
)
def test_yaml_value_is_the_code_default(where: str, target: str, key: str, value: Any, default: Any) -> None:
    assert value == default, (
        f"{where}: {key}={value!r} but {target} defaults to {default!r}; the YAML is "
        f"what runs use, so change the code's default (or the YAML, deliberately)"
    )


def test_per_option_keys_are_really_per_option() -> None:
    # The exemption covers keys whose options choose differently, not a single config that drifted.
    exempt = _per_option_keys()
    by_pair: dict[tuple[str, str], set[Path]] = defaultdict(set)
    for where, target, key, _, _ in SET_DEFAULTS:
        if (target, key) in exempt:
            by_pair[target, key].add(Path(where.split(".yaml")[0]))
    assert all(len(files) > 1 for files in by_pair.values()), by_pair

"""The run spec: built once from the config, it is the config's validation (one declared rule per setting,
one line naming the key), it pickles, every rank receives it as it is, and the experiment never names
the sweeps (launch code injects their epoch callback)."""

from __future__ import annotations

import ast
import copy
import dataclasses
import pickle
import re
import typing
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from genre.core import errors
from genre.core.errors import ConfigError
from genre.experiment.checks import Flag, Interval, Options
from genre.experiment.spec import PART_NUMBERS, RunSpec, build_spec, declared
from genre.training.distributed import DistContext, init_process_group, run_spawned
from helpers import REPO, TINY_DEMO, TINY_RUN, compose_run

EXPERIMENT = REPO / "genre" / "experiment"


def _settings(cls: type = RunSpec) -> dict[str, Any]:
    """Every declared setting of the spec, nested dataclasses included: config key -> rule."""
    found: dict[str, Any] = {}
    for setting in declared(cls).values():
        assert setting.key not in found, f"{setting.key} is declared twice"
        found[setting.key] = setting.rule
    for kind in typing.get_type_hints(cls).values():
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            for key, rule in _settings(kind).items():
                assert key not in found, f"{key} is declared twice"
                found[key] = rule
    return found


SETTINGS = _settings()


def _bad_values(rule: Any) -> list[str]:
    """Command-line values ``rule`` must refuse: not a number / not an option, and out of its range."""
    if isinstance(rule, Options | Flag):
        return ["nonsense"]
    assert isinstance(rule, Interval)
    bad = ["abc"]
    if rule.low is not None:
        bad.append(str(rule.low - 1))
    elif rule.high is not None:
        bad.append(str(rule.high + 1))
    return bad


CASES = [(key, value) for key, rule in SETTINGS.items() for value in _bad_values(rule)]


def test_the_spec_declares_its_settings_once_each() -> None:
    # The nested dataclasses are found (not just the top level) and no key has two homes.
    assert {"trainer.epochs", "trainer.batch_size", "dataset.clip_seconds", "eval.aggregate", "seed"} <= set(SETTINGS)
    assert not set(SETTINGS) & set(PART_NUMBERS)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The tiny run's composed config (composing takes a while: once, then copied and changed per test)."""
    folder = tmp_path_factory.mktemp("spec")
    return compose_run(TINY_RUN, folder / "run", folder / "cache")


@pytest.mark.parametrize(("key", "value"), CASES, ids=[f"{key}={value}" for key, value in CASES])
def test_each_declared_rule_refuses_a_bad_value_in_one_line_naming_its_key(key: str, value: str, tiny: Any) -> None:
    cfg = copy.deepcopy(tiny)
    OmegaConf.update(cfg, key, yaml.safe_load(value))  # as the command line types it
    with pytest.raises(ConfigError) as raised:
        build_spec(cfg)
    message = str(raised.value)
    assert message.startswith(f"{key}: ") and "\n" not in message, message
    # The refusal is the declared rule's own: the same line as the rule gives for the value alone.
    with pytest.raises(ConfigError) as alone:
        SETTINGS[key].check(key, OmegaConf.select(cfg, key))
    assert str(alone.value) == message


def test_one_bad_clip_length_is_refused_once_from_one_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    original = errors.ConfigError.__init__

    def counting(self: ConfigError, key: str, problem: str, fix: str | None = None) -> None:
        made.append(key)
        original(self, key, problem, fix)

    monkeypatch.setattr(errors.ConfigError, "__init__", counting)
    cfg = compose_run([*TINY_RUN, "dataset.clip_seconds=-1"], tmp_path / "run", tmp_path / "cache")
    with pytest.raises(ConfigError, match=r"^dataset\.clip_seconds: -1 s is not within \(0, 3600\] s\. "):
        build_spec(cfg)
    assert made == ["dataset.clip_seconds"]


def test_the_spec_is_parsed_and_resolved_once(tmp_path: Path) -> None:
    overrides = ["objective=[val/acc,n_parameters]", "objective_mode=[max,min]", "trainer.device=cpu"]
    spec = build_spec(compose_run([*TINY_RUN, *overrides], tmp_path / "run", tmp_path / "cache"), "last.pt")
    assert [(o.name, o.mode) for o in spec.objectives] == [("val/acc", "max"), ("n_parameters", "min")]
    assert spec.runtime.device == torch.device("cpu") and str(spec.runtime.precision) == "fp32"
    rate = spec.segments.sample_rate
    assert spec.segments.train_samples == round(2.0 * rate) and spec.segments.eval_samples == round(2.0 * rate)
    assert spec.resume_from == "last.pt" and spec.run_dir == tmp_path / "run"
    assert spec.config["trainer"]["epochs"] == 1 and "hydra" not in spec.config
    assert spec.parts.optimizer._target_ and spec.hparams["trainer.epochs"] == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.seed = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "model,set_seconds,expected",
    [
        ("crnn", None, (5.0, 5.0)),
        ("logreg", None, (6.0, 6.0)),
        ("late_fusion", None, (6.0, 6.0)),
        ("logreg", "3.0", (3.0, 3.0)),
        ("mlp", "3.0", (3.0, 3.0)),
    ],
)
def test_the_segment_length_follows_the_model_unless_set(
    model: str, set_seconds: str | None, expected: tuple[float, float], tmp_path: Path
) -> None:
    """A model trained by gradient gets 5-s crops; one solved in closed form (declares ``closed_form``)
    gets whole clips (6 s here); a number set on the command line wins for either."""
    overrides = [
        *TINY_DEMO,
        "dataset.source.clip_seconds=6.0",
        "dataset.clip_seconds=6.0",
        f"model={model}",
        "feature=mel",
    ]
    if set_seconds is not None:
        overrides.append(f"trainer.segment_seconds={set_seconds}")
    if model == "late_fusion":
        overrides[-1] = "feature=fusion"
    spec = build_spec(compose_run(overrides, tmp_path / "run", tmp_path / "cache"))
    assert (spec.segments.train_seconds, spec.segments.eval_seconds) == expected
    assert spec.config["trainer"]["segment_seconds"] == expected[0]  # what the run dir records


def _receive(ctx: DistContext, init_method: str, results: Any, spec: RunSpec) -> None:
    """A spawned rank: what it received as an argument, and rank 0's spec broadcast (the torchrun path)."""
    init_process_group(ctx, torch.device("cpu"), init_method)
    broadcast = ctx.broadcast(spec if ctx.is_main else None)
    if ctx.rank == 1:
        results.put((spec, broadcast))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_the_spec_pickles_and_every_rank_receives_an_equal_one(tmp_path: Path) -> None:
    spec = build_spec(compose_run([*TINY_RUN, "trainer.device=cpu"], tmp_path / "run", tmp_path / "cache"))
    assert pickle.loads(pickle.dumps(spec)) == spec
    received, broadcast = run_spawned(_receive, 2, spec)
    assert received == spec and broadcast == spec
    # The parts keep their full keys: a library error inside them still names e.g. model.dropout.
    assert received.parts.model._get_full_key("channels") == "model.channels"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):  # every import, module-level or inside a function
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_experiment_never_names_the_sweeps() -> None:
    for path in sorted(EXPERIMENT.glob("*.py")):
        assert not {name for name in _imported_modules(path) if name.startswith("genre.sweeps")}, path.name
        assert "optuna_trial" not in path.read_text(), path.name


def test_only_the_spec_builder_reads_the_trainer_and_eval_config() -> None:
    pattern = re.compile(r"cfg\.trainer|cfg\.eval|cfg\[.trainer")
    readers = sorted(
        str(path.relative_to(REPO)) for path in (REPO / "genre").rglob("*.py") if pattern.search(path.read_text())
    )
    assert readers in ([], ["genre/experiment/spec.py"]), readers

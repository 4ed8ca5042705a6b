"""A checkpoint (or ``cv.json``) someone sends never runs code: its stored config is data naming genre's
own classes, checked before anything is built from it (``genre.run_files.stored_config``).

Every hostile form below carries a payload that writes a marker file when Hydra's ``instantiate`` (what
``genre.cli.predict`` and ``resume=`` used before) builds it; ``test_each_payload_runs_when_instantiated``
shows the payloads are live, so the refusals are not vacuous.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hydra._internal.utils as hydra_utils
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from genre.cli.predict import main as predict_main
from genre.core.cli_errors import user_error_line
from genre.experiment import run_experiment
from genre.experiment.pipeline import STORED_CLASSES
from genre.run_files import BEST_CHECKPOINT, CROSS_VALIDATION_FILE, LAST_CHECKPOINT, Checkpoint
from genre.run_files.stored_config import ALLOWED_TARGETS, StoredConfigError, check_stored_config
from helpers import REPO, TINY_RUN, compose_config, compose_run, run_script

MARKER = "PWNED"


def _payloads(marker: Path) -> dict[str, dict[str, Any]]:
    """Nodes that, instantiated by Hydra, each create ``marker`` (Hydra's best-effort blocklist lets them
    through; writing a file such as ``~/.bashrc`` or a ``.pth`` in site-packages is running code)."""
    return {
        "builtins.open": {"_target_": "builtins.open", "file": str(marker), "mode": "w"},
        "os.makedirs": {"_target_": "os.makedirs", "name": str(marker)},
        "pathlib.Path.write_text": {
            "_target_": "pathlib.Path.write_text",
            "self": {"_target_": "pathlib.Path", "_args_": [str(marker)]},
            "data": "x",
        },
        "shutil.copyfile": {"_target_": "shutil.copyfile", "src": __file__, "dst": str(marker)},
        "torch.save": {"_target_": "torch.save", "obj": 1, "f": str(marker)},
    }


# Stopped by Hydra's own blocklist today; genre refuses them before Hydra is asked.
BLOCKLISTED = {
    "os.system": {"_target_": "os.system", "_args_": ["touch PWNED"]},
    "subprocess.run": {"_target_": "subprocess.run", "args": ["touch", "PWNED"]},
}


def _hostile_forms(base: dict[str, Any], marker: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, stored config) for every way a stored config could smuggle a call: a payload in each place
    genre builds from, nested inside an allowed node, in a list, partial, with Hydra's other keys,
    behind an interpolation or a resolver, at the top level, under a key genre never builds."""
    payloads = _payloads(marker)

    def put(path: str, value: Any) -> dict[str, Any]:
        config = copy.deepcopy(base)
        node = config
        *parents, last = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
        return config

    for name, payload in payloads.items():
        for slot in ("feature", "feature.transform", "model", "optimizer", "scheduler", "dataset.source"):
            yield f"{name} as {slot}", put(slot, payload)
    system = payloads["pathlib.Path.write_text"]
    for name, payload in BLOCKLISTED.items():
        yield f"{name} as model", put("model", payload)
    yield "nested in an allowed node", put("model.channels", copy.deepcopy(system))
    yield "in a list", put("model.channels", [8, copy.deepcopy(system)])
    yield "an augmentation", put("augment.evil", copy.deepcopy(system))
    yield "partial", put("optimizer", {**system, "_partial_": True})
    yield "partial without a target", put("optimizer._partial_", "yes")
    yield "_args_ on an allowed class", put("model._args_", [f"touch {marker}"])
    yield "_recursive_ key", put("model._recursive_", False)
    yield "_convert_ key", put("feature._convert_", "all")
    yield "under a new key", put("evil", copy.deepcopy(system))
    yield "at the top level", {**copy.deepcopy(base), **system}
    yield "the pruner", put("optuna_trial.pruner", copy.deepcopy(system))
    yield (
        "a wrapped pruner",
        put(
            "optuna_trial.pruner", {"_target_": "optuna.pruners.PatientPruner", "patience": 1, "wrapped_pruner": system}
        ),
    )
    yield "an allowed name in the wrong place", put("model._target_", "genre.features.FeatureExtractor")
    yield "a prefix of an allowed name", put("model._target_", "genre.models.CNN.__init__.__globals__")
    yield "a non-string target", put("model._target_", ["os", "system"])
    decoded = "{_target_: os.makedirs, name: '" + str(marker) + "'}"
    yield "oc.decode resolver", put("feature", "${oc.decode:'" + decoded + "'}")
    yield "oc.create resolver", put("model", "${oc.create:" + json.dumps(system) + "}")
    yield "environment interpolation", put("feature.transform.sample_rate", "${oc.env:HOME}")
    yield "hydra resolver", put("paths.output_dir", "${hydra:runtime.cwd}")
    yield "interpolation to a payload elsewhere", {**put("junk", system), "model": "${junk}"}
    yield "interpolation in a key", put("model.${oc.env:HOME}", 1)
    yield "a tensor value", put("model.dropout", torch.tensor(0.1))
    yield "a non-string key", put("model", {**base["model"], 7: "x"})


def _base_config() -> dict[str, Any]:
    """A real run's resolved config, as a checkpoint stores it."""
    cfg = compose_config(["feature=mfcc", "model=cnn", "hparams_search=optuna", "hydra/sweeper/pruner=patient"])
    own = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    assert isinstance(own, dict)
    return own


def test_a_real_runs_config_passes_and_every_target_of_the_config_tree_is_allowed() -> None:
    base = _base_config()
    assert check_stored_config(base, "best.pt") is base
    assert base["optuna_trial"]["pruner"]["wrapped_pruner"]["_target_"]  # the patient pruner's slot is exercised


def test_allowed_names_are_exactly_the_config_trees_targets_and_name_those_classes() -> None:
    conf = REPO / "genre" / "conf"
    tree = {
        str(OmegaConf.select(OmegaConf.load(path), key))
        for group in ("feature", "model", "optimizer", "scheduler", "augment", "dataset", "hydra/sweeper/pruner")
        for path in (conf / group).rglob("*.yaml")
        for key in ("_target_", "transform._target_", "source._target_", "wrapped_pruner._target_")
        if OmegaConf.select(OmegaConf.load(path), key) is not None
    } | {
        str(node._target_)
        for path in (conf / "augment").glob("*.yaml")
        for key, node in OmegaConf.load(path).items()
        if key != "defaults"  # augment=waveform only composes the others
    }
    allowed = set().union(*ALLOWED_TARGETS.values())
    assert tree == allowed
    for slot, classes in STORED_CLASSES.items():
        assert set(classes) == ALLOWED_TARGETS[slot]
        for name, cls in classes.items():
            assert hydra_utils._locate(name) is cls  # the lookup table names what the config tree means


def test_each_payload_runs_when_instantiated(tmp_path: Path) -> None:
    # The payloads are live: built the way a stored config used to be, each creates the marker.
    marker = tmp_path / MARKER
    for name, payload in _payloads(marker).items():
        built = instantiate(payload)
        if hasattr(built, "close"):
            built.close()
        assert marker.exists(), name
        if marker.is_dir():
            shutil.rmtree(marker)
        else:
            marker.unlink()


def test_every_hostile_form_is_refused_with_one_line_and_nothing_is_located(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    located: list[str] = []
    real = hydra_utils._locate
    monkeypatch.setattr(hydra_utils, "_locate", lambda path: located.append(path) or real(path))
    forms = list(_hostile_forms(_base_config(), tmp_path / MARKER))
    assert len(forms) >= 40
    for name, config in forms:
        with pytest.raises(StoredConfigError) as refused:
            check_stored_config(config, tmp_path / BEST_CHECKPOINT)
        line = user_error_line(refused.value)
        assert line is not None and "\n" not in line and line.startswith(f"{tmp_path / BEST_CHECKPOINT}: refused"), name
    assert located == [] and not (tmp_path / MARKER).exists()


def test_random_mutations_of_a_real_config_never_reach_a_call(tmp_path: Path) -> None:
    """A seeded fuzz: payloads dropped at random depths of a real config, each refused or harmless data."""
    base, rng = _base_config(), random.Random(16)
    payloads = list(_payloads(tmp_path / MARKER).values())

    def nodes(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        yield path
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            yield from nodes(value, (*path, key))

    paths = [path for path in nodes(base) if path]
    for _ in range(300):
        config = copy.deepcopy(base)
        *parents, last = rng.choice(paths)
        parent = config
        for part in parents:
            parent = parent[part]
        parent[last] = copy.deepcopy(rng.choice(payloads))
        with pytest.raises(StoredConfigError):
            check_stored_config(config, "best.pt")
    assert not (tmp_path / MARKER).exists()


# --- end to end: genre.cli.predict and resume= on a real checkpoint whose config was made hostile ----------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    run_dir = tmp_path_factory.mktemp("hostile-run")
    run_experiment(compose_run([*TINY_RUN, "feature=mfcc", "model=cnn"], run_dir, cache_dir))
    return run_dir


END_TO_END = [
    "builtins.open as feature",
    "os.makedirs as feature.transform",
    "pathlib.Path.write_text as model",
    "shutil.copyfile as optimizer",
    "torch.save as dataset.source",
    "os.system as model",
    "nested in an allowed node",
    "in a list",
    "partial",
    "_args_ on an allowed class",
    "oc.decode resolver",
    "oc.create resolver",
    "interpolation to a payload elsewhere",
    "the pruner",
]


def _hostile_run(trained_run: Path, tmp_path: Path, form: str) -> tuple[Path, Path]:
    """A copy of the trained run's checkpoints with ``form`` in their stored config; the marker path."""
    marker = tmp_path / MARKER
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in (BEST_CHECKPOINT, LAST_CHECKPOINT):
        state = torch.load(trained_run / name, weights_only=True)
        state["config"] = dict(_hostile_forms(state["config"], marker))[form]
        torch.save(state, run_dir / name)
    return run_dir, marker


@pytest.mark.slow
@pytest.mark.parametrize("form", END_TO_END)
def test_predict_and_resume_refuse_a_hostile_checkpoint_with_one_line(
    trained_run: Path, tmp_path: Path, form: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir, marker = _hostile_run(trained_run, tmp_path, form)
    assert predict_main([str(run_dir), str(run_dir / "clip.wav")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: {run_dir / BEST_CHECKPOINT}: refused"), err
    with pytest.raises(StoredConfigError) as refused:
        run_experiment(compose_config([f"resume={run_dir}"]))
    assert str(refused.value).startswith(f"{run_dir / LAST_CHECKPOINT}: refused")
    assert not marker.exists()
    assert Checkpoint.load(trained_run / BEST_CHECKPOINT).config  # the genuine run still loads


@pytest.mark.slow
def test_the_command_lines_refuse_a_hostile_checkpoint_and_cv_json(trained_run: Path, tmp_path: Path) -> None:
    run_dir, marker = _hostile_run(trained_run, tmp_path, "oc.decode resolver")
    env_python = [sys.executable]
    predicted = subprocess.run(
        [*env_python, "-m", "genre.cli.predict", str(run_dir), str(run_dir / "x.wav")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    # predict in a real child process; run.py's two refusals run the script in process (no torch import each).
    resumed = run_script([f"resume={run_dir}"], tmp_path, tmp_path / "cache")
    # cv.json: a cross-validation job dir whose record stores a hostile config.
    job = tmp_path / "job"
    (job / "fold0").mkdir(parents=True)
    record = {"folds": 2, "config": dict(_hostile_forms(_base_config(), marker))["builtins.open as model"]}
    (job / CROSS_VALIDATION_FILE).write_text(
        json.dumps({**record, "objective": "val/acc", "objective_mode": "max", "version": 1})
    )
    cross = run_script([f"resume={job}"], tmp_path, tmp_path / "cache")
    for result, where in (
        (predicted, run_dir / BEST_CHECKPOINT),
        (resumed, run_dir / LAST_CHECKPOINT),
        (cross, job / CROSS_VALIDATION_FILE),
    ):
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert lines == [line for line in result.stderr.strip().splitlines()][-1:], result.stderr
        assert lines[0].startswith(f"error: {where}: refused"), result.stderr
    assert not marker.exists()

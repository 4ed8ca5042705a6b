"""The one error path: library errors name their parameter; the command line names the config key.

Unit tests run the translator on the real exceptions Hydra raises when instantiating real configs;
the end-to-end ones check that every command prints exactly one line and exits 2, and that a sweep
records the same line for its failed job while the other job completes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException, InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from genre import CONFIG_DIR
from genre.core.cli_errors import one_line_user_errors, user_error_line
from genre.core.errors import ConfigError, config_keys
from genre.sweeps.jobs.status import describe_error
from helpers import TINY_DEMO, TINY_RUN, run_cli, run_script


def _compose(overrides: Sequence[str]) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def _raised(build) -> BaseException:
    with pytest.raises(Exception) as info:
        build()
    return info.value


def _compose_error(overrides: Sequence[str]) -> BaseException:
    GlobalHydra.instance().clear()
    with pytest.raises(HydraException) as info, initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        compose(config_name="config", overrides=list(overrides))
    return info.value


# (overrides, how to instantiate the node, the line the user reads)
INSTANTIATED = [
    (
        ["model=crnn", "model.dropout=2"],
        lambda cfg: instantiate(cfg.model, n_bands=40, n_classes=6),
        "model.dropout: 2 is outside [0, 1). Use e.g. 0.3",
    ),
    (
        ["model=resnet", "model.blocks_per_stage=[1]"],
        lambda cfg: instantiate(cfg.model, n_bands=40, n_classes=6),
        "model.blocks_per_stage: 1 entries but widths has 3. Give one block count per stage width",
    ),
    (
        ["augment=mixup", "augment.mixup.p=5"],
        lambda cfg: [instantiate(node) for node in cfg.augment.values()],
        "augment.mixup.p: 5 is not a probability. Use a value in [0, 1]",
    ),
    (
        ["augment=specaugment", "augment.specaugment.time_masks=-1"],
        lambda cfg: [instantiate(node) for node in cfg.augment.values()],
        "augment.specaugment.time_masks: -1 is a negative mask count. Use e.g. 2",
    ),
    (
        ["feature=mel", "feature.transform.n_mels=0"],
        lambda cfg: instantiate(cfg.feature),
        "feature.transform.n_mels: 0 is not positive. Use e.g. 128",
    ),
    (
        ["feature=mfcc", "feature.transform.n_mfcc=500"],
        lambda cfg: instantiate(cfg.feature),
        "feature.transform.n_mfcc: 500 exceeds n_mels=128. Use at most n_mels coefficients",
    ),
    (
        ["dataset.split.val=2"],
        lambda cfg: instantiate(cfg.dataset.split),
        "dataset.split.val: 2 is not a fraction in (0, 1). Use e.g. 0.15",
    ),
    # An error about two parameters names the node.
    (
        ["dataset.split.val=0.6", "dataset.split.test=0.6"],
        lambda cfg: instantiate(cfg.dataset.split),
        "dataset.split: val + test = 1.20 leaves nothing to train on. Make val + test < 1",
    ),
]


@pytest.mark.parametrize("overrides,build,expected", INSTANTIATED, ids=[" ".join(o) for o, _, _ in INSTANTIATED])
def test_an_instantiation_error_becomes_one_line_naming_the_full_key(
    overrides: list[str], build, expected: str
) -> None:
    error = _raised(lambda: build(_compose(overrides)))
    assert isinstance(error, InstantiationException)  # what Hydra really raises, message over several lines
    assert "\n" in str(error) and isinstance(error.__cause__, ValueError)
    assert user_error_line(error) == expected


def test_errors_that_are_not_the_users_keep_their_traceback() -> None:
    # A _target_ that does not import, a bug inside a library, a library error nobody gave a key.
    located = _raised(lambda: instantiate(_compose(["model._target_=genre.models.Nope"]).model, n_bands=4, n_classes=2))
    assert isinstance(located, InstantiationException) and user_error_line(located) is None
    assert user_error_line(RuntimeError("CUDA error: device-side assert")) is None
    assert user_error_line(ValueError("dropout: 2 is outside [0, 1)")) is None


def _options(group: str) -> str:
    """The options of a config group as Hydra lists them (sorted), from the config tree itself."""
    from genre import CONFIG_DIR

    return ", ".join(sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml")))


@pytest.mark.parametrize(
    "overrides,expected",
    [
        (["feature=nope"], f"feature: In 'config': Could not find 'feature/nope'. Use one of {_options('feature')}"),
        (
            ["dataset/split=nope"],
            (
                "dataset/split: In 'dataset/demo': Could not find 'dataset/split/nope'. Use one of "
                f"{_options('dataset/split')}"
            ),
        ),
        (
            ["model.nokey=1"],
            (
                "model.nokey: Could not override 'model.nokey' (Key 'nokey' is not in struct). To append "
                "to your config use +model.nokey=1"
            ),
        ),
        (["model.dropout=[1"], "model.dropout=[1: no viable alternative at input '[1'. See "),
    ],
)
def test_compose_errors_become_one_line(overrides: list[str], expected: str) -> None:
    line = user_error_line(_compose_error(overrides))
    assert line is not None and line.startswith(expected) and "\n" not in line


def test_config_keys_names_the_key_the_user_sets() -> None:
    from genre.data.sources import FolderSource
    from genre.training.early_stopping import EarlyStopping

    with (
        pytest.raises(ConfigError, match=r"^trainer.early_stopping.patience: 0 is not a positive epoch count\. "),
        config_keys("trainer.early_stopping"),
    ):
        EarlyStopping(patience=0)
    # A parameter the user sets under another key is named by that key.
    with (
        pytest.raises(ConfigError, match=r"^dataset.root: '/nowhere' is not a directory\. Point it at "),
        config_keys("dataset.source", {"root": "dataset.root"}),
    ):
        FolderSource("/nowhere").items()
    # A TypeError that names no parameter is a bug: it stays what it is.
    with pytest.raises(TypeError, match="has no len"), config_keys("model"):
        _ = len(None)  # type: ignore[arg-type]


def test_sweep_status_line_is_the_command_lines_and_other_errors_keep_their_type() -> None:
    error = _raised(lambda: instantiate(_compose(["model=crnn", "model.dropout=2"]).model, n_bands=40, n_classes=6))
    assert describe_error(error) == "model.dropout: 2 is outside [0, 1). Use e.g. 0.3"
    assert (
        describe_error(FloatingPointError("non-finite\nfinal metrics"))
        == "FloatingPointError: non-finite final metrics"
    )


def test_the_wrapper_prints_one_line_and_returns_2_and_lets_bugs_through(capsys: pytest.CaptureFixture) -> None:
    @one_line_user_errors
    def bad_config() -> int:
        instantiate(_compose(["model=crnn", "model.dropout=2"]).model, n_bands=40, n_classes=6)
        return 0

    @one_line_user_errors
    def bug() -> int:
        raise KeyError("oops")

    assert bad_config() == 2
    assert capsys.readouterr().err == "error: model.dropout: 2 is outside [0, 1). Use e.g. 0.3\n"
    with pytest.raises(KeyError):
        bug()


# --- through the commands ----------------------------------------------------------------------------


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    "args,expected",
    [
        (["model.dropout=2"], "error: model.dropout: 2 is outside [0, 1). Use e.g. 0.3"),
        (
            ["augment=mixup", "augment.mixup.p=5"],
            "error: augment.mixup.p: 5 is not a probability. Use a value in [0, 1]",
        ),
        (["feature.transform.n_mels=0"], "error: feature.transform.n_mels: 0 is not positive. Use e.g. 128"),
        (["dataset.split.val=2"], "error: dataset.split.val: 2 is not a fraction in (0, 1). Use e.g. 0.15"),
        (["feature=nope"], "error: feature: In 'config': Could not find 'feature/nope'. Use one of "),
        (
            ["model=logreg", "augment=mixup"],
            "error: augment: a closed-form model is solved on the training clips as they are, without "
            "augmentation. Use augment=none",
        ),
        (
            ["model=logreg", "model.c_grid=[]"],
            "error: model.c_grid: [] is not a non-empty list of positive numbers. Use e.g. [0.1, 1, 10]",
        ),
        (
            # 2 folds of the tiny corpus's 4 clips per genre: 2 test, 1 validation, 1 training clip per genre.
            ["model=logreg", "dataset/split=kfold", "dataset.split.folds=2"],
            "error: dataset: a genre has fewer than 2 training clips, too few for the inner cross-validation "
            "that chooses C. Use more clips per genre",
        ),
    ],
)
def test_run_prints_one_line_naming_the_config_key(
    args: list[str], expected: str, tmp_path: Path, cache_dir: Path
) -> None:
    # No progress bar if this is the session's first run (it generates the demo corpus): only the error.
    # The first case in a real child process; the others run the same script in process (no torch import each).
    # The closed-form probe has no channels to shrink: the tiny corpus and crops without TINY_RUN's model.channels.
    base = [*TINY_DEMO, "feature=mel", "trainer.segment_seconds=2.0", "trainer.progress=false"]
    base = base if "model=logreg" in args else TINY_RUN
    if args == ["model.dropout=2"]:
        result = run_cli([*base, "+dataset.source.progress=false", *args], tmp_path, cache_dir, check=False)
    else:
        result = run_script([*base, "+dataset.source.progress=false", *args], tmp_path, cache_dir)
    assert result.returncode == 2, result.stderr
    assert _one_error_line(result.stderr).startswith(expected)
    assert "Traceback" not in result.stdout


def test_predict_prints_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from genre.cli.predict import main

    assert main([str(tmp_path / "no-run"), str(tmp_path / "a.wav")]) == 2
    assert _one_error_line(capsys.readouterr().err) == (
        f"error: {tmp_path / 'no-run'}: no checkpoint there. Give a run directory (with best.pt) or a .pt file"
    )
    assert main(["--device", "tpu9", str(tmp_path), str(tmp_path / "a.wav")]) == 2
    assert _one_error_line(capsys.readouterr().err).startswith("error: --device: 'tpu9' is not a device. Use auto")


def test_prepare_prints_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from genre.cli.prepare import main

    GlobalHydra.instance().clear()
    assert main(["dataset.split.val=2", f"paths.cache_dir={tmp_path}", "--quiet"]) == 2
    assert _one_error_line(capsys.readouterr().err) == (
        "error: dataset.split.val: 2 is not a fraction in (0, 1). Use e.g. 0.15"
    )
    GlobalHydra.instance().clear()
    assert main(["dataset=folder", "dataset.root=/does/not/exist", f"paths.cache_dir={tmp_path}", "--quiet"]) == 2
    assert _one_error_line(capsys.readouterr().err).startswith(
        "error: dataset.root: '/does/not/exist' is not a directory. Point it at "
    )
    GlobalHydra.instance().clear()
    assert main(["dataset=nope"]) == 2
    assert _one_error_line(capsys.readouterr().err).startswith("error: dataset: In 'config': Could not find")


@pytest.mark.slow
def test_a_sweep_records_the_bad_jobs_line_and_runs_the_good_job(tmp_path: Path, cache_dir: Path) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli(
        ["-m", *TINY_RUN, "model=cnn", "model.dropout=0.1,2", f"hydra.sweep.dir={sweep}"],
        tmp_path,
        cache_dir,
        check=False,
    )
    assert result.returncode == 0, result.stderr  # a failed job does not end a sweep
    good, bad = (json.loads((sweep / job / "status.json").read_text()) for job in ("0", "1"))
    assert OmegaConf.load(sweep / "1" / ".hydra" / "overrides.yaml")[-1] == "model.dropout=2"
    assert good["status"] == "completed" and (sweep / "0" / "metrics.json").is_file()
    assert bad["status"] == "failed"
    assert bad["error"] == "model.dropout: 2 is outside [0, 1). Use e.g. 0.3"
    assert "InstantiationException" in bad["traceback"]  # the full story is still kept
    assert "- job 1 (`" in (summary := (sweep / "summary.md").read_text())
    assert "model.dropout=2`): model.dropout: 2 is outside [0, 1). Use e.g. 0.3" in summary

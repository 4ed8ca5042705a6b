"""Bad input never crashes a tool: every bad sweeper value and every damaged file a tool reads back is one
line (exit status 2 at the command line), and a damaged job is skipped with its reason while the rest of
the sweep is summarised. Files read back are plain data: nothing in them is ever resolved or built."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from genre.cli import compare, report
from genre.core.errors import ConfigError, DamagedFileError
from genre.run_files import CrossValidationMetrics, RunMetrics
from genre.sweeps.jobs.status import JobStatus
from genre.sweeps.optuna.search_space import parse_search_space
from genre.sweeps.optuna.sweeper import OptunaSweeper
from helpers import run_cli, run_script
from helpers.records import make_metrics

# The grammar the issue found crashing the sweeper, each with what the line must say.
BAD_GRAMMAR = [
    ("interval(1e-2, 1e-4)", "ends below its start"),
    ("tag(log, interval(0, 1))", "searches a log scale from 0"),
    ("range(8, 4, 8)", "is empty"),
    ("range(1,10,0)", "has step 0"),
]


def _one_line(message: str) -> None:
    assert "\n" not in message and "Traceback" not in message


@pytest.mark.parametrize("expression,problem", BAD_GRAMMAR)
def test_bad_search_space_grammar_is_a_config_error_naming_the_key(expression: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=rf"^optimizer\.lr: .*{problem}") as raised:
        parse_search_space([f"optimizer.lr={expression}"])
    _one_line(str(raised.value))
    # From hparams_search's params the key is where the user wrote it.
    with pytest.raises(ConfigError, match=rf"^hydra\.sweeper\.params\.optimizer\.lr: .*{problem}"):
        parse_search_space([], params={"optimizer.lr": expression})


@pytest.mark.parametrize(
    "key,value",
    [("n_jobs", 0), ("heartbeat_interval", 0), ("n_trials", -1), ("retry_failed", -3), ("max_failure_rate", 2.0)],
)
def test_a_bad_sweeper_value_is_refused_at_once_naming_its_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"^hydra\.sweeper\.{key}: {value!r} is not ") as raised:
        OptunaSweeper(sampler=None, **{key: value})  # type: ignore[arg-type]
    _one_line(str(raised.value))


def test_a_storage_that_is_not_a_database_url_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"^hydra\.sweeper\.storage: 'optuna/study\.db' is not a database URL"):
        OptunaSweeper(sampler=None, storage="optuna/study.db")


@pytest.mark.skipif(importlib.util.find_spec("MySQLdb") is not None, reason="needs mysql:// without its driver")
def test_a_storage_whose_driver_is_missing_is_one_line_with_the_password_masked() -> None:
    with pytest.raises(ConfigError, match=r"^hydra\.sweeper\.storage: 'mysql://me:\*\*\*@db/optuna' needs .*MySQLdb"):
        OptunaSweeper(sampler=None, storage="mysql://me:hunter2@db/optuna")


# --- damaged files read back by genre.cli.report and genre.cli.compare ----------------------------------------------


def _metrics(acc: float) -> RunMetrics:
    return make_metrics(
        scores={"val/acc": acc, "test/acc": acc},
    )


def _job(sweep: Path, num: int, config: str | None = None) -> Path:
    """A finished job dir as a sweep leaves it (``config``: the text of its ``.hydra/config.yaml``)."""
    run_dir = sweep / str(num)
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create([f"seed={num}"]), run_dir / ".hydra" / "overrides.yaml")
    OmegaConf.save(
        OmegaConf.create({"hydra": {"job": {"num": num}, "runtime": {"choices": {"model": "cnn"}}}}),
        run_dir / ".hydra" / "hydra.yaml",
    )
    (run_dir / ".hydra" / "config.yaml").write_text(config or "objective: val/acc\nobjective_mode: max\n")
    status = JobStatus.start()
    status.finish()
    status.write(run_dir)
    _metrics(0.5 + num / 100).write(run_dir)
    return run_dir


DAMAGE = {
    ".hydra/config.yaml": b"objective: [val/acc\n  : : garbage {{",
    ".hydra/hydra.yaml": b"- just\n- a list\n",
    ".hydra/overrides.yaml": b"{not: a list}\n",
    "status.json": b'["a", "list"]',
    "metrics.json": b"\xff\xfe not UTF-8",
}


def test_report_skips_each_damaged_job_with_its_reason_and_summarises_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "sweep"
    _job(sweep, 0)
    damaged = {}
    for num, (name, data) in enumerate(DAMAGE.items(), start=1):
        (_job(sweep, num) / name).write_bytes(data)
        damaged[num] = name
    (_job(sweep, 9) / "status.json").write_bytes('{"status": "caf\xe9"}'.encode("latin-1"))  # not UTF-8
    damaged[9] = "status.json"
    assert report.main([str(sweep)]) == 0
    printed = capsys.readouterr().out
    assert "Sweep" in printed and "1 jobs (1 completed)" in printed
    assert f"Skipped {len(damaged)} job dir(s) holding a damaged file" in printed
    for num, name in damaged.items():
        line = next(line for line in printed.splitlines() if line.startswith(f"- {sweep / str(num)}: "))
        assert f"{sweep / str(num) / name}: " in line, line
    assert "Skipped" in (sweep / "summary.md").read_text()


def test_report_on_a_sweep_of_damaged_jobs_only_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "sweep"
    (_job(sweep, 0) / "status.json").write_text("[]")
    assert report.main([str(sweep)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: sweep_dir: every job dir under") and "status.json: holds a JSON list" in error


def test_a_stored_config_is_read_as_data_and_never_resolved(tmp_path: Path) -> None:
    calls: list[str] = []
    OmegaConf.register_new_resolver("genre_test_spy", lambda *args: calls.append("resolved") or "x", replace=True)
    try:
        sweep = tmp_path / "sweep"
        spied = "${genre_test_spy:}"
        for num in (0, 1):
            config = (
                f"objective: '{spied}'\nobjective_mode: max\nseed: '{spied}'\ndataset: {{split: {{fold: '{spied}'}}}}\n"
            )
            (_job(sweep, num, config) / "metrics.json").unlink()  # unfinished: the objective comes from the config
        assert report.main([str(sweep)]) == 0
        for num in (0, 1):
            _metrics(0.5).write(sweep / str(num))
        compare.main([str(sweep / "0"), str(sweep / "1")])  # each run's seed and fold come from its stored config
    finally:
        OmegaConf.clear_resolver("genre_test_spy")
    assert calls == []


@pytest.mark.parametrize(
    "name,text,problem",
    [
        ("metrics.json", "[1, 2]", "holds a JSON list, not an object"),
        (
            "metrics.json",
            json.dumps({**_metrics(0.5).to_json(), "val/acc": {"a": 1}}),
            "val/acc is an object, not a number",
        ),
        (
            "metrics.json",
            json.dumps({**_metrics(0.5).to_json(), "labels": "ab"}),
            "labels is a string, not list of text",
        ),
        ("cv.json", "[]", "holds a JSON list, not an object"),
        (
            "cv.json",
            '{"version": 1, "folds": "3", "config": {}, "objective": "val/acc", "objective_mode": "max"}',
            "folds is a string",
        ),
    ],
)
def test_compare_on_a_damaged_run_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, problem: str
) -> None:
    good, bad = _job(tmp_path, 0), _job(tmp_path, 1)
    (bad / "metrics.json").unlink()
    (bad / name).write_text(text)
    assert compare.main([str(good), str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {bad / name}: ") and problem in err[-1], err


def test_damaged_records_are_damaged_file_errors_for_readers_that_ask(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text("[]")
    (tmp_path / "cv.json").write_text('{"version": 1}')
    (tmp_path / "status.json").write_bytes(b"\x80\x81")
    assert RunMetrics.read(tmp_path) is None and CrossValidationMetrics.read(tmp_path) is None  # training goes on
    for read in (RunMetrics.read, CrossValidationMetrics.read):
        with pytest.raises(DamagedFileError, match=rf"^{tmp_path}/"):
            read(tmp_path, strict=True)
    with pytest.raises(DamagedFileError, match=r"status\.json: not UTF-8"):
        JobStatus.read(tmp_path)


# --- end to end: what the user sees ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "override,line",
    [
        ("hydra.sweeper.n_jobs=0", "error: hydra.sweeper.n_jobs: 0 is not a whole number of at least 1"),
        ("optimizer.lr=interval(1e-2,1e-4)", "error: optimizer.lr: interval(1e-2,1e-4) ends below its start"),
    ],
)
def test_a_bad_sweep_is_one_line_and_exit_2(tmp_path: Path, cache_dir: Path, override: str, line: str) -> None:
    command = ["-m", "hparams_search=optuna", override, f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    # The first case in a real child process; the other runs the same script in process (no torch import).
    if override == "hydra.sweeper.n_jobs=0":
        result = run_cli(command, tmp_path, cache_dir, check=False)
    else:
        result = run_script(command, tmp_path, cache_dir)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1].startswith(line), result.stderr[-3000:]
    assert "Traceback" not in result.stderr

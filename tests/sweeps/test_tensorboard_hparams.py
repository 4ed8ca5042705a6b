"""TensorBoard's HPARAMS view of a pruned Optuna sweep: every trial is there (the pruned one with its
status), the columns are the searched keys plus seed, and the metrics are the runs' own scalars; checked in
the event files, through TensorBoard's HTTP API and in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import optuna
import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata

from helpers import REPO, TINY_RUN, run_cli
from helpers.services import headless_chromium
from helpers.waiting import SAFETY_TIMEOUT, wait_for

pytestmark = pytest.mark.slow

STUDY = "genre-demo"
SEARCHED = {"trainer.epochs", "optimizer.lr"}
# Trials in order: (epochs, learning rate). The threshold pruner (val/acc can never reach 2) stops the
# 3-epoch trial at epoch 2, the first epoch it may; the 1-epoch trials end before it may.
TRIALS = [(1, 0.001), (3, 0.002), (1, 0.002)]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """A 3-trial search over two keys with fixed feature and model, one trial pruned; its sweep dir."""
    work = tmp_path_factory.mktemp("tb_hparams")
    (work / "optuna").mkdir()
    storage = f"sqlite:///{work / 'optuna' / (STUDY + '.db')}"
    study = optuna.create_study(study_name=STUDY, storage=storage, direction="maximize")
    for epochs, lr in TRIALS:
        study.enqueue_trial({"trainer.epochs": epochs, "optimizer.lr": lr})
    run_cli(
        [
            "-m",
            "hparams_search=optuna",
            "hydra.sweeper.params=null",
            *TINY_RUN,
            "model=cnn",
            "feature=mel",
            "trainer.epochs=choice(1,3)",
            "optimizer.lr=choice(0.001,0.002)",
            f"hydra.sweeper.n_trials={len(TRIALS)}",
            "hydra/sweeper/pruner=threshold",
            "hydra.sweeper.pruner.lower=2.0",
            f"hydra.sweep.dir={work / 'sweep'}",
        ],
        work,
        cache_dir,
    )
    return work / "sweep"


def _trial_runs(sweep: Path) -> dict[int, Path]:
    summary = pd.read_csv(sweep / "summary.csv")
    return {int(row["trial"]): Path(row["output_dir"]) for row in summary.to_dict("records")}


def test_every_trial_opens_its_session_with_only_the_searched_keys(sweep: Path) -> None:
    runs = _trial_runs(sweep)
    assert sorted(runs) == list(range(len(TRIALS)))
    mux = EventMultiplexer().AddRunsFromDirectory(str(sweep))
    mux.Reload()
    hparams_runs = mux.PluginRunToTagToContent("hparams")
    for trial, run_dir in runs.items():
        run = str((run_dir / "tensorboard").relative_to(sweep))
        tags = hparams_runs[run]
        start = hparams_metadata.parse_session_start_info_plugin_data(tags["_hparams_/session_start_info"])
        # The fixed overrides (model, feature, TINY_RUN's settings) are no columns.
        assert set(start.hparams) == SEARCHED | {"seed"}, trial
        epochs, lr = TRIALS[trial]
        assert start.hparams["trainer.epochs"].number_value == epochs
        assert start.hparams["optimizer.lr"].number_value == pytest.approx(lr)
        experiment = hparams_metadata.parse_experiment_plugin_data(tags["_hparams_/experiment"])
        assert {info.name for info in experiment.hparam_infos if info.differs} == SEARCHED
        end = hparams_metadata.parse_session_end_info_plugin_data(tags["_hparams_/session_end_info"])
        scalars = mux.Runs()[run]["scalars"]
        if epochs == 3:  # pruned: TensorBoard's Unknown, and it never reached the test set
            assert end.status == api_pb2.STATUS_UNKNOWN and "test/acc" not in scalars
            assert json.loads((run_dir / "status.json").read_text())["status"] == "pruned"
        else:
            assert end.status == api_pb2.STATUS_SUCCESS and "test/acc" in scalars
        assert not [tag for tag in scalars if tag.startswith("hparams/")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


ALL_STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


def _session_groups(url: str, columns: list[str]) -> list[dict]:
    request = {
        "experimentName": "",
        "allowedStatuses": ALL_STATUSES,
        "colParams": [{"hparam": name} for name in columns],
        "startIndex": 0,
        "sliceSize": 100,
    }
    return _post(f"{url}/data/plugin/hparams/session_groups", request).get("sessionGroups", [])


def _has_read_every_trial(url: str) -> bool:
    try:
        return len(_session_groups(url, [])) == len(TRIALS)
    except OSError:  # still starting
        return False


@pytest.fixture
def tensorboard(sweep: Path) -> Iterator[str]:
    """``tensorboard --logdir <sweep dir>`` on a free loopback port; its URL."""
    port = _free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("tensorboard")),
            *("--logdir", str(sweep), "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "0"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _has_read_every_trial(url), "TensorBoard read every trial's run", server)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=SAFETY_TIMEOUT)


def test_tensorboard_serves_every_trial_with_the_searched_columns(tensorboard: str) -> None:
    experiment = _post(f"{tensorboard}/data/plugin/hparams/experiment", {"experimentName": ""})
    columns = [info["name"] for info in experiment["hparamInfos"]]
    assert set(columns) == SEARCHED | {"seed"} and columns[-1] == "seed", "the searched keys come first"
    metrics = {info["name"]["tag"] for info in experiment["metricInfos"]}
    assert {"val/acc", "test/acc"} <= metrics and not [tag for tag in metrics if tag.startswith("hparams/")]
    groups = _session_groups(tensorboard, columns)
    rows = sorted((g["hparams"]["trainer.epochs"], g["hparams"]["optimizer.lr"]) for g in groups)
    assert rows == sorted(TRIALS), "one row per trial, the pruned one included"
    statuses = {g["hparams"]["trainer.epochs"]: {s["status"] for s in g["sessions"]} for g in groups}
    assert statuses[3] == {"STATUS_UNKNOWN"} and statuses[1] == {"STATUS_SUCCESS"}


# The HPARAMS dashboard draws its table inside shadow roots, which Selenium's .text does not enter.
DEEP_TEXT = """
const parts = [];
const walk = (node) => {
  if (node.shadowRoot) walk(node.shadowRoot);
  for (const child of node.childNodes) {
    if (child.nodeType === Node.TEXT_NODE) parts.push(child.textContent.trim());
    else walk(child);
  }
};
walk(document.body);
return parts.filter(Boolean).join("\\n");
"""


def test_the_hparams_table_shows_every_trial_in_headless_chromium(tensorboard: str, tmp_path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    with headless_chromium(1700, 560) as driver:
        driver.get(f"{tensorboard}/#hparams")
        # The table is drawn by the page's JavaScript from the session groups above.
        WebDriverWait(driver, SAFETY_TIMEOUT).until(lambda d: "optimizer.lr" in d.execute_script(DEEP_TEXT))
        WebDriverWait(driver, SAFETY_TIMEOUT).until(lambda d: "0.002" in d.execute_script(DEEP_TEXT))
        text = driver.execute_script(DEEP_TEXT)
        for column in (*SEARCHED, "seed", "val/acc", "test/acc"):
            assert column in text, column
        for hidden in ("model", "feature", "trainer.batch_size", "hparams/"):
            assert f"\n{hidden}\n" not in f"\n{text}\n", hidden
        screenshot = tmp_path / "tensorboard-hparams.png"
        driver.save_screenshot(str(screenshot))
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("GENRE_DOCS_SCREENSHOTS"):  # refreshes the README's picture
            shutil.copy(screenshot, REPO / "docs" / "tensorboard-hparams.png")

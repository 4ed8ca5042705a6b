"""The sweep summary reads each job's typed metrics.json and ranks by the run's configured objective."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from genre.sweeps.results.summary import summarise_sweep
from helpers.records import make_metrics


def _job(sweep: Path, num: int, lr: str, scores: dict[str, float], objective: str, mode: str) -> None:
    run_dir = sweep / str(num)
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create([f"optimizer.lr={lr}"]), run_dir / ".hydra" / "overrides.yaml")
    OmegaConf.save(
        OmegaConf.create({"hydra": {"job": {"num": num}, "runtime": {"choices": {"model": "cnn"}}}}),
        run_dir / ".hydra" / "hydra.yaml",
    )
    OmegaConf.save(
        OmegaConf.create({"objective": objective, "objective_mode": mode}), run_dir / ".hydra" / "config.yaml"
    )
    make_metrics(
        scores=scores,
        objective=objective,
        objective_mode=mode,
        epochs=2,
        epochs_run=2,
    ).write(run_dir)


def test_summary_ranks_by_the_configured_objective_and_shows_it(tmp_path: Path) -> None:
    # val/acc would rank job 0 first; the runs' objective (val/segment_loss, lower is better) ranks job 1 first.
    for num, lr, acc, segment_loss in ((0, "0.1", 0.9, 0.8), (1, "0.01", 0.5, 0.2), (2, "0.001", 0.7, 0.5)):
        _job(
            tmp_path,
            num,
            lr,
            {"val/acc": acc, "val/segment_loss": segment_loss, "test/acc": acc},
            "val/segment_loss",
            "min",
        )
    summary = summarise_sweep(tmp_path)
    assert list(summary.frame["job"]) == [1, 2, 0]
    header = summary.table.splitlines()[2]
    assert "val/segment_loss" in header and "optimizer.lr" in header
    assert list(summary.frame["n_parameters"]) == [5, 5, 5]

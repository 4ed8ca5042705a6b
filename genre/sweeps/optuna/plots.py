"""Optuna's plots of a whole study as PNG files in the sweep dir.

They cover every trial of the study, those of earlier sweeps on it too (a study is one setup:
:mod:`genre.sweeps.optuna.study_setup`), while the sweep's summary covers only its own jobs; so each
figure is titled with the study, its trial count and which of them this sweep ran, and its value axis
carries the metric's name (``val/acc``), not "Objective Value".

- ``optuna_history.png``: each trial's value and the best so far (several objectives: the first).
- ``optuna_importances.png``: how much each parameter explains of the objective.
- ``optuna_parallel_coordinate.png``: every completed trial's parameters, coloured by its value.
- ``optuna_intermediate_values.png``: the objective after each epoch of every trial, pruned ones included.
- ``optuna_pareto_front.png`` (several objectives): every trial, the Pareto-optimal ones marked.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # sweeps end on headless machines
import matplotlib.pyplot as plt
import optuna
from optuna.trial import TrialState

log = logging.getLogger(__name__)

HISTORY_FILE = "optuna_history.png"
IMPORTANCES_FILE = "optuna_importances.png"
PARALLEL_FILE = "optuna_parallel_coordinate.png"
INTERMEDIATE_FILE = "optuna_intermediate_values.png"
PARETO_FILE = "optuna_pareto_front.png"


def write_study_plots(study: optuna.Study, out_dir: Path, trials: Sequence[int] = ()) -> list[Path]:
    """Draw the study's plots into ``out_dir``, titled as the whole study's, naming ``trials`` (the numbers of
    this sweep's trials); a plot that cannot be drawn is skipped with a warning (importances need two
    completed trials whose parameters vary; intermediate values need reports)."""
    title = plot_title(study, trials)
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    plots: list[tuple[str, Callable[[optuna.Study], plt.Axes | plt.Figure]]] = [
        (HISTORY_FILE, _history),
        (IMPORTANCES_FILE, _importances),
        (PARALLEL_FILE, _parallel_coordinate),
        (INTERMEDIATE_FILE, _intermediate_values),
    ]
    if len(study.directions) > 1:
        plots.append((PARETO_FILE, _pareto_front))
    written = []
    for name, plot in plots:
        if not completed and name != INTERMEDIATE_FILE:
            log.warning("No completed trial in study %s: no %s", study.study_name, name)
            continue
        try:
            # Optuna's plots switch matplotlib to its "ggplot" style globally; keep that to these figures.
            with matplotlib.rc_context(), warnings.catch_warnings():
                # Optuna marks its matplotlib backend experimental.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                drawn = plot(study)
                figure = drawn if isinstance(drawn, plt.Figure) else drawn.get_figure(root=True)
                assert isinstance(figure, plt.Figure)
                figure.set_size_inches(9, 5.5)
                figure.suptitle(title, fontsize=10)
                figure.tight_layout()
                figure.savefig(out_dir / name, dpi=120)
                plt.close(figure)
        except (ValueError, RuntimeError, ZeroDivisionError, IndexError) as exc:
            log.warning("Skipped %s: %s", name, exc)
            plt.close("all")
            continue
        written.append(out_dir / name)
    log.info(
        "Study %s: %d trials (%d completed); plots: %s",
        study.study_name,
        len(study.trials),
        len(completed),
        ", ".join(str(path) for path in written) or "none",
    )
    return written


def plot_title(study: optuna.Study, trials: Sequence[int]) -> str:
    """``Study genre-demo: all 4 trials of every sweep on it (this sweep: 2, trials 2-3)``."""
    mine = f"this sweep: {len(trials)}, trials {min(trials)}-{max(trials)}" if trials else "none from this sweep"
    return f"Study {study.study_name}: all {len(study.trials)} trials of every sweep on it ({mine})"


def metric_name(study: optuna.Study, index: int = 0) -> str:
    """The name of objective ``index`` (``set_metric_names``), or Optuna's ``Objective <index>``."""
    names = study.metric_names
    return names[index] if names and index < len(names) else f"Objective {index}"


def _first_objective(study: optuna.Study) -> dict[str, Any]:
    """``target`` arguments that plot the (first) objective under its metric's name."""
    if len(study.directions) == 1:
        return {"target_name": metric_name(study)}
    return {"target": lambda trial: trial.values[0], "target_name": metric_name(study)}


def _history(study: optuna.Study) -> plt.Axes:
    from optuna.visualization.matplotlib import plot_optimization_history

    return plot_optimization_history(study, **_first_objective(study))


def _importances(study: optuna.Study) -> plt.Axes:
    from optuna.visualization.matplotlib import plot_param_importances

    # Seeded, so the same study gives the same plot.
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    return plot_param_importances(study, evaluator=evaluator, **_first_objective(study))


def _parallel_coordinate(study: optuna.Study) -> plt.Axes:
    from optuna.visualization.matplotlib import plot_parallel_coordinate

    return plot_parallel_coordinate(study, **_first_objective(study))


def _intermediate_values(study: optuna.Study) -> plt.Axes:
    from optuna.visualization.matplotlib import plot_intermediate_values

    if not any(trial.intermediate_values for trial in study.get_trials(deepcopy=False)):
        raise ValueError("no trial reported intermediate values")
    axes = plot_intermediate_values(study)
    axes.set_ylabel(f"{metric_name(study)} after each epoch")
    return axes


def _pareto_front(study: optuna.Study) -> plt.Axes:
    from optuna.visualization.matplotlib import plot_pareto_front

    return plot_pareto_front(study)

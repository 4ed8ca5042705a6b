"""Optuna's plots of a study (optimisation history, parameter importances) as PNG files."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # sweeps end on headless machines
import matplotlib.pyplot as plt
import optuna
from optuna.trial import TrialState

log = logging.getLogger(__name__)

HISTORY_FILE = "optuna_history.png"
IMPORTANCES_FILE = "optuna_importances.png"


def write_study_plots(study_name: str | None, storage: str | None, out_dir: Path) -> list[Path]:
    """Plot every trial of the stored study into ``out_dir``; a plot that cannot be drawn is skipped
    with a warning (importances need two completed trials whose parameters vary)."""
    if storage is None:
        log.warning("The study has no storage (hydra.sweeper.storage=null): no Optuna plots")
        return []
    study = optuna.load_study(study_name=study_name, storage=storage)
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    written = []
    for name, plot in ((HISTORY_FILE, _plot_history), (IMPORTANCES_FILE, _plot_importances)):
        if not completed:
            log.warning("No completed trial in study %s: no %s", study.study_name, name)
            continue
        try:
            # optuna's plots switch matplotlib to its "ggplot" style globally; keep that to these figures.
            with matplotlib.rc_context():
                figure = plot(study)
                figure.set_size_inches(8, 5)
                figure.tight_layout()
                figure.savefig(out_dir / name, dpi=120)
                plt.close(figure)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
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


def _plot_history(study: optuna.Study) -> plt.Figure:
    # The matplotlib backend of optuna.visualization is marked experimental in optuna 2.x.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        from optuna.visualization.matplotlib import plot_optimization_history

        return plot_optimization_history(study).get_figure()


def _plot_importances(study: optuna.Study) -> plt.Figure:
    """Optuna's importances, drawn here: with optuna 2.10 and matplotlib >= 3.9 its
    ``plot_param_importances`` calls the removed ``matplotlib.cm.get_cmap``, and its default fANOVA
    evaluator fails on scikit-learn >= 1.3's tree arrays; the random forest's impurity-based
    importances work and are seeded for repeatable plots."""
    evaluator = optuna.importance.MeanDecreaseImpurityImportanceEvaluator(seed=0)
    importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
    names = list(importances)[::-1]  # most important on top
    figure, axes = plt.subplots()
    bars = axes.barh(names, [importances[name] for name in names], color="tab:blue")
    axes.bar_label(bars, fmt="%.2f", padding=3)
    axes.set_xlabel("importance for the objective value (mean decrease in impurity)")
    n_completed = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    axes.set_title(f"Hyperparameter importances ({study.study_name}, {n_completed} trials)")
    return figure

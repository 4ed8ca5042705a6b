"""Sweeps: ``jobs/`` is the Hydra plumbing around each job (callbacks, the grid sweeper, the isolated joblib
launcher, the failure budget, ``status.json``), ``optuna/`` our Optuna sweeper (search space, sampler,
trial scheduling, pruning, the study's storage, plots, dashboard), ``results/`` what a sweep's run folders
add up to (reading them, configurations, the summary files, heatmap, Pareto front)."""

"""Our Optuna 5 sweeper (``hparams_search=optuna``): the sweep grammar as distributions, samplers, trials
asked and told, pruning on the job's side, the study's storage, its plots and the read-only dashboard."""

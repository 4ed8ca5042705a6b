"""Hydra's side of every job: callbacks, the grid sweeper, the isolated joblib launcher,
failed jobs and ``status.json``."""

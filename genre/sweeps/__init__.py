"""Sweeps: per-job status records, failure-tolerant sweepers, the sweep summary and Optuna's plots."""

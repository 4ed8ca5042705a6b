"""Statistics for comparing runs honestly: metrics from predictions, intervals, paired tests, grouping.

Pure functions over numpy arrays and pandas frames (numpy, scipy, statsmodels, scikit-learn; no torch,
no Hydra), so the run, the sweep summary and ``genre.cli.compare`` all compute the same numbers the same way.

- :mod:`genre.comparison.metrics`: accuracy, balanced accuracy, macro-F1, per-class recall and F1 from
  true/predicted labels; a seeded bootstrap interval for accuracy.
- :mod:`genre.comparison.intervals`: mean, std and Student-t interval of a metric over repeats.
- :mod:`genre.comparison.significance`: paired t-test, Nadeau & Bengio's corrected resampled t-test,
  McNemar's exact test, Holm's adjustment.
- :mod:`genre.comparison.grouping`: jobs differing only in seed or fold grouped into configurations,
  each compared with the best by the right paired test.
"""

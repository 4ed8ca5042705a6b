"""One run, end to end, as named phases: ``run.py`` calls :func:`run_experiment`.

- :mod:`~genre.experiment.spec`: :class:`~genre.experiment.spec.RunSpec`, the run's config parsed, checked
  (each setting's declared rule, from :mod:`~genre.experiment.checks`) and resolved once, before any work;
  :mod:`~genre.experiment.resume`: which settings a continued run may change.
- :mod:`~genre.experiment.launch`: where the run happens (this process, spawned data-parallel
  processes, or one rank of a ``torchrun`` launch).
- :mod:`~genre.experiment.phases`: :class:`~genre.experiment.phases.Run`, the run itself, read from the spec
  alone: build data -> build pipeline -> start fresh or restore -> fit -> test the best checkpoint -> write
  outputs.
- :mod:`~genre.experiment.pipeline`: features + model from a config, shared by training and ``genre.cli.predict``.
- :mod:`~genre.experiment.outputs`: ``predictions.csv`` and the scores beyond accuracy a finished run writes.
- :mod:`~genre.experiment.provenance`: ``provenance.json``, where a run's numbers come from (split, data, code).
- :mod:`~genre.experiment.cross_validation`: ``cv.folds=k``, the k folds as one job returning their mean.
"""

from genre.experiment.launch import run_experiment

__all__ = ["run_experiment"]

"""The command-line tools: ``genre-predict``, ``genre-report``, ``genre-compare`` and ``genre-prepare``
(each also ``python -m genre.cli.<name>``). ``run.py`` is the fifth, Hydra's entry point."""

"""Tiny run settings, and running a configuration as ``run.py`` does (a process, or composed in-process)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from genre import CONFIG_DIR
from helpers.checkout import RUN_PY
from helpers.waiting import SAFETY_TIMEOUT

# A demo corpus small enough for tests: 6 genres x 4 clips of 4 s ...
TINY_DEMO = [
    "dataset.source.clips_per_genre=4",
    "dataset.source.clip_seconds=4.0",
    "dataset.clip_seconds=4.0",
]
# ... and a small CRNN on mel spectrograms trained for 1 epoch on 2-s crops (named: the root default is a
# closed-form probe on pretrained features). Put a test's own feature= or model= after these: the last wins.
TINY_TRAINING = [
    "feature=mel",
    "model=crnn",
    "trainer.segment_seconds=2.0",
    "trainer.epochs=1",
    "trainer.batch_size=8",
    "trainer.progress=false",
    "model.channels=[8,16]",
]
TINY_RUN = TINY_DEMO + TINY_TRAINING


def run_cli(
    args: Sequence[str], cwd: Path, cache: Path, timeout: float = SAFETY_TIMEOUT, check: bool = True
) -> subprocess.CompletedProcess:
    """Run ``python run.py ARGS`` in ``cwd`` (outputs land there) with ``GENRE_CACHE=cache``."""
    # run.py puts its own folder first on sys.path; its sweep jobs import the installed package.
    env = {**os.environ, "GENRE_CACHE": str(cache), "HYDRA_FULL_ERROR": "0"}
    result = subprocess.run(
        [sys.executable, str(RUN_PY), *args], cwd=cwd, env=env, text=True, capture_output=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(f"run.py {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def compose_config(overrides: Sequence[str]):
    """Compose the root config with its ``hydra`` node and make it current, as ``run.py`` would.

    ``${hydra:...}`` interpolations then resolve as in a real run.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True, overrides=list(overrides))
    HydraConfig.instance().set_config(cfg)
    return cfg


def compose_run(overrides: Sequence[str], run_dir: Path, cache: Path):
    """:func:`compose_config` for an in-process run writing into ``run_dir`` with its cache under ``cache``."""
    return compose_config([*overrides, f"hydra.runtime.output_dir={run_dir}", f"paths.cache_dir={cache}"])


def run_script(args: Sequence[str], cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    """Run ``run.py ARGS`` as ``python run.py`` would, but in this process (``run_cli(check=False)``'s result).

    For tests of the command line's refusals: the script itself runs (its ``__main__`` block, Hydra's
    parsing, the one-line error path), without the seconds a child spends importing torch and Hydra.
    The process state the script changes (argv, environment, cwd, logging, signal handlers, Hydra's
    globals) is put back afterwards. A bug's exception propagates (a child would print its traceback and
    exit 1). Keep at least one real ``run_cli`` per command line under test.
    """
    import contextlib
    import io
    import logging
    import runpy
    import signal

    from hydra.core.global_hydra import GlobalHydra

    saved_argv, saved_env, saved_cwd = list(sys.argv), dict(os.environ), os.getcwd()
    loggers = [
        logging.getLogger(),
        *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]
    saved_loggers = [(lg, list(lg.handlers), lg.level, lg.propagate, lg.disabled) for lg in loggers]
    saved_signals = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    stdout, stderr = io.StringIO(), io.StringIO()
    returncode = 0
    try:
        os.environ.update(GENRE_CACHE=str(cache), HYDRA_FULL_ERROR="0")
        os.chdir(cwd)
        sys.argv = [str(RUN_PY), *args]
        GlobalHydra.instance().clear()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            runpy.run_path(str(RUN_PY), run_name="__main__")
    except SystemExit as exc:
        returncode = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        GlobalHydra.instance().clear()
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        for lg in logging.Logger.manager.loggerDict.values():
            if isinstance(lg, logging.Logger) and lg not in loggers:
                for handler in lg.handlers:
                    handler.close()
                lg.handlers.clear()
        for lg, handlers, level, propagate, disabled in saved_loggers:
            for handler in lg.handlers:
                if handler not in handlers:
                    handler.close()
            lg.handlers[:], lg.level, lg.propagate, lg.disabled = handlers, level, propagate, disabled
        for signum, handler in saved_signals.items():
            signal.signal(signum, handler)
    return subprocess.CompletedProcess([str(RUN_PY), *args], returncode, stdout.getvalue(), stderr.getvalue())

"""A run's ``provenance.json`` (:class:`~genre.run_files.Provenance`), written by rank 0 once its data is
prepared: the split that actually divided the clips, the audio cache and clip counts, the code and library
versions and the command line."""

from __future__ import annotations

import inspect
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from genre.core.url_passwords import mask_text
from genre.core.versions import code_version, library_versions
from genre.data.prepare import PreparedData
from genre.run_files import Provenance


def split_used(split: DictConfig) -> tuple[str, dict[str, Any]]:
    """The class a ``dataset.split`` node builds (its dotted path) and every parameter it runs with: the node's
    own values, then the class's defaults for the rest (a reader should not need genre's source to know them)."""
    kind = get_class(str(split._target_))
    given = OmegaConf.to_container(split, resolve=True)
    assert isinstance(given, dict)
    parameters = {str(key): value for key, value in given.items() if not str(key).startswith("_")}
    try:
        signature = inspect.signature(kind)
    except (TypeError, ValueError):  # no signature to read: the node's own values are all there is
        return f"{kind.__module__}.{kind.__qualname__}", parameters
    for name, parameter in signature.parameters.items():
        if name not in parameters and parameter.default is not inspect.Parameter.empty:
            parameters[name] = parameter.default
    return f"{kind.__module__}.{kind.__qualname__}", parameters


def run_provenance(split: DictConfig, prepared: PreparedData, resumed_from: str | None = None) -> Provenance:
    """This launch's provenance of a run whose clips ``split`` divided into ``prepared``."""
    kind, parameters = split_used(split)
    fold = parameters.get("fold")
    code = code_version()
    return Provenance(
        split=kind,
        split_parameters=parameters,
        fold=fold if isinstance(fold, int) and not isinstance(fold, bool) else None,
        audio_cache=prepared.cache.directory.name,
        n_clips={name: len(clips) for name, clips in prepared.splits.items()},
        skipped=len(prepared.skipped),
        package_version=code.package_version,
        git_commit=code.git_commit,
        git_dirty=code.git_dirty,
        libraries=library_versions(),
        command=[mask_text(str(arg)) for arg in sys.argv],  # a study URL's password never reaches a file
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        resumed_from=resumed_from,
    )


def write_provenance(
    run_dir: Path, split: DictConfig, prepared: PreparedData, resumed_from: str | None = None
) -> Provenance:
    """Write the run's ``provenance.json``; a resumed run keeps the launches recorded before it in ``earlier``."""
    record = run_provenance(split, prepared, resumed_from)
    if resumed_from is not None:
        before = Provenance.read(run_dir)  # a damaged or missing one: this launch's record stands alone
        if before is not None:
            record.earlier = [*before.earlier, before.launch()]
    run_dir.mkdir(parents=True, exist_ok=True)
    record.write(run_dir)
    return record

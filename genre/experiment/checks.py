"""The rules a run's config is checked by (:mod:`genre.experiment.spec` declares one beside each setting),
and the checks that need more than the value: the file system, the feature's FFT window, unset keys."""

from __future__ import annotations

import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from genre.core.errors import ConfigError

log = logging.getLogger(__name__)

# Longer clips than this (an hour) are a typo, and would ask for gigabytes per clip.
MAX_CLIP_SECONDS = 3600.0
# Which ends an Interval includes.
CLOSED = ("left", "right", "both", "neither")


@dataclass(frozen=True)
class Interval:
    """A rule: a number (a whole one for ``kind=int``) from ``low`` to ``high`` (None: unbounded), the ends
    ``closed`` names included; ``optional``: null is allowed. ``fix`` (or ``Use e.g. <key>=<example>``)
    ends the message of a value it refuses."""

    kind: type[int] | type[float]
    low: float | None = None
    high: float | None = None
    closed: str = "left"
    example: str = ""
    optional: bool = False
    unit: str = ""
    fix: str = ""

    def __post_init__(self) -> None:
        if self.closed not in CLOSED:
            raise ValueError(f"closed: '{self.closed}' is not one of {', '.join(CLOSED)}")

    def check(self, key: str, value: Any) -> Any:
        """``value`` as a ``kind`` (None when optional and null); :class:`ConfigError` naming ``key`` if refused."""
        fix = self.fix or f"Use e.g. {key}={self.example}"
        if value is None:
            if self.optional:
                return None
            raise ConfigError(key, "is not set", fix)
        whole = self.kind is int
        try:
            number = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number) or (whole and number != int(number)):
            raise ConfigError(key, f"'{value}' is not a {'whole ' if whole else ''}number", fix)
        if not self.holds(number):
            shown = str(int(number)) if whole else f"{number:g}"
            raise ConfigError(key, f"{shown}{self.unit} is not {self.describe()}", fix)
        return self.kind(number)

    def holds(self, number: float) -> bool:
        """Whether ``number`` lies in the interval."""
        low_in = self.closed in ("left", "both")
        high_in = self.closed in ("right", "both")
        above = self.low is None or number > self.low or (low_in and number == self.low)
        below = self.high is None or number < self.high or (high_in and number == self.high)
        return above and below

    def describe(self) -> str:
        """The interval in words: ``above 0``, ``at least 1``, ``within (0, 3600] s``."""
        low_in = self.closed in ("left", "both")
        high_in = self.closed in ("right", "both")
        if self.low is not None and self.high is not None:
            opening, closing = "[" if low_in else "(", "]" if high_in else ")"
            return f"within {opening}{self.low:g}, {self.high:g}{closing}{self.unit}"
        if self.low is not None:
            return f"{'at least' if low_in else 'above'} {self.low:g}"
        if self.high is not None:
            return f"{'at most' if high_in else 'below'} {self.high:g}"
        return "a number"


@dataclass(frozen=True)
class Options:
    """A rule: one of ``values`` (compared as text); ``fix`` ends the message of any other value."""

    values: tuple[str, ...]
    fix: str

    def check(self, key: str, value: Any) -> str:
        """``value`` as text; :class:`ConfigError` naming ``key`` if it is none of the options."""
        if str(value) not in self.values:
            raise ConfigError(key, f"'{value}' is not one of {', '.join(self.values)}", self.fix)
        return str(value)


@dataclass(frozen=True)
class Flag:
    """A rule: true or false (a YAML boolean, not a word that merely looks like one)."""

    def check(self, key: str, value: Any) -> bool:
        """``value``; :class:`ConfigError` naming ``key`` if it is not a boolean."""
        if not isinstance(value, bool):
            raise ConfigError(key, f"'{value}' is not true or false", f"Use {key}=true or {key}=false")
        return value


def check_clip_seconds(key: str, seconds: float, sample_rate: int, n_fft: int | None) -> None:
    """Refuse an analysis length that is not positive, longer than an hour, or shorter than the
    feature's FFT window of ``n_fft`` samples (``feature.transform.n_fft``; None: no window)."""
    if not 0 < seconds <= MAX_CLIP_SECONDS:
        raise ConfigError(
            key, f"{seconds:g} s is not within (0, {MAX_CLIP_SECONDS:g}] s", "Use the clip length in seconds"
        )
    check_fft_window(key, seconds, sample_rate, n_fft)


def check_fft_window(key: str, seconds: float, sample_rate: int, n_fft: int | None) -> None:
    """Refuse an analysis length shorter than the feature's FFT window of ``n_fft`` samples (None: no window)."""
    if n_fft and round(seconds * sample_rate) < int(n_fft):
        raise ConfigError(
            key,
            f"{seconds:g} s is shorter than the feature's FFT window (feature.transform.n_fft="
            f"{n_fft}, {int(n_fft) / sample_rate:.3f} s)",
            "Use longer segments, or a smaller n_fft",
        )


def check_writable(key: str, directory: Any) -> None:
    """Refuse a directory this process cannot create or write in (checked by writing a file there)."""
    if directory is None:
        return
    path = Path(str(directory)).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(
            key,
            f"cannot write in '{path}' ({exc.strerror or exc})",
            f"Point {key} at a writable folder{' (or set GENRE_CACHE)' if 'cache' in key else ''}",
        ) from None


def check_cache_dir(directory: Any) -> None:
    """Refuse a ``paths.cache_dir`` this process can neither write in nor reuse caches from.

    A folder that cannot be written but holds caches (prepared ahead on a read-only mount, shared on a
    cluster) is accepted: its finished caches are reused, and one that would have to be built there is
    refused when that happens, with one line naming ``paths.cache_dir`` (genre.data.cache_integrity).
    """
    try:
        check_writable("paths.cache_dir", directory)
    except ConfigError:
        path = Path(str(directory)).expanduser()
        if not any(os.access(path / part, os.R_OK | os.X_OK) for part in ("audio", "embeddings")):
            raise
        log.info("paths.cache_dir '%s' is read-only here: its finished caches are reused, none is built", path)


def check_mandatory(cfg: DictConfig, prefix: str = "") -> None:
    """Refuse a mandatory value (``???``) left unset, e.g. ``dataset.root`` of ``dataset=gtzan``."""
    for key in cfg:
        if not prefix and key == "hydra":
            continue
        dotted = f"{prefix}{key!s}"
        if OmegaConf.is_missing(cfg, key):
            raise ConfigError(dotted, "is not set", f"Add {dotted}=... to the command line (see the README)")
        node = None if OmegaConf.is_interpolation(cfg, str(key)) else cfg[key]  # never resolves an interpolation
        if isinstance(node, DictConfig):
            check_mandatory(node, f"{dotted}.")

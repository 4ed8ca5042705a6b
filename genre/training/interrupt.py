"""Turning Ctrl-C and SIGTERM (a SLURM pre-emption) into a stop at the next safe point."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType

from genre.core.errors import TrainingInterrupted

log = logging.getLogger(__name__)

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """While installed (``with``), SIGINT/SIGTERM only record a request; training checks it after each
    step, saves ``last.pt`` and exits cleanly. A second Ctrl-C (SIGINT) stops at once
    (KeyboardInterrupt), for when saving itself hangs; further SIGTERMs are ignored, because launchers
    follow a Ctrl-C with a SIGTERM of their own (torchrun does) and that must not cancel the save.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}
        # While set (see :meth:`at_once`), a stop signal raises instead of waiting for a safe point.
        self._at_once: str | None = None

    @property
    def requested(self) -> bool:
        """Whether a stop signal arrived."""
        return self.signum is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._at_once is not None:
            self.signum = signum
            raise self._interrupted()
        if self.signum is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt("second Ctrl-C: stopping without saving")
            return
        self.signum = signum
        log.warning(
            "%s received: saving last.pt at the end of this step, then exiting (Ctrl-C again to stop now)",
            signal.Signals(signum).name,
        )

    @contextlib.contextmanager
    def at_once(self, doing: str) -> Iterator[None]:
        """Within the block, a stop signal raises :class:`TrainingInterrupted` right away.

        For work with no safe point to save (decoding the audio cache, generating the demo corpus):
        its builders remove what they wrote when the exception passes, and a SLURM grace period is
        seconds, not the whole build. ``doing`` says what was stopped (``"building the audio cache"``).
        A signal that arrived before the block raises on entry.
        """
        self._at_once = doing
        try:
            if self.signum is not None:
                raise self._interrupted()
            yield
        finally:
            self._at_once = None

    def _interrupted(self) -> TrainingInterrupted:
        assert self.signum is not None
        return TrainingInterrupted(
            self.signum,
            f"{signal.Signals(self.signum).name} received while {self._at_once}: "
            "stopped at once, nothing of it kept; run the same command again to start over",
        )

    def __enter__(self) -> StopRequest:
        # Handlers can only be set from the main thread (a sweep launcher may run jobs in threads).
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()

"""Turning Ctrl-C and SIGTERM (a SLURM pre-emption) into a stop at the next safe point."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType, TracebackType

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

    @property
    def requested(self) -> bool:
        """Whether a stop signal arrived."""
        return self.signum is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt("second Ctrl-C: stopping without saving")
            return
        self.signum = signum
        log.warning(
            "%s received: saving last.pt at the end of this step, then exiting (Ctrl-C again to stop now)",
            signal.Signals(signum).name,
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

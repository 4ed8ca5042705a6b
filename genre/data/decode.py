"""Decoding one audio file into a fixed-length mono clip at the run's sample rate."""

from __future__ import annotations

import errno
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

INT16_SCALE = 32768.0
# Errors of reading a file (not of what it holds): I/O, permissions, a stale network file handle, a timeout.
_READ_ERRNOS = frozenset({errno.EIO, errno.EACCES, errno.EPERM, errno.ESTALE, errno.ETIMEDOUT, errno.ENOENT})


def int16_to_float(audio: torch.Tensor) -> torch.Tensor:
    """Clips as stored (int16, on any device) as float32 samples in [-1, 1): the one place the scale is applied.

    Raises ValueError naming ``audio`` for any other dtype: float samples are scaled already, and a
    precomputed feature's activations are not audio (they never pass through here).
    """
    if audio.dtype != torch.int16:
        raise ValueError(f"audio: int16_to_float takes int16 samples as stored in the audio cache, got {audio.dtype}")
    return audio.float().div_(INT16_SCALE)


class DecodeError(Exception):
    """A file cannot become a clip because of what it holds (empty, undecodable, too short); the message is
    the reason recorded in the cache's skip list."""


class UnreadableFile(Exception):
    """A file could not be read just now: missing, permission denied, an I/O error, changed while decoded.

    That is a fact about the moment (a network file system's hiccup, a copy in progress), not about
    the file, so a cache never records it as a skip: it would stay skipped after the file is back.
    """


@dataclass(frozen=True)
class ClipFormat:
    """How every file of a dataset becomes a clip: rate, length and what to do with short files."""

    sample_rate: int
    clip_seconds: float
    # Files shorter than this are skipped; between this and clip_seconds they are handled by short_clips.
    # 0: half the clip, so that no clip is mostly padding (a broken download is not a clip of silence).
    min_seconds: float = 0.0
    # "pad": zero-pad short files to clip_seconds; "skip": skip every file shorter than clip_seconds.
    short_clips: str = "pad"

    @property
    def shortest_seconds(self) -> float:
        """The shortest file that becomes a clip: ``min_seconds``, or half the clip when that is 0."""
        return self.min_seconds if self.min_seconds > 0 else self.clip_seconds / 2

    @property
    def clip_samples(self) -> int:
        """Samples per clip."""
        return int(round(self.sample_rate * self.clip_seconds))


def warm_up(fmt: ClipFormat) -> None:
    """Pay the decoder's one-off start-up costs (importing scipy, librosa's first-call set-up: seconds).

    Called in the process that forks the decode workers, so that they inherit a warm decoder instead
    of each paying again.
    """
    import io

    import librosa
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.zeros((441, 2), dtype=np.float32), 44100, format="WAV", subtype="PCM_16")
    buffer.seek(0)
    librosa.load(buffer, sr=fmt.sample_rate, mono=True, res_type="soxr_hq", dtype=np.float32)


def decode_clip(path: str | Path, fmt: ClipFormat) -> np.ndarray:
    """Decode ``path``, mix to mono, resample (soxr high quality) and pad or trim to the clip length.

    Returns int16 samples (half the bytes of float32, and the resolution of the CD/GTZAN sources).
    Raises :class:`DecodeError` with the reason when the file is empty, undecodable or too short, and
    :class:`UnreadableFile` when it cannot be read just now (missing, no permission, an I/O error).
    """
    import librosa  # heavy import, only in the processes that decode

    path = Path(path)
    before = _readable_status(path)
    if before.st_size == 0:
        raise DecodeError("zero-byte file")
    try:
        with warnings.catch_warnings():
            # librosa warns before falling back to audioread; the outcome is what we report.
            warnings.simplefilter("ignore")
            audio, _ = librosa.load(
                path, sr=fmt.sample_rate, mono=True, duration=fmt.clip_seconds, res_type="soxr_hq", dtype=np.float32
            )
    except Exception as exc:  # every decoder failure is a reason to skip, never a crash
        _raise_if_unreadable(path, before, exc)
        raise DecodeError(f"undecodable ({_why_undecodable(path, exc)})") from exc
    if audio.size == 0:
        raise DecodeError("no audio samples (empty or truncated file)")
    if not np.all(np.isfinite(audio)):
        raise DecodeError("decoded samples are not finite")
    seconds = audio.size / fmt.sample_rate
    if seconds < fmt.min_seconds:
        raise DecodeError(f"too short ({seconds:.2f} s < min_seconds={fmt.min_seconds:g} s)")
    if seconds < fmt.shortest_seconds:
        raise DecodeError(
            f"too short ({seconds:.3g} s < half the {fmt.clip_seconds:g}-s clip: truncated, or mostly "
            f"padding; set dataset.min_seconds to keep such files)"
        )
    n = fmt.clip_samples
    if audio.size < n:
        if fmt.short_clips == "skip":
            raise DecodeError(f"shorter than the clip ({seconds:.2f} s < clip_seconds={fmt.clip_seconds:g} s)")
        audio = np.pad(audio, (0, n - audio.size))
    audio = audio[:n]
    peak = float(np.abs(audio).max())
    if peak > 1.0:
        # Float files may exceed full scale; scaling keeps the waveform, clipping would distort it.
        audio = audio / peak
    return np.clip(np.round(audio * INT16_SCALE), -INT16_SCALE, INT16_SCALE - 1).astype(np.int16)


def _readable_status(path: Path) -> os.stat_result:
    """The file's status, once it has been opened and its first byte read: whatever stops that is an
    :class:`UnreadableFile`. Something other than a regular file there (a folder, a FIFO) is a
    :class:`DecodeError`: that is what the path holds."""
    try:
        # O_NONBLOCK: a FIFO in the dataset must not hang the build (no effect on regular files).
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError as exc:
        # Datasets list files that are not there (FMA's metadata covers tracks without audio).
        raise UnreadableFile("file missing" if not path.is_symlink() else "broken symbolic link") from exc
    except OSError as exc:
        raise UnreadableFile(f"cannot open it: {exc.strerror or exc}") from exc
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise DecodeError("a folder, not a file" if stat.S_ISDIR(status.st_mode) else "not a regular file")
        os.read(fd, 1)
    except OSError as exc:
        raise UnreadableFile(f"cannot read it: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    return status


def _raise_if_unreadable(path: Path, before: os.stat_result, error: BaseException) -> None:
    """Raise :class:`UnreadableFile` when the decoder's ``error`` came from reading (an ``OSError`` behind
    it) or the file vanished or changed while it was decoded; return when the content is to blame."""
    try:
        after = os.stat(path)
    except OSError as exc:
        raise UnreadableFile(f"vanished while being decoded: {exc.strerror or exc}") from error
    if (after.st_ino, after.st_size, after.st_mtime_ns) != (before.st_ino, before.st_size, before.st_mtime_ns):
        raise UnreadableFile("changed while being decoded") from error
    cause: BaseException | None = error
    while cause is not None:
        # Only a read error on this very file: a decoder's fallback chain also holds OSErrors of its own
        # (audioread looking for an ffmpeg that is not installed).
        if isinstance(cause, OSError) and cause.errno in _READ_ERRNOS and cause.filename in (None, str(path)):
            raise UnreadableFile(f"cannot read it: {cause.strerror or cause}") from error
        cause = cause.__cause__ or cause.__context__


def _why_undecodable(path: Path, exc: Exception) -> str:
    """The most telling one-line reason: librosa's last resort (audioread) fails with an empty
    NoBackendError, so the first decoder's (soundfile's) complaint says more."""
    message = str(exc).strip()
    if not message:
        import soundfile as sf

        try:
            sf.info(str(path))
        except Exception as first:  # noqa: BLE001 - only its message is wanted
            message = getattr(first, "error_string", None) or str(first)
            return f"no decoder reads it: truncated, corrupt or not audio; soundfile: {message.strip().splitlines()[0]}"
        return f"no decoder reads it ({type(exc).__name__})"
    return f"{type(exc).__name__}: {message.splitlines()[0]}"

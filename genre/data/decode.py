"""Decoding one audio file into a fixed-length mono clip at the run's sample rate."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

INT16_SCALE = 32768.0


def int16_to_float(audio: torch.Tensor) -> torch.Tensor:
    """Clips as stored (int16, on any device) as float32 samples in [-1, 1): the one place the scale is applied.

    Inputs that are already floating point (a frozen feature's cached activations) are returned as float32, unscaled.
    """
    if audio.is_floating_point():
        return audio.float()
    return audio.float().div_(INT16_SCALE)


class DecodeError(Exception):
    """A file cannot become a clip; the message is the reason recorded in the cache's skip list."""


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
    Raises :class:`DecodeError` with the reason when the file is empty, unreadable or too short.
    """
    import librosa  # heavy import, only in the processes that decode

    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        # Datasets list files that are not there (FMA's metadata covers tracks without audio).
        raise DecodeError("file missing" if not path.is_symlink() else "broken symbolic link") from exc
    except OSError as exc:
        raise DecodeError(f"cannot stat file: {exc.strerror or exc}") from exc
    if size == 0:
        raise DecodeError("zero-byte file")
    try:
        with warnings.catch_warnings():
            # librosa warns before falling back to audioread; the outcome is what we report.
            warnings.simplefilter("ignore")
            audio, _ = librosa.load(
                path, sr=fmt.sample_rate, mono=True, duration=fmt.clip_seconds, res_type="soxr_hq", dtype=np.float32
            )
    except Exception as exc:  # every decoder failure is a reason to skip, never a crash
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

"""A pretrained note transcriber as a feature: basic-pitch's (Spotify, ICASSP 2022) posteriorgrams.

The audio is cut as basic-pitch's own inference cuts it (``inference.run_inference``): resampled to
22050 Hz, 15 frames (3840 samples) of silence put in front, windows of 43844 samples every 36164
samples (30 frames of overlap), each window's 172 frames trimmed by 15 at both ends: 142 frames of hop
256 per window. A window is one patch here; only whole windows are used (basic-pitch pads the last one
with silence instead), so a clip of ``s`` seconds gives ``floor((s * 22050 + 3840 - 43844) / 36164) + 1``
patches. Each window is normalised on its own (the network's log-power normalisation), as in the original.

Output ``(batch, dims, patches * 142)``: ``note`` or ``onset`` (88 piano keys) or ``contour`` (264
third-of-a-semitone bins). Always frozen, so it declares itself ``precomputed``: a run computes it once
per clip into the embedding cache.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import Tensor, nn

from genre.pretrained.basic_pitch import HOP, SAMPLE_RATE, WINDOW_SAMPLES, load_network, onnx_fingerprint

# basic-pitch's inference: 30 overlapping frames between windows, half of them trimmed on each side.
OVERLAP_FRAMES = 30
TRIM = OVERLAP_FRAMES // 2
WINDOW_HOP = WINDOW_SAMPLES - OVERLAP_FRAMES * HOP  # 36164
LEAD = TRIM * HOP  # silence in front of the first window: 3840
# Bumped when what this feature computes changes, so embedding caches of the old code are rebuilt.
FEATURE_VERSION = 1


class BasicPitch(nn.Module):
    """Posteriorgrams of basic-pitch's note transcription network, per window of about 1.6 s.

    Args:
        sample_rate: the run's sample rate (resampled to 22050 Hz here).
        layer: ``note`` | ``onset`` (88 keys) | ``contour`` (264 bins) per frame (hop 256 at 22050 Hz).
        cache: computed once per audio cache into the embedding cache (shared by runs); false recomputes
            it in every run.
        windows_per_pass: windows pushed through the network at once (bounds activation memory).
    """

    precomputed = True
    frozen = True
    trainable = False
    steps_per_patch = WINDOW_SAMPLES // HOP + 1 - 2 * TRIM  # 142
    patch_seconds = (WINDOW_SAMPLES - LEAD) / SAMPLE_RATE  # the first window's audio: about 1.8 s

    def __init__(self, sample_rate: int, layer: str = "note", cache: bool = True, windows_per_pass: int = 8) -> None:
        super().__init__()
        self.net = load_network()
        if layer not in self.net.LAYERS:
            raise ValueError(f"layer: '{layer}' is not a basic-pitch output. Use one of {', '.join(self.net.LAYERS)}")
        if windows_per_pass < 1:
            raise ValueError(f"windows_per_pass: must be >= 1, got {windows_per_pass}. Use e.g. 8")
        self.layer, self.sample_rate, self.cache = layer, int(sample_rate), bool(cache)
        self.windows_per_pass = int(windows_per_pass)
        self.n_bands = self.net.LAYERS[layer]
        self.resample: nn.Module = (
            torchaudio.transforms.Resample(self.sample_rate, SAMPLE_RATE)
            if self.sample_rate != SAMPLE_RATE
            else nn.Identity()
        )
        self.net.requires_grad_(False)

    def train(self, mode: bool = True) -> BasicPitch:
        """Set training mode; the network itself always stays in eval mode (it is never trained)."""
        super().train(mode)
        self.net.eval()
        return self

    def identity(self) -> dict[str, object]:
        """Everything the output depends on besides the audio: the embedding cache's key hashes it."""
        return {
            "feature_version": FEATURE_VERSION,
            "model": "basic-pitch nmp",
            "layer": self.layer,
            "weights": onnx_fingerprint(),
            "sample_rate": self.sample_rate,
            "grid": {"rate": SAMPLE_RATE, "window": WINDOW_SAMPLES, "hop": WINDOW_HOP, "lead": LEAD, "trim": TRIM},
        }

    def windows_in(self, samples: int) -> int:
        """Whole windows in a waveform of ``samples`` samples at the run's rate (what :meth:`embed` cuts)."""
        resampled = -(-samples * SAMPLE_RATE // self.sample_rate)  # torchaudio's ceil(n * new / old)
        padded = LEAD + resampled
        return 0 if padded < WINDOW_SAMPLES else (padded - WINDOW_SAMPLES) // WINDOW_HOP + 1

    def steps_in(self, samples: int) -> int:
        """Steps of the posteriorgram of a waveform of ``samples`` samples: its whole windows' frames."""
        return self.windows_in(samples) * self.steps_per_patch

    def embed(self, waveform: Tensor) -> Tensor:
        """``(batch, samples)`` float waveforms -> ``(batch, n_bands, windows * 142)`` posteriors.

        Raises ValueError naming ``waveform`` for anything else, or for audio shorter than one window.
        """
        return self.posteriorgrams(waveform, (self.layer,))[self.layer].transpose(1, 2)

    def posteriorgrams(self, waveform: Tensor, layers: tuple[str, ...]) -> dict[str, Tensor]:
        """``(batch, samples)`` float waveforms -> each of ``layers`` as ``(batch, windows * 142, dims)``,
        time-major, from one pass of the network (what :meth:`embed` returns for one layer, transposed).

        Raises ValueError naming ``waveform`` for anything else, or for audio shorter than one window.
        """
        if waveform.dim() != 2 or not waveform.is_floating_point():
            raise ValueError(
                f"waveform: BasicPitch takes float waveforms (batch, samples), got {waveform.dtype} of shape "
                f"{tuple(waveform.shape)}. Scale int16 clips with int16_to_float"
            )
        with torch.no_grad(), torch.autocast(device_type=waveform.device.type, enabled=False):
            audio = nn.functional.pad(self.resample(waveform.float()), (LEAD, 0))
            if audio.shape[-1] < WINDOW_SAMPLES:
                raise ValueError(
                    f"waveform: basic-pitch needs at least {self.patch_seconds:.2f} s of audio; got "
                    f"{waveform.shape[-1] / self.sample_rate:.2f} s: raise trainer.segment_seconds"
                )
            windows = audio.unfold(-1, WINDOW_SAMPLES, WINDOW_HOP)  # (batch, n, 43844)
            batch, n = windows.shape[:2]
            outputs = [
                self.net(chunk) for chunk in windows.reshape(batch * n, WINDOW_SAMPLES).split(self.windows_per_pass)
            ]
        # (batch * n, 142, dims) -> (batch, n * 142, dims): windows follow each other in time.
        return {
            layer: torch.cat([out[layer][:, TRIM:-TRIM] for out in outputs]).reshape(
                batch, n * self.steps_per_patch, -1
            )
            for layer in layers
        }

    def forward(self, waveform: Tensor) -> Tensor:
        """Float waveforms ``(batch, samples)`` -> posteriors (:meth:`embed`)."""
        return self.embed(waveform)

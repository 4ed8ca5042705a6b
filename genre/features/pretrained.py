"""A pretrained music tagger as a feature: musicnn / VGG (Pons & Serra 2019) layer activations per 3-s patch.

The input pipeline is the original's, computed in float32 on the run's device: resample to 16 kHz,
96-band Slaney mel power spectrogram (n_fft 512, hop 256), ``log10(1 + 10000 x)``, consecutive
non-overlapping patches of 187 frames (3 s; a trailing remainder is dropped). The original casts the
mel power to float16 before the logarithm, which overflows on most real music; we do not.

Output: ``(batch, dims, steps)`` like every feature: one step per patch for the pooled layers
(``max_pool``, ``mean_pool``, ``penultimate``, ``taggram``, ``logits``, VGG ``pool5``), 187 steps per
patch for the frame-level layers (``timbral``, ``temporal``, ``cnn1``-``cnn3``). It takes waveforms
only. Frozen, it declares itself ``precomputed``: a run computes it once per clip (the embedding cache)
and trains on the activations through ``FeatureExtractor.forward_transformed``, never through this.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import Tensor, nn

from genre.features.spectral import MelSpectrogram
from genre.pretrained.musicnn import N_MELS, PATCH_FRAMES
from genre.pretrained.weights import MODELS, checkpoint_fingerprint, load_network

SAMPLE_RATE = 16000
N_FFT = 512
HOP_LENGTH = 256
# Bumped when what this feature computes changes, so embedding caches of the old code are rebuilt.
FEATURE_VERSION = 1


class Musicnn(nn.Module):
    """Activations of one layer of a pretrained musicnn/VGG model, per 3-s patch of the input.

    Args:
        sample_rate: the run's sample rate (resampled to 16 kHz on the device).
        model: ``MSD_musicnn`` | ``MTT_musicnn`` | ``MSD_vgg`` | ``MTT_vgg`` (trained on Million Song
            Dataset or MagnaTagATune tags).
        layer: which activations; see the module docstring.
        trainable: must be false for now: the network is frozen (no gradients, batch normalisation
            always in eval mode). Fine-tuning is not supported yet and raises a ValueError.
        cache: a frozen feature is computed once per audio cache into the embedding cache (shared by
            every run and sweep job); false recomputes it in every run.
        patches_per_pass: patches pushed through the network at once (bounds activation memory).
    """

    def __init__(
        self,
        sample_rate: int,
        model: str = "MSD_musicnn",
        layer: str = "max_pool",
        trainable: bool = False,
        cache: bool = True,
        patches_per_pass: int = 16,
    ) -> None:
        super().__init__()
        if model not in MODELS:
            raise ValueError(f"model: '{model}' is not a musicnn model. Use one of {', '.join(MODELS)}")
        self.net = load_network(model)
        layers = {**self.net.PATCH_LAYERS, **self.net.FRAME_LAYERS}
        if layer not in layers:
            raise ValueError(f"layer: '{layer}' is not a layer of {model}. Use one of {', '.join(layers)}")
        if trainable:
            # The trainer computes features without gradients (they are fixed functions of the audio);
            # fine-tuning needs the network inside the model instead, which is not built yet.
            raise ValueError(
                "trainable: fine-tuning musicnn is not supported yet. Use trainable=false (a frozen "
                "feature with a probe model)"
            )
        if patches_per_pass < 1:
            raise ValueError(f"patches_per_pass: must be >= 1, got {patches_per_pass}. Use e.g. 16")
        self.model, self.layer, self.sample_rate = model, layer, int(sample_rate)
        self.trainable, self.cache = bool(trainable), bool(cache)
        self.patches_per_pass = int(patches_per_pass)
        self.n_bands = layers[layer]
        self.steps_per_patch = PATCH_FRAMES if layer in self.net.FRAME_LAYERS else 1
        self.resample: nn.Module = (
            torchaudio.transforms.Resample(self.sample_rate, SAMPLE_RATE)
            if self.sample_rate != SAMPLE_RATE
            else nn.Identity()
        )
        self.mel = MelSpectrogram(SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH, n_mels=N_MELS)
        self.net.requires_grad_(self.trainable)
        self.net.eval()

    @property
    def frozen(self) -> bool:
        """True when the network is not trained (its output is a fixed function of the audio)."""
        return not self.trainable

    @property
    def precomputed(self) -> bool:
        """Frozen, the activations are a fixed function of the audio: a run computes them once per clip."""
        return self.frozen

    @property
    def patch_seconds(self) -> float:
        """The audio of one patch, in seconds (187 frames of 256 samples at 16 kHz: about 3 s)."""
        return PATCH_FRAMES * HOP_LENGTH / SAMPLE_RATE

    def train(self, mode: bool = True) -> Musicnn:
        """Set training mode; the network's batch normalisation stays in eval mode (its pretrained statistics)."""
        super().train(mode)
        self.net.eval()
        return self

    def identity(self) -> dict[str, object]:
        """Everything the output depends on besides the audio: the embedding cache's key hashes it."""
        return {
            "feature_version": FEATURE_VERSION,
            "model": self.model,
            "layer": self.layer,
            "weights": checkpoint_fingerprint(self.model),
            "sample_rate": self.sample_rate,
            "grid": {
                "rate": SAMPLE_RATE,
                "n_fft": N_FFT,
                "hop": HOP_LENGTH,
                "n_mels": N_MELS,
                "patch_frames": PATCH_FRAMES,
            },
        }

    def patches_in(self, samples: int) -> int:
        """Whole patches in a waveform of ``samples`` samples at the run's rate (what :meth:`forward` cuts)."""
        resampled = -(-samples * SAMPLE_RATE // self.sample_rate)  # torchaudio's ceil(n * new / old)
        frames = 1 + resampled // HOP_LENGTH
        return max(0, (frames - PATCH_FRAMES) // PATCH_FRAMES + 1)

    def steps_in(self, samples: int) -> int:
        """Steps of the activations of a waveform of ``samples`` samples: its whole patches' steps."""
        return self.patches_in(samples) * self.steps_per_patch

    def log_mel_patches(self, waveform: Tensor) -> Tensor:
        """``(batch, samples)`` -> ``(batch * patches, 187, 96)`` log-mel patches, float32, time-major."""
        with torch.autocast(device_type=waveform.device.type, enabled=False):
            mel = self.mel(self.resample(waveform.float()))
            log_mel = torch.log10(1 + 10000 * mel)  # (batch, 96, frames)
        n = (log_mel.shape[-1] - PATCH_FRAMES) // PATCH_FRAMES + 1
        if log_mel.shape[-1] < PATCH_FRAMES:
            raise ValueError(
                f"musicnn needs at least 3 s of audio (187 frames at 16 kHz); got "
                f"{waveform.shape[-1] / self.sample_rate:.2f} s: raise trainer.segment_seconds "
                "(and eval.segment_seconds) to 3.0 or more"
            )
        patches = log_mel[..., : n * PATCH_FRAMES].reshape(len(log_mel), N_MELS, n, PATCH_FRAMES)
        return patches.permute(0, 2, 3, 1).reshape(-1, PATCH_FRAMES, N_MELS)

    def embed(self, waveform: Tensor) -> Tensor:
        """``(batch, samples)`` float waveforms -> ``(batch, n_bands, patches * steps_per_patch)`` activations.

        Raises ValueError naming ``waveform`` for anything else (int16 samples, activations, a single clip).
        """
        if waveform.dim() != 2 or not waveform.is_floating_point():
            raise ValueError(
                f"waveform: Musicnn takes float waveforms (batch, samples), got {waveform.dtype} of shape "
                f"{tuple(waveform.shape)}. Scale int16 clips with int16_to_float; feed precomputed activations "
                "to FeatureExtractor.forward_transformed"
            )
        batch = waveform.shape[0]
        patches = self.log_mel_patches(waveform)
        outputs = []
        with (
            torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()),
            torch.autocast(device_type=waveform.device.type, enabled=False),
        ):
            for chunk in patches.split(self.patches_per_pass):
                outputs.append(self.net(chunk)[self.layer])
        out = torch.cat(outputs)  # (batch * n, dims) or (batch * n, dims, 187)
        if out.dim() == 2:
            out = out.unsqueeze(-1)
        n = out.shape[0] // batch
        # (batch, n, dims, steps) -> (batch, dims, n * steps): patches follow each other in time.
        return out.reshape(batch, n, self.n_bands, -1).permute(0, 2, 1, 3).reshape(batch, self.n_bands, -1)

    def forward(self, waveform: Tensor) -> Tensor:
        """Float waveforms ``(batch, samples)`` -> activations (:meth:`embed`); anything else raises ValueError."""
        return self.embed(waveform)

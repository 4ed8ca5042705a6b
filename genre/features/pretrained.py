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

Trainable (fine-tuning), the run splits it in two (:func:`genre.experiment.pipeline.assemble`): the fixed
front end (:class:`MusicnnInput`: the log-mel spectrogram, computed in every step, where waveform and
spectrogram augmentations act) and the network, which moves into the model
(:class:`~genre.training.finetuned.FineTuned`) and trains with it.
"""

from __future__ import annotations

import contextlib

import torch
import torchaudio
from torch import Tensor, nn

from genre.features.base import WaveformFeature
from genre.features.spectral import MelSpectrogram
from genre.pretrained.musicnn import N_MELS, PATCH_FRAMES
from genre.pretrained.weights import MODELS, checkpoint_fingerprint, load_network

SAMPLE_RATE = 16000
N_FFT = 512
HOP_LENGTH = 256
# Bumped when what this feature computes changes, so embedding caches of the old code are rebuilt.
FEATURE_VERSION = 1
# frozen: the network's batch normalisation keeps its pretrained statistics; update: a fine-tuned
# network's trainable blocks normalise by batch statistics in training and update their running ones.
BATCH_NORM_MODES = ("frozen", "update")


class Musicnn(nn.Module):
    """Activations of one layer of a pretrained musicnn/VGG model, per 3-s patch of the input.

    Args:
        sample_rate: the run's sample rate (resampled to 16 kHz on the device).
        model: ``MSD_musicnn`` | ``MTT_musicnn`` | ``MSD_vgg`` | ``MTT_vgg`` (trained on Million Song
            Dataset or MagnaTagATune tags).
        layer: which activations; see the module docstring.
        trainable: false: the network is frozen (no gradients, pretrained batch-norm statistics) and its
            activations are computed once per clip. true: fine-tuning; the network trains inside the model
            (its blocks from ``freeze_blocks`` up to the one ``layer`` needs; later blocks do not affect
            the layer and stay frozen).
        freeze_blocks: with ``trainable``, how many of the network's first blocks stay frozen (musicnn:
            input, frontend, cnn1, cnn2, cnn3, backend, output; VGG: input, conv1 ... conv5, output).
        batch_norm: with ``trainable``, ``frozen`` keeps the pretrained batch-norm statistics (eval-mode
            normalisation; the scales and shifts still train) or ``update`` normalises the trainable
            blocks by batch statistics in training and updates their running statistics.
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
        freeze_blocks: int = 0,
        batch_norm: str = "frozen",
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
        if batch_norm not in BATCH_NORM_MODES:
            raise ValueError(f"batch_norm: '{batch_norm}' is not one of {', '.join(BATCH_NORM_MODES)}. Use frozen")
        self.trainable_blocks = self._trainable_blocks(layer, bool(trainable), freeze_blocks)
        if patches_per_pass < 1:
            raise ValueError(f"patches_per_pass: must be >= 1, got {patches_per_pass}. Use e.g. 16")
        self.model, self.layer, self.sample_rate = model, layer, int(sample_rate)
        self.trainable, self.cache = bool(trainable), bool(cache)
        self.freeze_blocks, self.batch_norm = int(freeze_blocks), batch_norm
        self.patches_per_pass = int(patches_per_pass)
        self.n_bands = layers[layer]
        self.steps_per_patch = PATCH_FRAMES if layer in self.net.FRAME_LAYERS else 1
        self.resample: nn.Module = (
            torchaudio.transforms.Resample(self.sample_rate, SAMPLE_RATE)
            if self.sample_rate != SAMPLE_RATE
            else nn.Identity()
        )
        self.mel = MelSpectrogram(SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH, n_mels=N_MELS)
        self.net.requires_grad_(False)
        for module in self._modules_of(self.trainable_blocks):
            module.requires_grad_(True)
        self.net.eval()

    def _trainable_blocks(self, layer: str, trainable: bool, freeze_blocks: int) -> tuple[str, ...]:
        """The blocks fine-tuning trains: from ``freeze_blocks`` up to the last one ``layer`` needs."""
        needed = self.net.BLOCKS[: self.net.BLOCKS.index(self.net.LAYER_BLOCK[layer]) + 1]
        if not trainable:
            if freeze_blocks:
                raise ValueError(
                    "freeze_blocks: a frozen network has nothing to unfreeze. Use freeze_blocks=0, or "
                    "trainable=true to fine-tune the blocks after the first freeze_blocks"
                )
            return ()
        if not 0 <= freeze_blocks < len(needed):
            raise ValueError(
                f"freeze_blocks: {freeze_blocks} is outside 0..{len(needed) - 1}: layer {layer} is computed by "
                f"{len(needed)} blocks ({', '.join(needed)}). Freeze fewer, or use trainable=false for a frozen network"
            )
        return tuple(needed[freeze_blocks:])

    def _modules_of(self, blocks: tuple[str, ...]) -> list[nn.Module]:
        return [module for name in blocks for module in self.net.block(name)]

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

    @property
    def step_seconds(self) -> float:
        """Seconds from one step of the output to the next: a patch (pooled layers) or a frame."""
        return self.patch_seconds / self.steps_per_patch

    def train(self, mode: bool = True) -> Musicnn:
        """Set training mode. The network stays in eval mode (its pretrained batch-norm statistics, no
        dropout) except, with ``batch_norm=update``, the trainable blocks while training."""
        super().train(mode)
        self.net.eval()
        if mode and self.batch_norm == "update":
            for module in self._modules_of(self.trainable_blocks):
                module.train()
        return self

    def front_end(self) -> MusicnnInput:
        """The fixed part in front of the network (log-mel spectrogram), sharing this feature's modules."""
        return MusicnnInput(self)

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

    def log_mel(self, waveform: Tensor) -> Tensor:
        """``(batch, samples)`` -> ``(batch, 96, frames)`` log-mel spectrogram at 16 kHz, float32."""
        with torch.autocast(device_type=waveform.device.type, enabled=False):
            return torch.log10(1 + 10000 * self.mel(self.resample(waveform.float())))

    def log_mel_patches(self, waveform: Tensor) -> Tensor:
        """``(batch, samples)`` -> ``(batch * patches, 187, 96)`` log-mel patches, float32, time-major."""
        return self.patches(self.log_mel(waveform))

    def patches(self, log_mel: Tensor) -> Tensor:
        """``(batch, 96, frames)`` log-mel -> ``(batch * patches, 187, 96)``: whole patches, time-major."""
        if log_mel.shape[-1] < PATCH_FRAMES:
            raise ValueError(
                f"musicnn needs at least 3 s of audio (187 frames at 16 kHz); got "
                f"{log_mel.shape[-1] * HOP_LENGTH / SAMPLE_RATE:.2f} s: raise trainer.segment_seconds "
                "(and eval.segment_seconds) to 3.0 or more"
            )
        n = (log_mel.shape[-1] - PATCH_FRAMES) // PATCH_FRAMES + 1
        patches = log_mel[..., : n * PATCH_FRAMES].reshape(len(log_mel), N_MELS, n, PATCH_FRAMES)
        return patches.permute(0, 2, 3, 1).reshape(-1, PATCH_FRAMES, N_MELS)

    def activations(self, log_mel: Tensor) -> Tensor:
        """``(batch, 96, frames)`` log-mel -> ``(batch, n_bands, patches * steps_per_patch)`` activations.

        Frozen, the network runs without gradients in float32 (as the original), ``patches_per_pass`` at
        a time. Trainable, gradients flow where enabled, all patches go through at once (batch-norm
        statistics over the whole batch) and mixed precision applies as to the rest of the model.
        """
        batch = log_mel.shape[0]
        patches = self.patches(log_mel)
        grad = self.trainable and torch.is_grad_enabled()
        precision = (
            contextlib.nullcontext()
            if self.trainable
            else torch.autocast(device_type=log_mel.device.type, enabled=False)
        )
        with torch.set_grad_enabled(grad), precision:
            chunks = [patches] if grad else patches.split(self.patches_per_pass)
            out = torch.cat([self.net(chunk)[self.layer] for chunk in chunks])
        if out.dim() == 2:  # (batch * n, dims) or (batch * n, dims, 187)
            out = out.unsqueeze(-1)
        n = out.shape[0] // batch
        # (batch, n, dims, steps) -> (batch, dims, n * steps): patches follow each other in time.
        return out.reshape(batch, n, self.n_bands, -1).permute(0, 2, 1, 3).reshape(batch, self.n_bands, -1)

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
        return self.activations(self.log_mel(waveform))

    def forward(self, waveform: Tensor) -> Tensor:
        """Float waveforms ``(batch, samples)`` -> activations (:meth:`embed`); anything else raises ValueError."""
        return self.embed(waveform)


class MusicnnInput(WaveformFeature):
    """The fixed front end of a fine-tuned musicnn: ``(batch, samples)`` -> ``(batch, 96, frames)`` log-mel.

    It shares ``musicnn``'s resampler and mel filterbank (not its network, which trains inside the model);
    what it computes is :meth:`Musicnn.log_mel`.
    """

    def __init__(self, musicnn: Musicnn) -> None:
        super().__init__()
        self.resample, self.mel = musicnn.resample, musicnn.mel
        self.n_bands = N_MELS

    def compute(self, waveform: Tensor) -> Tensor:
        """Log-mel ``log10(1 + 10000 mel)`` at 16 kHz of a float32 waveform batch."""
        return torch.log10(1 + 10000 * self.mel(self.resample(waveform)))

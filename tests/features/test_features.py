"""Tests for genre.features: librosa parity, pitch filters, batch independence, normalisation."""

from __future__ import annotations

import math
from collections.abc import Callable

import librosa
import numpy as np
import pytest
import torch
import torchaudio
from torch import Tensor, nn

from genre.features import (
    MFCC,
    Chromagram,
    FeatureExtractor,
    MelSpectrogram,
    MidiSpectrogram,
    midi_filterbank,
)

SR = 22050
HOP = 512


def note_hz(pitch: float) -> float:
    """Equal-tempered frequency of a MIDI pitch (A4 = 69 = 440 Hz), written out independently."""
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def tones(freqs: list[float], seconds: float = 1.0) -> Tensor:
    """Unit-amplitude sine tones, one per row, float32 ``(len(freqs), samples)``."""
    t = torch.arange(int(SR * seconds), dtype=torch.float64) / SR
    return torch.stack([torch.sin(2 * math.pi * f * t) for f in freqs]).float()


def noise_and_tones(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """Broadband test signal: white noise plus a few tones, float64."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    y = 0.1 * rng.standard_normal(t.size)
    for f, a in [(110.0, 0.5), (440.0, 0.3), (1234.5, 0.2), (5000.0, 0.1)]:
        y += a * np.sin(2 * np.pi * f * t)
    return y


def quiet_tail_clip(seconds: float = 2.0) -> Tensor:
    """A 440 Hz tone whose second half is a 1 kHz tone 60 dB quieter, float32 ``(samples,)``.

    The quiet half survives the clip's own 80 dB floor but not the floor of a clip 40 dB louder,
    so it exposes a top_db clamp taken over the whole batch.
    """
    n = int(SR * seconds)
    t = torch.arange(n, dtype=torch.float64) / SR
    y = torch.sin(2 * math.pi * 440.0 * t)
    y[n // 2 :] = 1e-3 * torch.sin(2 * math.pi * 1000.0 * t[n // 2 :])
    return y.float()


def interior_frames(n_samples: int, n_fft: int, hop: int) -> slice:
    """Centred STFT frames whose window lies entirely inside the signal (no edge padding)."""
    first = math.ceil((n_fft // 2) / hop)
    last = (n_samples - n_fft // 2) // hop
    return slice(first, last + 1)


def assert_close_to_scale(ours: np.ndarray, ref: np.ndarray, rel: float = 1e-4) -> None:
    """Elementwise closeness with tolerance relative to the reference array's scale."""
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=rel, atol=rel * np.abs(ref).max())


# --- librosa parity -----------------------------------------------------------------------


@pytest.mark.parametrize(("f_min", "f_max"), [(0.0, None), (30.0, 8000.0)])
def test_mel_matches_librosa(f_min: float, f_max: float | None) -> None:
    y = noise_and_tones()
    ref = librosa.feature.melspectrogram(
        y=y,
        sr=SR,
        n_fft=2048,
        hop_length=HOP,
        n_mels=128,
        fmin=f_min,
        fmax=f_max,
        htk=False,
        norm="slaney",
        center=True,
        pad_mode="constant",
        power=2.0,
    )
    mel = MelSpectrogram(SR, n_fft=2048, hop_length=HOP, n_mels=128, f_min=f_min, f_max=f_max)
    ours = mel(torch.from_numpy(y)[None]).squeeze(0).double().numpy()
    assert_close_to_scale(ours, ref)


@pytest.mark.parametrize("top_db", [80.0, 40.0, None])
def test_mfcc_matches_librosa(top_db: float | None) -> None:
    y = noise_and_tones()
    # librosa.feature.mfcc forwards unknown kwargs to the mel filterbank, so top_db cannot be
    # passed to it; build the dB mel explicitly to pin top_db.
    mel_db = librosa.power_to_db(
        librosa.feature.melspectrogram(
            y=y,
            sr=SR,
            n_fft=2048,
            hop_length=HOP,
            n_mels=128,
            htk=False,
            norm="slaney",
            center=True,
            pad_mode="constant",
            power=2.0,
        ),
        top_db=top_db,
    )
    ref = librosa.feature.mfcc(S=mel_db, n_mfcc=40, dct_type=2, norm="ortho")
    mfcc = MFCC(SR, n_mfcc=40, n_fft=2048, hop_length=HOP, n_mels=128, top_db=top_db)
    ours = mfcc(torch.from_numpy(y)[None]).squeeze(0).double().numpy()
    assert_close_to_scale(ours, ref)


# --- pitch features -----------------------------------------------------------------------


def test_midi_filter_matrix_assigns_each_bin_to_its_note() -> None:
    n_fft = 8192
    filters = midi_filterbank(SR, n_fft)
    assert filters.shape == (128, n_fft // 2 + 1)
    assert set(filters.unique().tolist()) <= {0.0, 1.0}
    assert (filters.sum(dim=0) <= 1).all(), "a bin is owned by more than one note"
    counts = filters.sum(dim=1)
    assert ((counts == 0) | (counts >= 2)).all(), "a non-empty note holds fewer than min_bins"
    freqs = np.arange(n_fft // 2 + 1) * SR / n_fft
    notes, bins = filters.nonzero(as_tuple=True)
    assert len(notes) > 1000
    for p, k in zip(notes.tolist(), bins.tolist()):
        assert note_hz(p - 0.5) <= freqs[k] < note_hz(p + 0.5), (p, freqs[k])


def test_midi_filter_respects_frequency_range() -> None:
    n_fft = 8192
    filters = midi_filterbank(SR, n_fft, f_min=100.0, f_max=5000.0)
    freqs = np.arange(n_fft // 2 + 1) * SR / n_fft
    owned = filters.sum(dim=0).bool().numpy()
    assert owned.any()
    assert freqs[owned].min() >= 100.0 and freqs[owned].max() <= 5000.0


def test_midi_tone_energy_stays_in_its_note() -> None:
    midi = MidiSpectrogram()
    # Every note that owns bins at the default settings and whose centre is below Nyquist
    # (note 125 owns the bins between F(124.5) and Nyquist, but its tone cannot be sampled).
    notes = [p for p in range(128) if midi.filters[p].sum() > 0 and note_hz(p) < SR / 2]
    assert set(range(40, 109)) <= set(notes)
    x = tones([note_hz(p) for p in notes])
    frames = interior_frames(x.shape[1], midi.n_fft, midi.hop_length)
    energy = midi(x)[..., frames].sum(dim=-1).double()  # (tones, 128)
    spec = torch.stft(
        x,
        midi.n_fft,
        midi.hop_length,
        window=torch.hann_window(midi.n_fft),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    total_power = spec[..., frames].abs().square().sum(dim=(-2, -1)).double()
    rows = torch.arange(len(notes))
    in_note = energy[rows, torch.tensor(notes)]
    share_of_midi = in_note / energy.sum(dim=1)
    # Empty neighbouring notes would inflate the share above; also check against all power.
    share_of_all = in_note / total_power
    bad = [
        (p, round(a, 3), round(b, 3))
        for p, a, b in zip(notes, share_of_midi.tolist(), share_of_all.tolist())
        if min(a, b) < 0.9
    ]
    assert not bad, f"notes keeping < 90 % of a tone's energy: {bad}"


def test_chroma_argmax_is_pitch_class() -> None:
    chroma = Chromagram()
    notes = [12 * (octave + 1) + c for octave in range(3, 8) for c in range(12)]
    x = tones([note_hz(p) for p in notes])
    frames = interior_frames(x.shape[1], chroma.n_fft, chroma.hop_length)
    energy = chroma(x)[..., frames].sum(dim=-1)
    assert energy.argmax(dim=1).tolist() == [p % 12 for p in notes]


def test_chroma_is_folded_midi() -> None:
    x = torch.from_numpy(noise_and_tones(seconds=1.0)).float()[None]
    midi = MidiSpectrogram()(x)
    folded = torch.stack([midi[:, c::12].sum(dim=1) for c in range(12)], dim=1)
    torch.testing.assert_close(Chromagram()(x), folded, rtol=1e-4, atol=1e-4 * folded.max().item())


# --- batch independence of dB compression -------------------------------------------------


def test_mfcc_is_batch_independent() -> None:
    quiet = quiet_tail_clip()
    batch = torch.stack([quiet, 100.0 * quiet])
    mfcc = MFCC()
    alone, batched = mfcc(quiet[None])[0], mfcc(batch)[0]
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-3)
    # The signal must be able to expose a batch-wide clamp: torchaudio's own layout does.
    naive = torchaudio.transforms.MFCC(SR, 40, melkwargs={"n_fft": 2048, "hop_length": HOP})
    assert not torch.allclose(naive(batch)[0], naive(quiet[None])[0], atol=1e-2)


def test_db_compression_is_batch_independent() -> None:
    quiet = quiet_tail_clip()
    extractor = FeatureExtractor(MelSpectrogram(), log="db", top_db=80.0, standardize=False)
    alone = extractor(quiet[None])[0]
    batched = extractor(torch.stack([quiet, 100.0 * quiet]))
    torch.testing.assert_close(batched[0], alone, rtol=1e-5, atol=1e-3)
    # The clip has values above its own floor that a floor set by the louder clip would clip.
    clipped_by_batch_floor = (alone > alone.max() - 79.0) & (alone < batched[1].max() - 80.0)
    assert clipped_by_batch_floor.sum() > 100


# --- FeatureExtractor ---------------------------------------------------------------------


def training_batches(seed: int = 0) -> list[Tensor]:
    """A few waveform batches of differing loudness and length."""
    gen = torch.Generator().manual_seed(seed)
    return [scale * torch.randn(2, n, generator=gen) for scale, n in [(0.1, 11025), (1.0, 22050), (0.01, 16384)]]


def fitted_extractor(transform: nn.Module, log: str = "db") -> FeatureExtractor:
    extractor = FeatureExtractor(transform, log=log)
    extractor.fit_normalization(training_batches())
    return extractor


def test_standardisation_zero_mean_unit_std_on_fitting_data() -> None:
    extractor = fitted_extractor(MelSpectrogram(n_mels=64))
    features = torch.cat([extractor(b) for b in training_batches()], dim=2).double()
    per_band = features.transpose(0, 1).reshape(64, -1)
    torch.testing.assert_close(per_band.mean(dim=1), torch.zeros(64, dtype=torch.float64), atol=1e-4, rtol=0)
    torch.testing.assert_close(
        per_band.std(dim=1, correction=0), torch.ones(64, dtype=torch.float64), atol=1e-4, rtol=0
    )


def test_streaming_fit_matches_direct_statistics() -> None:
    extractor = fitted_extractor(MelSpectrogram(n_mels=32))
    raw = torch.cat([extractor.compress(b) for b in training_batches()], dim=2).double()
    per_band = raw.transpose(0, 1).reshape(32, -1)
    torch.testing.assert_close(extractor.mean.squeeze(1).double(), per_band.mean(dim=1), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(
        extractor.std.squeeze(1).double(), per_band.std(dim=1, correction=0), rtol=1e-5, atol=1e-4
    )


def test_state_dict_round_trip_restores_statistics() -> None:
    source = fitted_extractor(MelSpectrogram(n_mels=32))
    state = source.state_dict()
    assert {"mean", "std", "fitted"} <= set(state)
    restored = FeatureExtractor(MelSpectrogram(n_mels=32))
    restored.load_state_dict(state)
    torch.testing.assert_close(restored.mean, source.mean)
    torch.testing.assert_close(restored.std, source.std)
    assert bool(restored.fitted)
    x = training_batches(seed=5)[0]
    torch.testing.assert_close(restored(x), source(x))
    # Checkpoints hold the extractor inside a larger model; loading the parent must work too.
    parent = nn.Sequential(FeatureExtractor(MelSpectrogram(n_mels=32)))
    parent.load_state_dict(nn.Sequential(source).state_dict())
    torch.testing.assert_close(parent(x), source(x))


def test_unfitted_standardisation_raises() -> None:
    x = torch.randn(2, 4096)
    with pytest.raises(RuntimeError, match="fit_normalization"):
        FeatureExtractor(MelSpectrogram())(x)
    # Loading an unfitted state keeps it unfitted; without standardisation no fit is needed.
    extractor = fitted_extractor(MelSpectrogram())
    extractor.load_state_dict(FeatureExtractor(MelSpectrogram()).state_dict())
    with pytest.raises(RuntimeError):
        extractor(x)
    assert FeatureExtractor(MelSpectrogram(), standardize=False)(x).shape == (2, 128, 9)


@pytest.mark.parametrize("log", ["db", "log1p", "none"])
def test_the_transforms_output_gets_the_features_and_statistics_the_waveform_gets(log: str) -> None:
    # What a run trains on when the transform was precomputed: the stages after it, the same statistics.
    transform = MelSpectrogram(n_mels=32)
    on_audio = fitted_extractor(transform, log=log)
    on_output = FeatureExtractor(transform, log=log)
    on_output.fit_normalization((transform(batch) for batch in training_batches()), transformed=True)
    torch.testing.assert_close(on_output.mean, on_audio.mean)
    torch.testing.assert_close(on_output.std, on_audio.std)
    x = training_batches(seed=5)[1]
    torch.testing.assert_close(on_output.forward_transformed(transform(x)), on_audio(x))


def test_a_transform_is_precomputed_only_when_it_declares_it_with_what_that_needs() -> None:
    assert FeatureExtractor(MelSpectrogram()).precomputed_transform is None
    declared = MelSpectrogram()
    declared.precomputed = True  # without embed, identity, steps_in ...
    with pytest.raises(ValueError, match=r"^transform: MelSpectrogram declares precomputed=True but lacks"):
        FeatureExtractor(declared)


def test_fit_without_frames_raises() -> None:
    with pytest.raises(ValueError, match="no frames"):
        FeatureExtractor(MelSpectrogram()).fit_normalization([])


@pytest.mark.parametrize("log", ["db", "log1p", "none"])
def test_zero_variance_bands_stay_finite(log: str) -> None:
    midi = MidiSpectrogram()
    empty = midi.filters.sum(dim=1) == 0
    assert empty.any()
    extractor = fitted_extractor(midi, log=log)
    assert torch.isfinite(extractor.mean).all() and (extractor.std > 0).all()
    out = extractor(torch.randn(2, 8192))
    assert torch.isfinite(out).all()
    if log != "db":  # empty bands are exactly 0 there, so standardise to exactly 0
        assert (out[:, empty] == 0).all()


def test_a_unit_constant_on_the_training_clips_cannot_blow_up_a_test_clip() -> None:
    # Activations of 8 units (a pretrained network's, log "none"): unit 2 never fires on the training
    # clips, unit 5 sits at 7.0 on all of them; the other units vary.
    gen = torch.Generator().manual_seed(0)
    training = [torch.rand(4, 8, 20, generator=gen) for _ in range(3)]
    for batch in training:
        batch[:, 2] = 0.0
        batch[:, 5] = 7.0
    extractor = FeatureExtractor(MelSpectrogram(n_mels=8), log="none")
    extractor.fit_normalization(training, transformed=True)
    assert extractor.std[2].item() == extractor.std[5].item() == 1.0  # centred, not scaled
    varying = [unit for unit in range(8) if unit not in (2, 5)]
    assert (extractor.std[varying] < 0.5).all()  # uniform [0, 1): std 0.29, scaled as before

    test_clip = torch.rand(1, 8, 20, generator=gen)
    test_clip[:, 2] = 3.0  # the dead unit fires
    test_clip[:, 5] = 7.5
    features = extractor.forward_transformed(test_clip)
    torch.testing.assert_close(features[0, 2], torch.full((20,), 3.0))
    torch.testing.assert_close(features[0, 5], torch.full((20,), 0.5))
    # A linear probe with unit-norm class weights sees a logit no larger than the feature vector's norm
    # (before the floor: 3.0 / eps = 3e5 from unit 2 alone).
    probe = nn.Linear(8, 4, bias=False)
    with torch.no_grad():
        probe.weight.copy_(torch.nn.functional.normalize(torch.randn(4, 8, generator=gen), dim=1))
    logits = probe(features[0].T)
    assert logits.abs().max() < 10.0
    # The training clips standardise to 0 on both constant units.
    assert (extractor.forward_transformed(training[0])[:, [2, 5]] == 0).all()


def test_features_are_float32_under_autocast() -> None:
    extractor = fitted_extractor(MelSpectrogram(n_mels=32))
    x = training_batches(seed=3)[1]
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        got = extractor(x.bfloat16())
    assert got.dtype == torch.float32
    # bf16 input rounding only; a bf16 STFT/log would be far worse.
    torch.testing.assert_close(got, extractor(x.bfloat16().float()))


class FrameMix(nn.Module):
    """Minimal foreign transform (not a WaveformFeature): 16-sample frames mixed into 4 bands."""

    n_bands = 4

    def __init__(self) -> None:
        super().__init__()
        weight = torch.randn(4, 16, generator=torch.Generator().manual_seed(0))
        self.register_buffer("weight", weight)

    def forward(self, waveform: Tensor) -> Tensor:
        frames = waveform.reshape(waveform.shape[0], -1, 16).transpose(1, 2)
        return (self.weight @ frames).square()


def test_extractor_runs_any_transform_in_float32_under_autocast() -> None:
    extractor = FeatureExtractor(FrameMix(), log="db", standardize=False)
    x = torch.randn(2, 1024)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        got = extractor(x)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, extractor(x))


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: FeatureExtractor(MelSpectrogram(), log="ln"), "log"),
        (lambda: FeatureExtractor(MelSpectrogram(), top_db=-1.0), "top_db"),
        (lambda: FeatureExtractor(MelSpectrogram(), eps=0.0), "eps"),
        (lambda: FeatureExtractor(nn.Identity()), "n_bands"),
        (lambda: MelSpectrogram(n_fft=0), "n_fft"),
        (lambda: MelSpectrogram(hop_length=-1), "hop_length"),
        (lambda: MelSpectrogram(f_max=12000.0), "f_max"),
        (lambda: MelSpectrogram(f_min=-1.0), "f_min"),
        (lambda: MelSpectrogram(n_mels=0), "n_mels"),
        (lambda: MFCC(n_mfcc=200), "n_mfcc"),
        (lambda: MFCC(top_db=-3.0), "top_db"),
        (lambda: MidiSpectrogram(f_max=11026.0), "f_max"),
        (lambda: MidiSpectrogram(min_bins=0), "min_bins"),
        (lambda: Chromagram(hop_length=0), "hop_length"),
        (lambda: Chromagram(sample_rate=0), "sample_rate"),
    ],
)
def test_bad_arguments_name_the_parameter(build: Callable[[], nn.Module], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        build()


def test_unknown_log_mode_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="db, log1p, none"):
        FeatureExtractor(MelSpectrogram(), log="ln")


# --- shapes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("feature", "bands"),
    [
        (MidiSpectrogram(), 128),
        (Chromagram(), 12),
        (MelSpectrogram(n_mels=96), 96),
        (MFCC(n_mfcc=20), 20),
    ],
)
def test_output_shapes(feature: nn.Module, bands: int) -> None:
    samples = 22050
    out = feature(torch.randn(3, samples))
    assert feature.n_bands == bands
    assert out.shape == (3, bands, samples // HOP + 1)
    assert out.dtype == torch.float32
    with pytest.raises(ValueError, match="batch, samples"):
        feature(torch.randn(samples))

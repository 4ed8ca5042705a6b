"""A generated demo corpus: six synthetic "genres" written as GTZAN-style WAV folders.

Every clip is rendered from a small random score (chords, bass, melody, drums) by additive /
wavetable / FM synthesis, then mixed with noise at a random SNR (10-40 dB) and peak-normalised to
-6...-1 dBFS. Per clip the tonic is drawn from all 12 keys, the tempo gets +-8 % jitter, the clip
starts at a random point of the form, instruments and per-voice gains are drawn at random and
optional voices come and go, so no single cue identifies a genre. The genres are designed to differ
along *different* axes, so that pitch-based features (MIDI-pitch spectrogram, chroma) and
timbre-based ones (mel spectrogram, MFCC) each win on some pairs and lose on others:

**blues** -- 12-bar blues (I7-IV7-V7, quick-change and minor-blues variants) with root-position
dominant-7th voicings, a boogie walking bass (R-3-5-6 / b7-6-5-3) and blues-scale melody (b3, b5, b7
against major chords). Swung 8ths at 76-136 BPM. Shares its whole rhythm, tempo and instrument
distribution with jazz, so *blues vs jazz differs mainly in harmony* (chroma / MIDI help, mel / MFCC struggle).

**jazz** -- ii7-V7-Imaj7 turnarounds (I-vi-ii-V, iii-vi-ii-V, I-VI7-ii-V) with rootless 7th/9th
voicings, faster harmonic rhythm, a chromatic walking bass and chord-scale melodies with chromatic
approach notes. Same swing kit, comping patterns, instruments (FM e-piano, organ, clean guitar,
vibraphone, reed horn), tempo range and gain ranges as blues.

**rock** -- Natural-minor progressions (i-VI-III-VII, i-VII-VI-VII, i-bII-i-VII, ...) as low power
chords in straight 8ths, root-note 8th bass, minor-pentatonic lead, straight backbeat kit at
100-156 BPM, guitars through *mild* overdrive and a dark cabinet low-pass (2-3.5 kHz).

**metal** -- Exactly rock's harmony, rhythm, tempo and arrangement distribution, but the guitars go
through *heavy* tanh distortion and a bright cabinet (4.5-8 kHz): *rock vs metal differs mainly in
timbre* (mel / MFCC help, chroma struggles -- the power chords carry the same pitch classes).

**classical** -- No percussion at all. Major (or harmonic-minor, with a major V) functional
progressions (I-IV-V7-I, Pachelbel, ...), often in 3/4, 60-100 BPM, one chord per bar. Sustained
string pads with slow attacks, vibrato and detuned unison, Alberti arpeggios on piano or
harpsichord, stepwise melodies on flute, solo string or an inharmonic celesta (free-bar partials).

**disco** -- Four-on-the-floor kick, off-beat open hats and 2-and-4 claps at 112-130 BPM (inside
rock's tempo range), dorian minor-7th/9th vamps (i7-IV7) over an octave-jumping 8th bass, bright
detuned saw stabs, 16th-note muted guitar and/or the same string pads as classical.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import fcntl
import json
import math
import multiprocessing
import os
import pathlib
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import soundfile as sf
from scipy import signal
from tqdm import tqdm

__all__ = ["DEMO_GENRES", "FORMAT_VERSION", "MARKER_NAME", "clip_path", "generate_demo_corpus"]

DEMO_GENRES: tuple[str, ...] = ("blues", "classical", "disco", "jazz", "metal", "rock")

# Bump whenever the synthesis changes, so caches made by an older version are not mistaken for ours.
FORMAT_VERSION = 1
MARKER_NAME = ".demo-corpus.json"

Audio = npt.NDArray[np.float32]
# A note: (start seconds, held seconds, MIDI pitch, velocity 0..1).
Note = tuple[float, float, float, float]
# A note in musical time: (position in beats, length in beats, MIDI pitch, velocity).
BeatNote = tuple[float, float, int, float]


# --------------------------------------------------------------------------------------------
# Public entry point: idempotent, atomic, concurrency-safe generation
# --------------------------------------------------------------------------------------------

def generate_demo_corpus(root: str | os.PathLike, *, clips_per_genre: int = 40, clip_seconds: float = 30.0,
                         sample_rate: int = 22050, seed: int = 0, progress: bool = True,
                         workers: int | None = None) -> pathlib.Path:
    """Write the demo corpus to ``root`` as ``<root>/<genre>/<genre>.NNNNN.wav`` unless it is already there.

    Files are 16-bit PCM mono WAVs, byte-identical for identical arguments (each clip is seeded from
    ``(seed, genre index, clip index)``, so worker scheduling does not matter). A finished corpus is
    recognised by the marker file ``.demo-corpus.json`` holding its parameters; with matching
    parameters the call returns at once. Generation happens in a hidden sibling directory that is
    renamed into place when complete, under an ``flock`` lock next to ``root``, so killed runs leave
    nothing that looks finished and concurrent callers end up sharing one intact corpus.

    Raises ``ValueError`` if ``root`` exists and is not (empty or) a corpus made with these parameters;
    user files are never deleted. Returns ``root`` as an absolute path.
    """
    params = _corpus_params(clips_per_genre, clip_seconds, sample_rate, seed)
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    root = pathlib.Path(root).expanduser().resolve()

    if _corpus_state(root, params) == "done":  # fast path: no lock, nothing written
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(root.with_name(f".{root.name}.lock")):
        # Another process may have finished it while we waited for the lock.
        if _corpus_state(root, params) == "done":
            return root
        _remove_stale_partials(root)
        partial = root.with_name(f"{_partial_prefix(root)}{os.getpid()}-{secrets.token_hex(4)}")
        partial.mkdir()
        try:
            _render_corpus(partial, params, progress=progress, workers=workers or os.cpu_count() or 1)
            # The marker goes in last: a directory with a marker is always complete.
            (partial / MARKER_NAME).write_text(json.dumps(params, sort_keys=True, indent=1) + "\n")
            os.replace(partial, root)  # atomic; also replaces an empty pre-made ``root`` directory
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    return root


def _corpus_params(clips_per_genre: int, clip_seconds: float, sample_rate: int, seed: int) -> dict:
    """Validate the arguments and return the dict stored in (and compared against) the marker."""
    if not 1 <= clips_per_genre <= 100_000:  # file names have five digits
        raise ValueError(f"clips_per_genre must be in 1..100000, got {clips_per_genre}")
    if not (clip_seconds > 0 and math.isfinite(clip_seconds)):
        raise ValueError(f"clip_seconds must be a positive number, got {clip_seconds}")
    if sample_rate < 8000:
        raise ValueError(f"sample_rate must be >= 8000 Hz, got {sample_rate}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return {"format": "genre-demo-corpus", "version": FORMAT_VERSION, "genres": list(DEMO_GENRES),
            "clips_per_genre": int(clips_per_genre), "clip_seconds": float(clip_seconds),
            "sample_rate": int(sample_rate), "seed": int(seed)}


def _corpus_state(root: pathlib.Path, params: dict) -> str:
    """Return "done" (finished, same params), "missing" or "empty"; raise ValueError for anything else."""
    if not root.exists():
        return "missing"
    problem = "is not a directory"
    if root.is_dir():
        marker = root / MARKER_NAME
        if marker.is_file():
            try:
                found = json.loads(marker.read_text())
            except (OSError, ValueError):
                found = None
            if found == params:
                return "done"
            problem = f"holds a demo corpus made with other parameters ({_describe(found)})"
        elif not any(root.iterdir()):
            return "empty"
        else:
            problem = f"is not empty and has no {MARKER_NAME} marker"
    raise ValueError(f"Demo corpus directory '{root}' {problem}; delete it or choose another cache dir")


def _describe(found: object) -> str:
    """Summarise a marker's parameters for the error message."""
    if not isinstance(found, dict):
        return "unreadable marker"
    keys = ("version", "clips_per_genre", "clip_seconds", "sample_rate", "seed")
    return ", ".join(f"{k}={found.get(k)}" for k in keys)


@contextlib.contextmanager
def _exclusive_lock(path: pathlib.Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed; left in place, deleting it would race)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _partial_prefix(root: pathlib.Path) -> str:
    return f".{root.name}.partial-"


def _remove_stale_partials(root: pathlib.Path) -> None:
    """Delete half-written siblings of killed runs; safe because we hold the lock they were made under."""
    for stale in root.parent.glob(f"{_partial_prefix(root)}*"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)


def clip_path(root: str | os.PathLike, genre: str, index: int) -> pathlib.Path:
    """GTZAN's file naming: ``<root>/blues/blues.00007.wav``."""
    return pathlib.Path(root) / genre / f"{genre}.{index:05d}.wav"


def _render_corpus(out_dir: pathlib.Path, params: dict, *, progress: bool, workers: int) -> None:
    """Write every clip into ``out_dir``, in parallel processes unless ``workers == 1``."""
    for genre in DEMO_GENRES:
        (out_dir / genre).mkdir()
    jobs = [(str(out_dir), genre, i, params["clip_seconds"], params["sample_rate"], params["seed"])
            for genre in DEMO_GENRES for i in range(params["clips_per_genre"])]
    workers = min(workers, len(jobs))
    with tqdm(total=len(jobs), desc="Generating demo corpus", unit="clip", disable=not progress) as bar:
        if workers == 1:  # in-process: no start-up cost for tiny corpora
            for job in jobs:
                _write_clip(*job)
                bar.update()
            return
        pool = cf.ProcessPoolExecutor(workers, mp_context=_worker_context())
        try:
            futures = [pool.submit(_write_clip, *job) for job in jobs]
            for future in cf.as_completed(futures):
                future.result()  # re-raise a worker's error here
                bar.update()
        finally:
            # On error, don't wait for the remaining clips of a corpus that will be discarded.
            pool.shutdown(wait=True, cancel_futures=True)


def _worker_context() -> multiprocessing.context.BaseContext:
    """Fork on Linux: workers need only this module, and "spawn"/"forkserver" would re-import the
    caller's ``__main__`` -- an unguarded script would then re-enter this function and block on our lock."""
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)


def _write_clip(out_dir: str, genre: str, index: int, clip_seconds: float, sample_rate: int, seed: int) -> None:
    """Worker task: synthesise one clip and write it as 16-bit PCM WAV."""
    pcm = _synthesize_clip(genre, index, clip_seconds=clip_seconds, sample_rate=sample_rate, seed=seed)
    sf.write(clip_path(out_dir, genre, index), pcm, sample_rate, subtype="PCM_16", format="WAV")


def _synthesize_clip(genre: str, index: int, *, clip_seconds: float, sample_rate: int, seed: int
                     ) -> npt.NDArray[np.int16]:
    """Render one clip of ``genre`` as int16 samples, deterministic in (seed, genre, index)."""
    rng = np.random.default_rng([seed, DEMO_GENRES.index(genre), index])
    ctx = _Context(rng=rng, sr=sample_rate, n=max(1, round(clip_seconds * sample_rate)),
                   tonic=int(rng.integers(12)))
    arrangement = _COMPOSERS[genre](ctx)
    mix = _render(arrangement, ctx)
    mix = _add_noise(mix, rng, sample_rate, snr_db=rng.uniform(10.0, 40.0))
    peak = float(np.max(np.abs(mix)))
    target = 10.0 ** (rng.uniform(-6.0, -1.0) / 20.0)  # small level change, always below full scale
    mix *= np.float32(target / peak if peak > 0 else 0.0)
    return np.round(mix * 32767.0).astype(np.int16)


# --------------------------------------------------------------------------------------------
# Oscillators and envelopes (whole-note numpy operations, no per-sample Python)
# --------------------------------------------------------------------------------------------

_TABLE_BITS = 12
_TABLE_SIZE = 1 << _TABLE_BITS
_TABLE_MASK = _TABLE_SIZE - 1
_PHASE_SHIFT = 32 - _TABLE_BITS  # 32-bit fixed-point phase -> table index

_SPECTRA: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sine": lambda k: (k == 1).astype(np.float64),
    "saw": lambda k: 1.0 / k,                                    # bright, all harmonics
    "square": lambda k: np.where(k % 2 == 1, 1.0 / k, 0.0),      # hollow, odd harmonics
    "reed": lambda k: np.where(k % 2 == 1, 1.0 / k, 0.3 / k),    # sax/clarinet-like: odd-dominant
    "mellow": lambda k: 1.0 / k ** 2,                            # dark, bass-like
    "string": lambda k: 1.0 / k ** 1.3,
    "piano": lambda k: 1.0 / k ** 1.6,
    "flute": lambda k: np.select([k == 1, k == 2, k == 3], [1.0, 0.22, 0.07], 0.0),
    # Hammond drawbars 8' 4' 2 2/3' 2' 1 3/5' 1': harmonics 1, 2, 3, 4, 5, 8.
    "organ": lambda k: np.select([k == 1, k == 2, k == 3, k == 4, k == 5, k == 8],
                                 [1.0, 0.8, 0.6, 0.45, 0.2, 0.3], 0.0),
}

# Inharmonic partials (frequency ratio, amplitude, decay-time scale) for bar percussion.
_BELLS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "vibes": ((1.0, 1.0, 1.0), (3.98, 0.35, 0.35), (9.96, 0.12, 0.15)),       # tuned bars, nearly harmonic
    "celesta": ((1.0, 1.0, 1.0), (2.76, 0.45, 0.5), (5.40, 0.25, 0.25), (8.93, 0.12, 0.12)),  # free bars
}


@lru_cache(maxsize=2048)
def _wavetable(spectrum: str, n_harmonics: int) -> Audio:
    """One band-limited period with ``n_harmonics`` harmonics of ``spectrum``, peak 1."""
    n_harmonics = max(1, min(n_harmonics, _TABLE_SIZE // 2 - 1))
    k = np.arange(1, n_harmonics + 1, dtype=np.float64)
    bins = np.zeros(_TABLE_SIZE // 2 + 1, dtype=np.complex128)
    bins[1:n_harmonics + 1] = -1j * _SPECTRA[spectrum](k)
    table = np.fft.irfft(bins, n=_TABLE_SIZE)
    return (table / np.max(np.abs(table))).astype(np.float32)


_SINE = _wavetable("sine", 1)
_MAX_LFO_S = 12.0  # vibrato LFO cache length; longer notes just get a longer one
_RAMP = np.arange(0, dtype=np.int64)
_RAMP_F = np.arange(0, dtype=np.float32)


def _ramps(n: int) -> tuple[npt.NDArray[np.int64], Audio]:
    """Sample-index ramps (int64 and float32) of length ``n``, grown and reused across notes."""
    global _RAMP, _RAMP_F
    if len(_RAMP) < n:
        _RAMP = np.arange(max(n, 2 * len(_RAMP)), dtype=np.int64)
        _RAMP_F = _RAMP.astype(np.float32)
    return _RAMP[:n], _RAMP_F[:n]


def _phase_index(freq: float, n: int, sr: int, phase0: int) -> npt.NDArray[np.int64]:
    """Table indices of a constant-frequency oscillator (exact integer phase, no drift)."""
    inc = int(round(freq / sr * 2 ** 32))
    return ((_ramps(n)[0] * inc + phase0) >> _PHASE_SHIFT) & _TABLE_MASK


@lru_cache(maxsize=8)
def _lfo(rate: float, sr: int, n: int) -> Audio:
    """1 - cos(2 pi rate t), cached: every vibrato note shares it."""
    return (1.0 - np.cos(2.0 * np.pi * rate / sr * np.arange(n))).astype(np.float32)


def _vibrato_index(freq: float, n: int, sr: int, phase0: int, depth: float, rate: float
                   ) -> npt.NDArray[np.int64]:
    """Table indices of an oscillator with sinusoidal vibrato (analytic phase integral, fixed point)."""
    lfo = _lfo(rate, sr, max(n, int(_MAX_LFO_S * sr)))[:n]
    wobble = (lfo * np.float32(freq * depth / (2.0 * np.pi * rate) * 2 ** 32)).astype(np.int64)
    inc = int(round(freq / sr * 2 ** 32))
    return ((_ramps(n)[0] * inc + phase0 + wobble) >> _PHASE_SHIFT) & _TABLE_MASK


@lru_cache(maxsize=64)
def _decay(n: int, tau_s: float, sr: int) -> Audio:
    """exp(-t / tau) over ``n`` samples; cached (notes of one part share lengths), so read-only."""
    curve = np.exp(_ramps(n)[1] * np.float32(-1.0 / (tau_s * sr)))
    curve.flags.writeable = False
    return curve


def _hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


@dataclass(frozen=True)
class _Instrument:
    """A synth voice: oscillator kind + spectrum, brightness and an attack/decay/sustain/release envelope."""

    kind: str = "table"          # "table" (wavetable), "fm" (electric piano) or "bell" (inharmonic partials)
    spectrum: str = "saw"        # key of _SPECTRA (table) or _BELLS (bell)
    cutoff_hz: float = 6000.0    # harmonics above this are left out: the brightness knob
    attack: float = 0.005
    decay: float = 0.5           # time constant of the decay towards ``sustain``
    sustain: float = 0.0
    release: float = 0.05
    vibrato: float = 0.0         # depth as a frequency ratio
    detune_cents: float = 0.0    # > 0: a second, detuned oscillator (ensemble / supersaw)
    pluck: float = 0.0           # > 0: upper harmonics die away with this time constant (strings, piano)
    fm_index: float = 0.0

    def jittered(self, rng: np.random.Generator) -> _Instrument:
        """A per-clip variant: brightness and envelope times drawn around the nominal values."""
        return replace(self, cutoff_hz=self.cutoff_hz * rng.uniform(0.75, 1.3),
                       attack=self.attack * rng.uniform(0.8, 1.25), decay=self.decay * rng.uniform(0.75, 1.3),
                       fm_index=self.fm_index * rng.uniform(0.7, 1.3))


@lru_cache(maxsize=64)
def _envelope(inst: _Instrument, n_hold: int, n: int, sr: int) -> Audio:
    """Attack ramp, exponential decay to the sustain level, linear release after ``n_hold`` samples.

    Cached like ``_decay`` (hence read-only): most notes of a part have the same length.
    """
    if inst.sustain >= 1.0:
        env = np.ones(n, dtype=np.float32)
    else:
        env = _decay(n, inst.decay, sr).copy()
        if inst.sustain > 0.0:
            env *= np.float32(1.0 - inst.sustain)
            env += np.float32(inst.sustain)
    attack = min(int(inst.attack * sr), n)
    if attack > 1:
        env[:attack] *= _ramps(attack)[1] * np.float32(1.0 / (attack - 1))
    if n > n_hold:
        fall = n - n_hold
        env[n_hold:] *= _ramps(fall)[1][::-1] * np.float32(1.0 / max(fall - 1, 1))
    env.flags.writeable = False
    return env


def _render_note(inst: _Instrument, dur_s: float, midi: float, sr: int, phase0: int) -> Audio:
    """One note of ``inst``: ``dur_s`` held plus its release tail, unit velocity."""
    f0 = _hz(midi)
    n_hold = max(1, int(dur_s * sr))
    n = n_hold + max(1, int(inst.release * sr))
    nyquist = 0.45 * sr
    if inst.kind == "bell":
        wave = np.zeros(n, dtype=np.float32)
        for ratio, amp, decay_scale in _BELLS[inst.spectrum]:
            if f0 * ratio < nyquist:
                wave += _SINE[_phase_index(f0 * ratio, n, sr, phase0)] * (
                    _decay(n, inst.decay * decay_scale, sr) * np.float32(amp))
    elif inst.kind == "fm":
        # DX-style electric piano: 1:1 modulator whose index decays (bright attack, mellow tail) + a tine.
        idx = _phase_index(f0, n, sr, phase0)
        mod = _SINE[idx] * _decay(n, 0.35, sr) * np.float32(inst.fm_index * _TABLE_SIZE / (2 * np.pi))
        wave = _SINE[(idx + mod.astype(np.int64)) & _TABLE_MASK]
        if 14 * f0 < nyquist:
            wave += _SINE[_phase_index(14 * f0, n, sr, phase0)] * _decay(n, 0.03, sr) * np.float32(0.15)
    else:
        n_harm = int(min(inst.cutoff_hz, nyquist) / f0)
        table = _wavetable(inst.spectrum, n_harm)
        freqs = [f0] if inst.detune_cents <= 0 else [f0 * 2 ** (-inst.detune_cents / 2400),
                                                      f0 * 2 ** (inst.detune_cents / 2400)]
        # Unison oscillators start at different phases (and vibrate at slightly different rates).
        phases = [(phase0 + 0x5A5A5A5A * j) & 0xFFFFFFFF for j in range(len(freqs))]
        indices = [_vibrato_index(f, n, sr, p, inst.vibrato, 5.0 + 0.4 * j) if inst.vibrato
                   else _phase_index(f, n, sr, p) for j, (f, p) in enumerate(zip(freqs, phases))]
        wave = table[indices[0]]
        for idx in indices[1:]:
            wave += table[idx]
        if inst.pluck > 0:
            # Plucked/struck strings: start bright, decay towards the lowest few harmonics.
            dark = _wavetable(inst.spectrum, min(n_harm, 3))
            dark_wave = dark[indices[0]]
            for idx in indices[1:]:
                dark_wave += dark[idx]
            wave -= dark_wave
            wave *= _decay(n, inst.pluck, sr)
            wave += dark_wave
        if len(freqs) > 1:
            wave *= np.float32(1.0 / len(freqs))
    wave *= _envelope(inst, n_hold, n, sr)
    return wave


def _biquad(kind: str, cutoff_hz: float, sr: int, q: float = 0.7071) -> np.ndarray:
    """RBJ-cookbook low/high-pass second-order section, as an sos row (designing it is ~100x
    cheaper than ``scipy.signal.butter``, which mattered: a clip designs a dozen filters)."""
    w = 2.0 * math.pi * min(cutoff_hz, 0.45 * sr) / sr
    cos_w, alpha = math.cos(w), math.sin(w) / (2.0 * q)
    if kind == "lowpass":
        b = [(1.0 - cos_w) / 2.0, 1.0 - cos_w, (1.0 - cos_w) / 2.0]
    else:
        b = [(1.0 + cos_w) / 2.0, -(1.0 + cos_w), (1.0 + cos_w) / 2.0]
    a = [1.0 + alpha, -2.0 * cos_w, 1.0 - alpha]
    return np.array(b + a) / a[0]


def _filtered(x: Audio, *sections: np.ndarray) -> Audio:
    """Run ``x`` through the cascade of second-order sections."""
    return signal.sosfilt(np.vstack(sections), x).astype(np.float32)


def _add_at(bus: Audio, start: int, wave: Audio, gain: float) -> None:
    """Mix ``wave * gain`` into ``bus`` at sample ``start``, clipped to the bus."""
    if start < 0:
        wave, start = wave[-start:], 0
    end = min(len(bus), start + len(wave))
    if end > start:
        bus[start:end] += wave[:end - start] * np.float32(gain)


# --------------------------------------------------------------------------------------------
# Drum kit: pitch-swept sine kick, filtered-noise snare / hats / cymbals
# --------------------------------------------------------------------------------------------

def _drum_kit(rng: np.random.Generator, sr: int) -> dict[str, Audio]:
    """Synthesise one clip's drum samples (tunings and decays drawn per clip)."""
    def noise(seconds: float) -> Audio:
        return _white(rng, int(seconds * sr))

    def band(x: Audio, low: float | None, high: float | None) -> Audio:
        sections = ([_biquad("highpass", low, sr)] if low else []) + ([_biquad("lowpass", high, sr)] if high else [])
        return _filtered(x, *sections)

    kit: dict[str, Audio] = {}
    n = int(0.4 * sr)
    t = _ramps(n)[1] / np.float32(sr)
    f_end, f_start = rng.uniform(45, 62), rng.uniform(110, 190)
    freq = f_end + (f_start - f_end) * np.exp(-t / rng.uniform(0.02, 0.05))
    kick = np.sin(2 * np.pi * np.cumsum(freq) / sr).astype(np.float32) * _decay(n, rng.uniform(0.1, 0.22), sr)
    kick[:int(0.004 * sr)] += band(noise(0.004), 1500.0, None) * np.float32(0.4)  # beater click
    kit["kick"] = kick

    n = int(0.3 * sr)
    body = np.sin(2 * np.pi * rng.uniform(170, 230) * t[:n]).astype(np.float32) * _decay(n, 0.05, sr)
    kit["snare"] = (0.5 * body + band(noise(0.3), 1200.0, 9000.0) * _decay(n, rng.uniform(0.08, 0.16), sr))
    claps = np.zeros(int(0.25 * sr), dtype=np.float32)
    for k in range(3):  # three hands slightly apart, then the room tail
        burst = band(noise(0.03), 900.0, 3000.0) * _decay(int(0.03 * sr), 0.006, sr)
        _add_at(claps, int(k * 0.011 * sr), burst, 1.0)
    claps += band(noise(0.25), 900.0, 3000.0) * _decay(len(claps), 0.06, sr) * np.float32(0.5)
    kit["clap"] = claps
    kit["hat"] = band(noise(0.08), rng.uniform(6000, 8500), None) * _decay(int(0.08 * sr), 0.02, sr)
    kit["open_hat"] = band(noise(0.45), rng.uniform(6000, 8500), None) * _decay(int(0.45 * sr), 0.15, sr)
    n = int(1.2 * sr)
    ride = band(noise(1.2), 5000.0, None) * _decay(n, 0.35, sr) * np.float32(0.6)
    for ratio in (1.0, 1.47, 1.93):  # a few inharmonic bell partials give the ride its "ping"
        ride += (np.sin(2 * np.pi * rng.uniform(2900, 3300) * ratio * _ramps(n)[1] / sr).astype(np.float32)
                 * _decay(n, 0.5, sr) * np.float32(0.15))
    kit["ride"] = ride
    n = int(1.8 * sr)
    kit["crash"] = band(noise(1.8), 3500.0, None) * _decay(n, 0.6, sr)
    return kit


# --------------------------------------------------------------------------------------------
# Musical time, harmony, voicings and line writers
# --------------------------------------------------------------------------------------------

@dataclass
class _Context:
    """Everything a composer may use for one clip."""

    rng: np.random.Generator
    sr: int
    n: int       # output length in samples
    tonic: int   # pitch class of the key, 0 = C

    @property
    def seconds(self) -> float:
        return self.n / self.sr


@dataclass
class _Timeline:
    """Maps positions in beats to clip seconds: tempo, swing, a random start point and humanisation."""

    rng: np.random.Generator
    bpm: float
    beats_per_bar: int = 4
    swing: float = 0.5        # where the off-beat 8th falls within the beat; 0.5 = straight
    humanize_s: float = 0.006
    offset_s: float = 0.0     # song time at which the clip starts

    @property
    def beat_s(self) -> float:
        return 60.0 / self.bpm

    def bars_for(self, seconds: float) -> int:
        return math.ceil((seconds + self.offset_s) / (self.beat_s * self.beats_per_bar)) + 1

    def seconds(self, pos: float) -> float:
        whole = math.floor(pos)
        frac = pos - whole
        warped = 2 * frac * self.swing if frac < 0.5 else self.swing + (frac - 0.5) * 2 * (1 - self.swing)
        return (whole + warped) * self.beat_s - self.offset_s + self.rng.normal(0.0, self.humanize_s)

    def notes(self, events: Sequence[BeatNote], legato: float = 0.95) -> list[Note]:
        """Convert beat-time events to seconds (durations scaled by ``legato``)."""
        return [(self.seconds(pos), dur * self.beat_s * legato, float(midi), vel) for pos, dur, midi, vel in events]


def _timeline(rng: np.random.Generator, bpm_range: tuple[float, float], beats_per_bar: int = 4,
              swing: float = 0.5, humanize_s: float = 0.006) -> _Timeline:
    """A tempo drawn from the genre's range with +-8 % jitter; the clip starts anywhere in a bar."""
    bpm = rng.uniform(*bpm_range) * rng.uniform(0.92, 1.08)
    tl = _Timeline(rng, bpm, beats_per_bar, swing, humanize_s)
    tl.offset_s = rng.uniform(0.0, beats_per_bar * tl.beat_s)
    return tl


# Chord qualities as intervals above the root.
MAJ, MIN, POWER = (0, 4, 7), (0, 3, 7), (0, 7, 12)
DOM7, MAJ7, MIN7 = (0, 4, 7, 10), (0, 4, 7, 11), (0, 3, 7, 10)
DOM9, MAJ9, MIN9 = (0, 4, 7, 10, 14), (0, 4, 7, 11, 14), (0, 3, 7, 10, 14)
Progression = Sequence[tuple[int, tuple[int, ...]]]  # (root semitones above the tonic, quality)


@dataclass(frozen=True)
class _Chord:
    root: int                   # absolute pitch class
    intervals: tuple[int, ...]

    @property
    def pitch_classes(self) -> frozenset[int]:
        return frozenset((self.root + i) % 12 for i in self.intervals)


@dataclass
class _Changes:
    """A progression laid out in time: one chord every ``beats_per_chord`` beats."""

    chords: list[_Chord]
    beats_per_chord: float

    def at(self, pos: float) -> _Chord:
        return self.chords[min(int(pos // self.beats_per_chord), len(self.chords) - 1)]

    def spans(self) -> Iterator[tuple[float, _Chord]]:
        for i, chord in enumerate(self.chords):
            yield i * self.beats_per_chord, chord


def _changes(rng: np.random.Generator, progression: Progression, beats_per_chord: float, total_beats: float,
             tonic: int, enrich: Callable[[tuple[int, ...]], tuple[int, ...]] = lambda q: q) -> _Changes:
    """Cycle ``progression`` from a random chord (clips are excerpts) to cover ``total_beats``."""
    start = int(rng.integers(len(progression)))
    count = math.ceil(total_beats / beats_per_chord) + 1
    chords = []
    for i in range(count):
        root, quality = progression[(start + i) % len(progression)]
        chords.append(_Chord((tonic + root) % 12, enrich(quality)))
    return _Changes(chords, beats_per_chord)


def _voicing(chord: _Chord, center: float, previous: Sequence[int] | None, drop_root: bool = False) -> list[int]:
    """Place the chord's tones near ``center``, choosing the inversion that moves least from ``previous``."""
    intervals = [i for i in chord.intervals if not (drop_root and i % 12 == 0)]
    best: list[int] = []
    best_cost = math.inf
    for inv in range(len(intervals)):
        stack = intervals[inv:] + [i + 12 for i in intervals[:inv]]
        notes = [chord.root + i for i in stack]
        shift = 12 * round((center - sum(notes) / len(notes)) / 12)
        notes = [x + shift for x in notes]
        cost = abs(sum(notes) / len(notes) - center)
        if previous:
            cost += sum(min(abs(x - p) for p in previous) for x in notes) / len(notes)
        if cost < best_cost:
            best, best_cost = notes, cost
    return best


def _bass_pitch(pitch_class: int, low: int = 31) -> int:
    """The pitch of ``pitch_class`` in the octave starting at MIDI ``low`` (G1 by default)."""
    return low + (pitch_class - low) % 12


def _comp(changes: _Changes, pattern: Sequence[tuple[float, float]], n_bars: int, beats_per_bar: int,
          center: float, rng: np.random.Generator, drop_root: bool = False, vel: float = 0.6) -> list[BeatNote]:
    """Chord hits: every (position in bar, length) of ``pattern`` plays the chord sounding there."""
    events: list[BeatNote] = []
    previous: list[int] | None = None
    voiced: dict[int, list[int]] = {}
    for bar in range(n_bars):
        for pos, dur in pattern:
            at = bar * beats_per_bar + pos
            key = int(at // changes.beats_per_chord)
            if key not in voiced:
                voiced[key] = previous = _voicing(changes.at(at), center, previous, drop_root)
            v = vel * rng.uniform(0.8, 1.1)
            events.extend((at, dur, m, v) for m in voiced[key])
    return events


def _scale_mask(pitch_classes: Sequence[int] | frozenset[int], tonic: int) -> np.ndarray:
    mask = np.zeros(12, dtype=bool)
    mask[[(tonic + p) % 12 for p in pitch_classes]] = True
    return mask


def _melody(rng: np.random.Generator, rhythm: Sequence[tuple[float, float]], changes: _Changes,
            scale: Callable[[_Chord], np.ndarray], low: int, high: int, chord_tone_p: float = 0.7,
            chromatic_p: float = 0.0, vel: float = 0.7) -> list[BeatNote]:
    """A mostly stepwise random walk in ``scale``, landing on chord tones on the beat."""
    pitches = np.arange(low, high + 1)
    current = int(rng.integers(low + 5, high - 4))
    events: list[BeatNote] = []
    for pos, dur in rhythm:
        chord = changes.at(pos)
        on_beat = pos % 1 == 0
        mask = (_scale_mask(sorted(chord.pitch_classes), 0) if on_beat and rng.random() < chord_tone_p
                else scale(chord))
        candidates = pitches[mask[pitches % 12]]
        weights = np.exp(-np.abs(candidates - current) / 2.5)
        weights[candidates == current] *= 0.3
        current = int(rng.choice(candidates, p=weights / weights.sum()))
        pitch = current
        if not on_beat and rng.random() < chromatic_p:
            pitch = current + int(rng.choice((-1, 1)))  # chromatic neighbour / approach tone
        events.append((pos, dur, pitch, vel * rng.uniform(0.8, 1.15) * (1.1 if on_beat else 1.0)))
    return events


def _phrases(rng: np.random.Generator, n_bars: int, beats_per_bar: int, grid: float, fill: float,
             lengths: Sequence[int], rest_bar_p: float) -> list[tuple[float, float]]:
    """Melodic rhythm: bars of notes on a ``grid`` (lengths in grid steps), with whole bars of rest between."""
    rhythm: list[tuple[float, float]] = []
    for bar in range(n_bars):
        if rng.random() < rest_bar_p:
            continue
        pos = 0.0
        while pos < beats_per_bar - 1e-9:
            if rng.random() < fill:
                dur = min(grid * int(rng.choice(lengths)), beats_per_bar - pos)
                rhythm.append((bar * beats_per_bar + pos, dur))
                pos += dur
            else:
                pos += grid
    return rhythm


def _gain(rng: np.random.Generator, nominal: float) -> float:
    """Per-clip voice level: nominal -6...+3 dB."""
    return nominal * 10.0 ** (rng.uniform(-6.0, 3.0) / 20.0)


# --------------------------------------------------------------------------------------------
# Arrangement and mixing
# --------------------------------------------------------------------------------------------

@dataclass
class _Part:
    instrument: _Instrument
    notes: list[Note]
    gain: float
    bus: str = "dry"


@dataclass
class _Drive:
    """Guitar amp: tanh distortion with ``gain`` into a cabinet low-pass at ``cutoff_hz``."""

    gain: float
    cutoff_hz: float
    level: float


@dataclass
class _Arrangement:
    parts: list[_Part]
    drums: list[tuple[float, str, float]] = field(default_factory=list)  # (seconds, kit piece, velocity)
    drum_gain: float = 1.0
    drives: dict[str, _Drive] = field(default_factory=dict)


def _render(arrangement: _Arrangement, ctx: _Context) -> Audio:
    """Render all parts into buses, run the amp buses through their drive, and sum."""
    sr, n, rng = ctx.sr, ctx.n, ctx.rng
    buses: dict[str, Audio] = {}
    for part in arrangement.parts:
        bus = buses.setdefault(part.bus, np.zeros(n, dtype=np.float32))
        for start, dur, midi, vel in part.notes:
            if start >= ctx.seconds or start + dur + part.instrument.release <= 0:
                continue
            wave = _render_note(part.instrument, dur, midi, sr, int(rng.integers(2 ** 32)))
            _add_at(bus, round(start * sr), wave, vel * part.gain)
    mix = np.zeros(n, dtype=np.float32)
    for name, bus in buses.items():
        drive = arrangement.drives.get(name)
        if drive is not None:
            peak = float(np.max(np.abs(bus))) or 1.0
            bus = np.tanh(bus * np.float32(drive.gain / peak)) * np.float32(drive.level / math.tanh(drive.gain))
            # Cabinet: 4th-order Butterworth low-pass as two biquads (Q values of the Butterworth poles).
            bus = _filtered(bus, _biquad("lowpass", drive.cutoff_hz, sr, 0.5412),
                            _biquad("lowpass", drive.cutoff_hz, sr, 1.3066))
        mix += bus
    if arrangement.drums:
        kit = _drum_kit(rng, sr)
        for start, piece, vel in arrangement.drums:
            if start < ctx.seconds:
                _add_at(mix, round(start * sr), kit[piece], vel * arrangement.drum_gain)
    return mix


def _white(rng: np.random.Generator, n: int) -> Audio:
    """Unit-variance white noise; uniform rather than Gaussian because it is 4x faster to draw
    and sounds the same."""
    noise = rng.random(n, dtype=np.float32)
    noise -= np.float32(0.5)
    noise *= np.float32(math.sqrt(12.0))
    return noise


def _add_noise(mix: Audio, rng: np.random.Generator, sr: int, snr_db: float) -> Audio:
    """Add white or low-passed ("hum and rumble") noise at ``snr_db`` below the signal's RMS."""
    noise = _white(rng, len(mix))
    if rng.random() < 0.5:
        noise = _filtered(noise, _biquad("lowpass", rng.uniform(300.0, 3000.0), sr))
    signal_rms = math.sqrt(float(np.mean(np.square(mix, dtype=np.float64))))
    noise_rms = math.sqrt(float(np.mean(np.square(noise, dtype=np.float64)))) or 1.0
    return mix + noise * np.float32(signal_rms / noise_rms * 10.0 ** (-snr_db / 20.0))


def _drum_track(tl: _Timeline, n_bars: int, bar_pattern: Callable[[int], list[tuple[float, str, float]]]
                ) -> list[tuple[float, str, float]]:
    """Repeat a per-bar drum pattern (positions in beats within the bar) over ``n_bars``."""
    hits = []
    for bar in range(n_bars):
        for pos, piece, vel in bar_pattern(bar):
            hits.append((tl.seconds(bar * tl.beats_per_bar + pos), piece, vel * tl.rng.uniform(0.85, 1.1)))
    return hits


# --------------------------------------------------------------------------------------------
# Instruments (nominal settings; each clip jitters them)
# --------------------------------------------------------------------------------------------

EPIANO = _Instrument("fm", "sine", attack=0.002, decay=1.2, sustain=0.1, release=0.15, fm_index=1.6)
ORGAN = _Instrument("table", "organ", cutoff_hz=6000, attack=0.01, decay=1.0, sustain=1.0, release=0.06)
CLEAN_GUITAR = _Instrument("table", "string", cutoff_hz=4500, attack=0.003, decay=0.6, release=0.08, pluck=0.12)
VIBES = _Instrument("bell", "vibes", attack=0.002, decay=1.5, sustain=1.0, release=0.2)
HORN = _Instrument("table", "reed", cutoff_hz=3500, attack=0.04, decay=1.0, sustain=0.8, release=0.08,
                   vibrato=0.004)
UPRIGHT_BASS = _Instrument("table", "mellow", cutoff_hz=1200, attack=0.006, decay=0.5, sustain=0.25, release=0.06)
FINGER_BASS = _Instrument("table", "string", cutoff_hz=1800, attack=0.004, decay=0.8, sustain=0.4, release=0.05,
                          pluck=0.08)
SYNTH_BASS = _Instrument("table", "square", cutoff_hz=2500, attack=0.002, decay=0.2, sustain=0.45, release=0.03)
POWER_GUITAR = _Instrument("table", "saw", cutoff_hz=5000, attack=0.002, decay=1.5, sustain=0.5, release=0.05)
LEAD_GUITAR = _Instrument("table", "saw", cutoff_hz=5000, attack=0.004, decay=2.0, sustain=0.6, release=0.08,
                          vibrato=0.006)
STRINGS = _Instrument("table", "string", cutoff_hz=3500, attack=0.35, decay=1.0, sustain=1.0, release=0.35,
                      vibrato=0.003, detune_cents=8.0)
SOLO_STRING = _Instrument("table", "string", cutoff_hz=5000, attack=0.08, decay=1.0, sustain=1.0, release=0.15,
                          vibrato=0.006)
CELLO = _Instrument("table", "string", cutoff_hz=2500, attack=0.15, decay=1.0, sustain=1.0, release=0.25,
                    vibrato=0.004)
FLUTE = _Instrument("table", "flute", cutoff_hz=4000, attack=0.07, decay=1.0, sustain=1.0, release=0.1,
                    vibrato=0.005)
PIANO = _Instrument("table", "piano", cutoff_hz=6000, attack=0.002, decay=1.0, release=0.15, pluck=0.25)
HARPSICHORD = _Instrument("table", "saw", cutoff_hz=9000, attack=0.001, decay=0.6, release=0.05, pluck=0.08)
CELESTA = _Instrument("bell", "celesta", attack=0.001, decay=0.9, sustain=1.0, release=0.1)
SYNTH_STAB = _Instrument("table", "saw", cutoff_hz=9000, attack=0.002, decay=0.15, sustain=0.3, release=0.05,
                         detune_cents=14.0)
SYNTH_LEAD = _Instrument("table", "square", cutoff_hz=7000, attack=0.01, decay=0.5, sustain=0.7, release=0.06,
                         vibrato=0.004)
MUTED_GUITAR = _Instrument("table", "string", cutoff_hz=5000, attack=0.001, decay=0.04, release=0.02, pluck=0.02)


def _pick(rng: np.random.Generator, options: Sequence[_Instrument]) -> _Instrument:
    return options[int(rng.integers(len(options)))].jittered(rng)


# --------------------------------------------------------------------------------------------
# Composers, one per genre (pairs share code so that they differ only where the design says)
# --------------------------------------------------------------------------------------------

_BLUES_FORMS: tuple[Progression, ...] = (
    [(0, DOM7)] * 4 + [(5, DOM7)] * 2 + [(0, DOM7)] * 2 + [(7, DOM7), (5, DOM7), (0, DOM7), (7, DOM7)],
    [(0, DOM7), (5, DOM7), (0, DOM7), (0, DOM7)] + [(5, DOM7)] * 2 + [(0, DOM7)] * 2
    + [(7, DOM7), (5, DOM7), (0, DOM7), (7, DOM7)],
    [(0, MIN7)] * 4 + [(5, MIN7)] * 2 + [(0, MIN7)] * 2 + [(8, DOM7), (7, DOM7), (0, MIN7), (7, DOM7)],
)
_JAZZ_PROGRESSIONS: tuple[Progression, ...] = (
    [(2, MIN7), (7, DOM7), (0, MAJ7), (0, MAJ7)],
    [(0, MAJ7), (9, MIN7), (2, MIN7), (7, DOM7)],
    [(4, MIN7), (9, MIN7), (2, MIN7), (7, DOM7)],
    [(0, MAJ7), (9, DOM7), (2, MIN7), (7, DOM7)],
)
_SWING_COMPING: tuple[tuple[tuple[float, float], ...], ...] = (
    ((0.0, 1.0), (1.5, 0.5)),                      # Charleston
    ((0.0, 3.8),),                                 # whole-bar pads
    ((1.0, 0.6), (3.0, 0.6)),                      # on 2 and 4
    ((0.0, 1.4), (2.5, 1.2)),                      # anticipated 3
)
_BLUES_SCALE = (0, 3, 5, 6, 7, 10)
_MODES = {MIN7: (0, 2, 3, 5, 7, 9, 10), DOM7: (0, 2, 4, 5, 7, 9, 10), MAJ7: (0, 2, 4, 5, 7, 9, 11)}


def _compose_swing(ctx: _Context, *, jazz: bool) -> _Arrangement:
    """Blues or jazz: identical swing rhythm section and instrument draws; only the harmony differs."""
    rng = ctx.rng
    tl = _timeline(rng, (76, 136), swing=rng.uniform(0.6, 0.7), humanize_s=0.01)
    n_bars = tl.bars_for(ctx.seconds)
    beats = n_bars * 4
    if jazz:
        progression = _JAZZ_PROGRESSIONS[int(rng.integers(len(_JAZZ_PROGRESSIONS)))]
        nines = {MIN7: MIN9, DOM7: DOM9, MAJ7: MAJ9}
        changes = _changes(rng, progression, float(rng.choice([2, 4])), beats, ctx.tonic,
                           enrich=lambda q: nines[q] if rng.random() < 0.5 else q)
    else:
        changes = _changes(rng, _BLUES_FORMS[int(rng.choice(3, p=[0.45, 0.35, 0.2]))], 4.0, beats, ctx.tonic)

    parts = []
    # Comping: same instruments and patterns for both; jazz drops the root (rootless voicings).
    comp_inst = _pick(rng, (EPIANO, ORGAN, CLEAN_GUITAR, VIBES))
    pattern = _SWING_COMPING[int(rng.integers(len(_SWING_COMPING)))]
    comp = _comp(changes, pattern, n_bars, 4, rng.uniform(60, 66), rng, drop_root=jazz)
    parts.append(_Part(comp_inst, tl.notes(comp, 0.9), _gain(rng, 0.2)))
    if rng.random() < 0.3:  # optional sustained organ pad under the comping
        pad = _comp(changes, ((0.0, 3.9),), n_bars, 4, 58, rng, drop_root=jazz, vel=0.4)
        parts.append(_Part(ORGAN.jittered(rng), tl.notes(pad, 1.0), _gain(rng, 0.1)))

    # Walking bass in quarters for both; the note choice carries the harmony.
    bass: list[BeatNote] = []
    for beat in range(beats):
        chord = changes.at(beat)
        nxt = changes.at(beat + 1)
        root = _bass_pitch(chord.root)
        step = beat % 4 if changes.beats_per_chord == 4 else beat % 2
        if jazz:
            if step == 0:
                pitch = root
            elif nxt is not chord or step == int(changes.beats_per_chord) - 1:
                pitch = _bass_pitch(nxt.root) + int(rng.choice((-1, 1)))   # chromatic approach
            else:
                pitch = root + int(rng.choice([i for i in chord.intervals if 0 < i < 12]))
        else:
            third = 3 if 3 in chord.intervals else 4
            boogie = (0, third, 7, 9) if (beat // 4) % 2 == 0 else (10, 9, 7, third)
            pitch = root + boogie[beat % 4]
        bass.append((beat, 1.0, pitch, 0.75 * rng.uniform(0.85, 1.1)))
    parts.append(_Part(_pick(rng, (UPRIGHT_BASS, FINGER_BASS)), tl.notes(bass, 0.9), _gain(rng, 0.35)))

    if rng.random() < 0.85:
        rhythm = _phrases(rng, n_bars, 4, 0.5, fill=0.7, lengths=(1, 1, 1, 2, 3), rest_bar_p=0.35)
        if jazz:
            def scale(chord: _Chord) -> np.ndarray:
                base = min(_MODES, key=lambda q: len(set(q) ^ set(chord.intervals)))
                return _scale_mask(_MODES[base], chord.root)
            lead = _melody(rng, rhythm, changes, scale, 62, 86, chord_tone_p=0.6, chromatic_p=0.2)
        else:
            blues_scale = _scale_mask(_BLUES_SCALE, ctx.tonic)
            lead = _melody(rng, rhythm, changes, lambda chord: blues_scale, 62, 86, chord_tone_p=0.5)
        parts.append(_Part(_pick(rng, (HORN, CLEAN_GUITAR, EPIANO, VIBES)), tl.notes(lead, 0.9),
                           _gain(rng, 0.2)))

    ride = rng.random() < 0.6
    backbeat = rng.random() < 0.5
    feather = rng.random() < 0.5

    def bar_pattern(bar: int) -> list[tuple[float, str, float]]:
        hits: list[tuple[float, str, float]] = []
        if ride:  # "ding, ding-a ding, ding-a"
            hits += [(p, "ride", v) for p, v in ((0, 0.5), (1, 0.6), (1.5, 0.35), (2, 0.5), (3, 0.6), (3.5, 0.35))]
        else:     # shuffled hats
            hits += [(p / 2, "hat", 0.5 if p % 2 == 0 else 0.3) for p in range(8)]
        hits += [(1.0, "hat", 0.35), (3.0, "hat", 0.35)]
        hits += [(float(b), "kick", 0.3) for b in range(4)] if feather else [(0.0, "kick", 0.6), (2.0, "kick", 0.5)]
        if backbeat:
            hits += [(1.0, "snare", 0.45), (3.0, "snare", 0.45)]
        else:
            hits += [(p / 2, "snare", 0.2) for p in range(1, 8, 2) if rng.random() < 0.3]
        return hits

    return _Arrangement(parts, _drum_track(tl, n_bars, bar_pattern), drum_gain=_gain(rng, 0.35))


_ROCK_PROGRESSIONS: tuple[Progression, ...] = (
    [(0, MIN), (8, MAJ), (3, MAJ), (10, MAJ)],
    [(0, MIN), (10, MAJ), (8, MAJ), (10, MAJ)],
    [(0, MIN), (5, MIN), (8, MAJ), (10, MAJ)],
    [(0, MIN), (8, MAJ), (10, MAJ), (0, MIN)],
    [(0, MIN), (3, MAJ), (10, MAJ), (8, MAJ)],
    [(0, MIN), (1, MAJ), (0, MIN), (10, MAJ)],
)
_ROCK_STRUMS: tuple[tuple[tuple[float, float], ...], ...] = (
    tuple((p / 2, 0.5) for p in range(8)),                    # straight 8th chugs
    ((0.0, 1.5), (1.5, 1.0), (2.5, 0.5), (3.0, 1.0)),         # syncopated
    ((0.0, 0.5), (0.5, 0.5), (1.0, 1.0), (2.0, 0.5), (2.5, 0.5), (3.0, 1.0)),
    ((0.0, 4.0),),                                            # let ring
)
_MINOR_PENTATONIC = (0, 3, 5, 7, 10)


def _compose_guitar_band(ctx: _Context, *, metal: bool) -> _Arrangement:
    """Rock or metal: identical score distribution; only the amp (distortion, cabinet brightness) differs."""
    rng = ctx.rng
    tl = _timeline(rng, (100, 156), humanize_s=0.005)
    n_bars = tl.bars_for(ctx.seconds)
    progression = _ROCK_PROGRESSIONS[int(rng.integers(len(_ROCK_PROGRESSIONS)))]
    changes = _changes(rng, progression, float(rng.choice([4, 4, 8])), n_bars * 4, ctx.tonic)

    strum = _ROCK_STRUMS[int(rng.integers(len(_ROCK_STRUMS)))]
    palm_mute = rng.random() < 0.4
    guitar = replace(POWER_GUITAR.jittered(rng), decay=0.12) if palm_mute else POWER_GUITAR.jittered(rng)
    power: list[BeatNote] = []
    bass: list[BeatNote] = []
    for bar in range(n_bars):
        for pos, dur in strum:
            at = bar * 4 + pos
            root = 40 + (changes.at(at).root - 40) % 12          # E2..D#3, like a guitar's low strings
            v = (0.8 if pos % 1 == 0 else 0.65) * rng.uniform(0.9, 1.1)
            power.extend((at, dur, root + i, v) for i in POWER)
            bass.append((at, dur, _bass_pitch(changes.at(at).root, 28), v))
    parts = [_Part(guitar, tl.notes(power, 0.98), _gain(rng, 0.3), bus="amp"),
             _Part(_pick(rng, (FINGER_BASS, UPRIGHT_BASS)), tl.notes(bass, 0.9), _gain(rng, 0.3))]
    if rng.random() < 0.7:
        rhythm = _phrases(rng, n_bars, 4, 0.5, fill=0.6, lengths=(1, 2, 2, 3, 4), rest_bar_p=0.4)
        pent = _scale_mask(_MINOR_PENTATONIC, ctx.tonic)
        lead = _melody(rng, rhythm, changes, lambda chord: pent, 60, 84, chord_tone_p=0.5)
        parts.append(_Part(LEAD_GUITAR.jittered(rng), tl.notes(lead, 0.95), _gain(rng, 0.2), bus="lead"))
    if rng.random() < 0.35:  # optional organ pad with full triads
        pad = _comp(changes, ((0.0, 4.0),), n_bars, 4, 60, rng, vel=0.4)
        parts.append(_Part(ORGAN.jittered(rng), tl.notes(pad, 1.0), _gain(rng, 0.08)))

    drives = {}
    for bus in ("amp", "lead"):
        if metal:
            drives[bus] = _Drive(rng.uniform(12.0, 40.0), rng.uniform(4500.0, 8000.0), _gain(rng, 0.45))
        else:
            drives[bus] = _Drive(rng.uniform(1.5, 5.0), rng.uniform(2000.0, 3500.0), _gain(rng, 0.45))
    if "lead" in drives:
        drives["lead"].level *= 0.7

    ride = rng.random() < 0.3
    kick_extra = [p for p in (1.5, 2.5, 3.5) if rng.random() < 0.4]

    def bar_pattern(bar: int) -> list[tuple[float, str, float]]:
        hits = [(p / 2, "ride" if ride else "hat", 0.55 if p % 2 == 0 else 0.4) for p in range(8)]
        hits += [(0.0, "kick", 0.9), (2.0, "kick", 0.8)] + [(p, "kick", 0.7) for p in kick_extra]
        hits += [(1.0, "snare", 0.85), (3.0, "snare", 0.85)]
        if bar % 4 == 0:
            hits.append((0.0, "crash", 0.5))
        if bar % 4 == 3 and rng.random() < 0.4:  # fill into the next phrase
            hits += [(3.0 + k / 4, "snare", 0.5 + 0.1 * k) for k in range(4)]
        return hits

    return _Arrangement(parts, _drum_track(tl, n_bars, bar_pattern), drum_gain=_gain(rng, 0.45), drives=drives)


_CLASSICAL_MAJOR: tuple[Progression, ...] = (
    [(0, MAJ), (5, MAJ), (7, DOM7), (0, MAJ)],
    [(0, MAJ), (9, MIN), (5, MAJ), (7, MAJ)],
    [(0, MAJ), (2, MIN), (7, DOM7), (0, MAJ)],
    [(0, MAJ), (7, MAJ), (9, MIN), (4, MIN), (5, MAJ), (0, MAJ), (5, MAJ), (7, MAJ)],
    [(0, MAJ), (5, MAJ), (0, MAJ), (7, DOM7)],
)
_CLASSICAL_MINOR: tuple[Progression, ...] = (
    [(0, MIN), (5, MIN), (7, DOM7), (0, MIN)],
    [(0, MIN), (8, MAJ), (5, MIN), (7, MAJ)],
)
_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
_HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 11)


def _compose_classical(ctx: _Context) -> _Arrangement:
    """Classical: no drums, slow sustained strings, arpeggios and a stepwise melody in major/harmonic minor."""
    rng = ctx.rng
    bpb = int(rng.choice([3, 4], p=[0.4, 0.6]))
    tl = _timeline(rng, (60, 100), beats_per_bar=bpb, humanize_s=0.015)
    n_bars = tl.bars_for(ctx.seconds)
    major = rng.random() < 0.75
    forms = _CLASSICAL_MAJOR if major else _CLASSICAL_MINOR
    per_chord = bpb / 2 if bpb == 4 and rng.random() < 0.3 else bpb
    changes = _changes(rng, forms[int(rng.integers(len(forms)))], per_chord, n_bars * bpb, ctx.tonic)
    scale = _scale_mask(_MAJOR_SCALE if major else _HARMONIC_MINOR, ctx.tonic)

    parts = []
    use_pad, use_arp = rng.random() < 0.7, rng.random() < 0.6
    if not (use_pad or use_arp):
        use_pad = True
    if use_pad:
        hits = ((0.0, float(bpb)),) if per_chord == bpb else ((0.0, 2.0), (2.0, 2.0))
        pad = _comp(changes, hits, n_bars, bpb, rng.uniform(58, 66), rng, vel=0.5)
        parts.append(_Part(STRINGS.jittered(rng), tl.notes(pad, 1.0), _gain(rng, 0.12)))
    if use_arp:  # Alberti-style broken chords in 8ths: low, high, middle, high
        arp: list[BeatNote] = []
        previous: list[int] | None = None
        chord: _Chord | None = None
        for pos in np.arange(0, n_bars * bpb, 0.5):
            if changes.at(pos) is not chord:
                chord = changes.at(pos)
                previous = _voicing(chord, 57, previous)
            order = (0, -1, 1, -1)[int(pos * 2) % 4]
            arp.append((float(pos), 0.5, previous[order], 0.5 * rng.uniform(0.85, 1.1)))
        parts.append(_Part(_pick(rng, (PIANO, HARPSICHORD)), tl.notes(arp, 1.0), _gain(rng, 0.15)))
    if rng.random() < 0.6:  # cello on the chord roots
        cello = [(start, per_chord, _bass_pitch(chord.root, 36), 0.6) for start, chord in changes.spans()]
        parts.append(_Part(CELLO.jittered(rng), tl.notes(cello, 1.0), _gain(rng, 0.2)))
    rhythm = _phrases(rng, n_bars, bpb, 0.5, fill=0.8, lengths=(1, 2, 2, 2, 4), rest_bar_p=0.15)
    melody = _melody(rng, rhythm, changes, lambda chord: scale, 64, 88, chord_tone_p=0.75)
    parts.append(_Part(_pick(rng, (FLUTE, SOLO_STRING, CELESTA, PIANO)), tl.notes(melody, 1.0), _gain(rng, 0.2)))
    return _Arrangement(parts)


_DISCO_VAMPS: tuple[Progression, ...] = (
    [(0, MIN7), (5, DOM7)],
    [(0, MIN9), (5, DOM9)],
    [(0, MIN7), (5, MIN7)],
    [(0, MIN7), (0, MIN7), (10, MAJ), (5, DOM7)],
)
_DORIAN = (0, 2, 3, 5, 7, 9, 10)


def _compose_disco(ctx: _Context) -> _Arrangement:
    """Disco: four-on-the-floor, octave bass, dorian m7 vamps, bright stabs / strings / muted guitar."""
    rng = ctx.rng
    tl = _timeline(rng, (112, 130), humanize_s=0.003)
    n_bars = tl.bars_for(ctx.seconds)
    changes = _changes(rng, _DISCO_VAMPS[int(rng.integers(len(_DISCO_VAMPS)))], float(rng.choice([4, 8])),
                       n_bars * 4, ctx.tonic)
    parts = []
    bass = [(p / 2, 0.5, _bass_pitch(changes.at(p / 2).root, 33) + (12 if p % 2 else 0), 0.75)
            for p in range(n_bars * 8)]
    parts.append(_Part(_pick(rng, (SYNTH_BASS, FINGER_BASS)), tl.notes(bass, 0.8), _gain(rng, 0.3)))

    use = {"stabs": rng.random() < 0.6, "strings": rng.random() < 0.5, "guitar": rng.random() < 0.4}
    if not any(use.values()):
        use["stabs"] = True
    if use["stabs"]:  # off-beat chord stabs
        stabs = _comp(changes, tuple((b + 0.5, 0.25) for b in range(4)), n_bars, 4, rng.uniform(62, 70), rng)
        parts.append(_Part(SYNTH_STAB.jittered(rng), tl.notes(stabs, 1.0), _gain(rng, 0.12)))
    if use["strings"]:
        pad = _comp(changes, ((0.0, 4.0),), n_bars, 4, rng.uniform(62, 70), rng, vel=0.5)
        parts.append(_Part(STRINGS.jittered(rng), tl.notes(pad, 1.0), _gain(rng, 0.1)))
    if use["guitar"]:  # 16th "chicken scratch"
        scratch = [e for e in _comp(changes, tuple((k / 4, 0.2) for k in range(16)), n_bars, 4, 67, rng, vel=0.35)
                   if rng.random() < 0.7]
        parts.append(_Part(MUTED_GUITAR.jittered(rng), tl.notes(scratch, 1.0), _gain(rng, 0.1)))
    if rng.random() < 0.5:
        rhythm = _phrases(rng, n_bars, 4, 0.25, fill=0.5, lengths=(1, 2, 2, 3), rest_bar_p=0.4)
        dorian = _scale_mask(_DORIAN, ctx.tonic)
        lead = _melody(rng, rhythm, changes, lambda chord: dorian, 62, 86, chord_tone_p=0.6)
        parts.append(_Part(_pick(rng, (SYNTH_LEAD, STRINGS)), tl.notes(lead, 0.85), _gain(rng, 0.16)))

    sixteenths = rng.random() < 0.5

    def bar_pattern(bar: int) -> list[tuple[float, str, float]]:
        hits = [(float(b), "kick", 0.9) for b in range(4)]
        hits += [(b + 0.5, "open_hat", 0.5) for b in range(4)]
        hits += [(1.0, "clap", 0.7), (3.0, "clap", 0.7)]
        if sixteenths:
            hits += [(k / 4, "hat", 0.3) for k in range(16) if k % 2 == 0 or rng.random() < 0.7]
        if bar % 8 == 0:
            hits.append((0.0, "crash", 0.4))
        return hits

    return _Arrangement(parts, _drum_track(tl, n_bars, bar_pattern), drum_gain=_gain(rng, 0.45))


_COMPOSERS: dict[str, Callable[[_Context], _Arrangement]] = {
    "blues": lambda ctx: _compose_swing(ctx, jazz=False),
    "jazz": lambda ctx: _compose_swing(ctx, jazz=True),
    "rock": lambda ctx: _compose_guitar_band(ctx, metal=False),
    "metal": lambda ctx: _compose_guitar_band(ctx, metal=True),
    "classical": _compose_classical,
    "disco": _compose_disco,
}

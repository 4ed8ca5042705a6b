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

The package: :mod:`~genre.demo.corpus` writes the corpus (marker, lock, worker pool);
:mod:`~genre.demo.genres` makes one clip of a genre with the composers in :mod:`~genre.demo.swing`
(blues, jazz), :mod:`~genre.demo.guitar_band` (rock, metal), :mod:`~genre.demo.classical` and
:mod:`~genre.demo.disco`; they write scores with :mod:`~genre.demo.theory` (time, chords, lines) for the
voices in :mod:`~genre.demo.instruments` and :mod:`~genre.demo.drums`, which :mod:`~genre.demo.mixing`
renders with :mod:`~genre.demo.synthesis` (oscillators, envelopes, filters, noise).
"""

from genre.demo.corpus import FORMAT_VERSION, MARKER_NAME, clip_path, generate_demo_corpus
from genre.demo.genres import DEMO_GENRES

__all__ = ["DEMO_GENRES", "FORMAT_VERSION", "MARKER_NAME", "clip_path", "generate_demo_corpus"]

"""Batched, device-agnostic audio features: ``(batch, samples)`` -> ``(batch, bands, frames)``."""

from genre.features.base import WaveformFeature
from genre.features.extractor import LOG_MODES, FeatureExtractor, power_to_db
from genre.features.fusion import Fusion
from genre.features.note_statistics import NoteStatistics
from genre.features.pitch import (
    Chromagram,
    MidiSpectrogram,
    chroma_fold,
    midi_filterbank,
    midi_to_hz,
)
from genre.features.pretrained import Musicnn, MusicnnInput
from genre.features.spectral import MFCC, MelSpectrogram
from genre.features.transcription import BasicPitch

__all__ = [
    "LOG_MODES",
    "MFCC",
    "BasicPitch",
    "Chromagram",
    "FeatureExtractor",
    "Fusion",
    "MelSpectrogram",
    "MidiSpectrogram",
    "Musicnn",
    "MusicnnInput",
    "NoteStatistics",
    "WaveformFeature",
    "chroma_fold",
    "midi_filterbank",
    "midi_to_hz",
    "power_to_db",
]

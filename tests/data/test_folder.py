"""dataset=folder: any <genre>/<file> tree in any format librosa reads, or a CSV manifest; every bad
file skipped with its reason, every bad folder or manifest a one-line error."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from genre.core.errors import ConfigError
from genre.data.prepare import PreparedData, prepare_data
from helpers import compose_run
from helpers.dataset_trees import make_genre_folder, tone, write_audio

RATE = 8000
TINY = [f"dataset.sample_rate={RATE}", "dataset.clip_seconds=2", "dataset.decode_workers=1"]


def _prepare(tmp_path: Path, *overrides: str) -> PreparedData:
    cfg = compose_run(["dataset=folder", *TINY, *overrides], tmp_path, tmp_path / "cache")
    return prepare_data(cfg.dataset, cfg.paths.cache_dir, progress=False)


def _peak_hz(clip: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(clip.astype(np.float64)))
    return float(np.argmax(spectrum) * RATE / clip.size)


def test_folder_names_are_labels_and_every_format_is_converted(tmp_path: Path) -> None:
    root = make_genre_folder(tmp_path / "mine")
    data = _prepare(tmp_path, f"dataset.root={root}")
    assert data.labels == ["ambient", "polka", "techno"] and data.skipped == {}
    paths = [p for clips in data.splits.values() for p in clips.paths]
    assert len(paths) == len(set(paths)) == 12
    for g, genre in enumerate(("ambient", "polka", "techno")):
        for i in range(4):
            # WAV stereo 44.1 kHz, FLAC 48 kHz, OGG stereo 16 kHz, MP3 22.05 kHz, AU 8 kHz: all now 8 kHz mono,
            # 2 s, and still the tone that was written (so resampled, not just relabelled).
            path = next(p for p in paths if Path(p).stem == f"{genre}_{i}")
            clip = data.cache.read(data.cache.row_of[path])
            assert clip.shape == (2 * RATE,)
            assert abs(_peak_hz(clip) - (300 + 50 * g + 13 * i)) <= 1.0, path


def test_bad_files_are_skipped_each_with_its_reason(tmp_path: Path) -> None:
    root = make_genre_folder(tmp_path / "mine")
    polka = root / "polka"
    (polka / "empty.wav").write_bytes(b"")
    full = write_audio(tmp_path / "full.wav", tone(2.0, RATE, 500.0), RATE, "WAV").read_bytes()
    (polka / "header_only.wav").write_bytes(full[:44])
    (polka / "cut_header.wav").write_bytes(full[:30])
    (polka / "half.wav").write_bytes(full[: 44 + RATE])  # 0.5 s of its 2 s survive
    (polka / "notes.mp3").write_text("not audio at all\n" * 100)
    os.symlink(tmp_path / "gone.flac", polka / "gone.flac")  # a link to a file that was deleted
    data = _prepare(tmp_path, f"dataset.root={root}", "dataset.min_seconds=1")
    reasons = {Path(p).name: r for p, r in data.skipped.items()}
    assert set(reasons) == {"empty.wav", "header_only.wav", "cut_header.wav", "half.wav", "notes.mp3", "gone.flac"}
    assert reasons["empty.wav"] == "zero-byte file"
    assert reasons["header_only.wav"] == "no audio samples (empty or truncated file)"
    assert reasons["cut_header.wav"].startswith("undecodable (no decoder reads it")
    assert reasons["half.wav"] == "too short (0.50 s < min_seconds=1 s)"
    assert reasons["notes.mp3"].startswith("undecodable (")
    assert reasons["gone.flac"] == "file missing"
    assert sum(len(c) for c in data.splits.values()) == 12
    summary = data.summary()
    assert "skipped files: 6" in summary and "half.wav: too short" in summary


def test_short_files_are_padded_or_skipped_per_option(tmp_path: Path) -> None:
    root = make_genre_folder(tmp_path / "mine")
    short = write_audio(root / "ambient" / "short.wav", tone(1.5, RATE, 440.0), RATE, "WAV")
    padded = _prepare(tmp_path, f"dataset.root={root}")
    clip = padded.cache.read(padded.cache.row_of[str(short.resolve())])
    assert np.abs(clip[:RATE]).max() > 1000 and not clip[int(1.6 * RATE) :].any()
    skipped = _prepare(tmp_path, f"dataset.root={root}", "dataset.short_clips=skip")
    assert skipped.skipped[str(short.resolve())] == "shorter than the clip (1.50 s < clip_seconds=2 s)"


def test_an_empty_genre_folder_is_a_one_line_error(tmp_path: Path) -> None:
    root = make_genre_folder(tmp_path / "mine")
    (root / "waltz").mkdir()
    (root / "waltz" / "cover.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(
        ConfigError,
        match=r"^dataset.root: genre folder '.*waltz' holds no audio files \(.*\)\. "
        r"Add audio files to it or remove the empty folder$",
    ):
        _prepare(tmp_path, f"dataset.root={root}")


def test_neither_root_nor_manifest_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^dataset.root: no dataset folder given\. Set it to the folder"):
        _prepare(tmp_path)


def _manifest(tmp_path: Path, rows: list[str], header: str = "path,label,split") -> Path:
    path = tmp_path / "lists" / "manifest.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _rows(root: Path, splits: tuple[str, ...]) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """Manifest rows for every file under ``root`` (relative to the manifest's folder), cycling ``splits``;
    labels deliberately differ from the folder names, to show they come from the manifest."""
    rows, expected = [], {}
    for genre in ("ambient", "polka", "techno"):
        for i, file in enumerate(sorted((root / genre).iterdir())):
            split = splits[i % len(splits)]
            rows.append(f"audio/{genre}/{file.name},{genre.upper()},{split}")
            expected[file.stem] = (genre.upper(), split)
    return rows, expected


def _got(data: PreparedData) -> dict[str, tuple[str, str]]:
    return {
        Path(p).stem: (data.labels[t], split)
        for split, clips in data.splits.items()
        for p, t in zip(clips.paths, clips.targets)
    }


def test_a_manifest_gives_files_labels_and_the_splits_it_names(tmp_path: Path) -> None:
    root = make_genre_folder(tmp_path / "lists" / "audio", per_genre=6)
    rows, expected = _rows(root, ("train", "val", "test", "", "", ""))
    data = _prepare(tmp_path, f"dataset.manifest={_manifest(tmp_path, rows)}")
    assert data.labels == ["AMBIENT", "POLKA", "TECHNO"]
    got = _got(data)
    assert set(got) == set(expected)
    for stem, (label, split) in expected.items():
        assert got[stem][0] == label
        if split:  # rows that name a split keep it; the others were split by seed
            assert got[stem][1] == split, stem


def test_a_manifest_with_every_split_given_and_the_official_split(tmp_path: Path) -> None:
    root = make_genre_folder(tmp_path / "lists" / "audio")
    rows, expected = _rows(root, ("train", "val", "test", "train"))
    data = _prepare(tmp_path, f"dataset.manifest={_manifest(tmp_path, rows)}", "dataset/split=official")
    assert _got(data) == expected
    rows[0] = rows[0].rsplit(",", 1)[0] + ","
    with pytest.raises(ConfigError, match=r"^dataset.split: 1 of 12 files have no predefined split"):
        _prepare(tmp_path, f"dataset.manifest={_manifest(tmp_path, rows)}", "dataset/split=official")


@pytest.mark.parametrize(
    "header,rows,message",
    [
        ("file,genre", ["a.wav,rock"], r"has the columns file, genre\. Its header row must be path,label"),
        ("path,label,split", ["a.wav,rock,holdout"], r"line 2 has the split 'holdout'\. Use train, val or test"),
        (
            "path,label,split",
            ["audio/x/x_0.wav,rock,", "audio/x/../x/x_0.wav,jazz,"],
            r"line 3 repeats the file of line 2 .* or it could land in two splits",
        ),
        ("path,label", ["audio/x/x_0.wav,"], r"line 2 has an empty label"),
        (
            "path,label",
            ["nowhere/a.wav,rock", "nowhere/b.wav,jazz"],
            r"none of the 2 files in '.*manifest.csv' exist \(e.g. .*nowhere/a.wav\)\. Relative paths are read from",
        ),
        ("path,label", [], r"lists no files"),
    ],
)
def test_manifest_errors_are_one_line_and_name_the_line(
    header: str, rows: list[str], message: str, tmp_path: Path
) -> None:
    write_audio(tmp_path / "lists" / "audio" / "x" / "x_0.wav", tone(2.0, RATE, 300.0), RATE, "WAV")
    manifest = _manifest(tmp_path, rows, header)
    with pytest.raises(ConfigError, match=r"^dataset.manifest: .*" + message):
        _prepare(tmp_path, f"dataset.manifest={manifest}")

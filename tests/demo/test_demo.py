"""The generated demo corpus: GTZAN layout, WAV format, determinism, idempotence and crash/concurrency safety."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genre.demo import DEMO_GENRES, MARKER_NAME, corpus, generate_demo_corpus
from helpers import REPO, python_env
from helpers.waiting import SAFETY_TIMEOUT, wait_for

# Tiny but not default: a non-default rate and seed catch arguments that are silently ignored.
TINY = {"clips_per_genre": 2, "clip_seconds": 2.0, "sample_rate": 16000, "seed": 3, "progress": False}


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (marker included) by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def partials(root: Path) -> list[Path]:
    """Hidden half-written siblings of ``root`` (what a killed generation leaves)."""
    return sorted(root.parent.glob(f".{root.name}.partial-*"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny corpus made in-process (workers=1), the yardstick for the other tests."""
    return generate_demo_corpus(tmp_path_factory.mktemp("ref") / "corpus", workers=1, **TINY)


REFERENCE = json.loads((REPO / "tests" / "references" / "demo_corpus_sha256.json").read_text())


@pytest.mark.parametrize("case", REFERENCE["corpora"], ids=lambda c: "-".join(f"{v}" for v in c["parameters"].values()))
def test_corpus_matches_the_committed_reference(case: dict, tmp_path: Path) -> None:
    """Byte for byte what the original implementation wrote (tests/references/make_demo_reference.py)."""
    root = generate_demo_corpus(tmp_path / "corpus", progress=False, workers=1, **case["parameters"])
    hashes = {path: hashlib.sha256(data).hexdigest() for path, data in snapshot(root).items()}
    assert sorted(hashes) == sorted(case["sha256"])
    changed = sorted(path for path, digest in hashes.items() if case["sha256"][path] != digest)
    assert changed == [], f"{len(changed)} of {len(hashes)} files differ from the reference"


def test_layout_matches_gtzan(reference: Path) -> None:
    assert len(DEMO_GENRES) >= 6 and len(set(DEMO_GENRES)) == len(DEMO_GENRES)
    genre_dirs = sorted(p.name for p in reference.iterdir() if p.is_dir())
    assert genre_dirs == sorted(DEMO_GENRES)
    for genre in DEMO_GENRES:
        names = sorted(p.name for p in (reference / genre).iterdir())
        pattern = re.compile(rf"^{re.escape(genre)}\.\d{{5}}\.wav$")
        assert all(pattern.match(n) for n in names), names
        assert names == [f"{genre}.00000.wav", f"{genre}.00001.wav"]
    # Nothing but genre folders and the hidden marker at the top level.
    assert sorted(p.name for p in reference.iterdir() if not p.is_dir()) == [MARKER_NAME]


def test_files_are_16bit_mono_at_requested_rate_and_length(reference: Path) -> None:
    for path in sorted(reference.rglob("*.wav")):
        info = sf.info(path)
        assert (info.format, info.subtype, info.channels) == ("WAV", "PCM_16", 1), path
        assert info.samplerate == TINY["sample_rate"]
        assert info.frames == round(TINY["clip_seconds"] * TINY["sample_rate"])
        pcm, _ = sf.read(path, dtype="int16")
        peak = int(np.max(np.abs(pcm.astype(np.int32))))
        assert 0.4 * 32767 < peak < 32767, f"{path}: peak {peak} (silent or clipped)"


@pytest.mark.slow
def test_same_seed_is_byte_identical_even_with_a_process_pool(reference: Path, tmp_path: Path) -> None:
    again = generate_demo_corpus(tmp_path / "again", workers=2, **TINY)
    assert snapshot(again) == snapshot(reference)


def test_different_seed_gives_different_audio(reference: Path, tmp_path: Path) -> None:
    other = generate_demo_corpus(tmp_path / "other", workers=1, **{**TINY, "seed": TINY["seed"] + 1})
    for path in sorted(reference.rglob("*.wav")):
        a, _ = sf.read(path, dtype="int16")
        b, _ = sf.read(other / path.relative_to(reference), dtype="int16")
        assert not np.array_equal(a, b), path


def test_clips_differ_within_and_across_genres(reference: Path) -> None:
    clips = [sf.read(p, dtype="int16")[0] for p in sorted(reference.rglob("*.wav"))]
    for i in range(len(clips)):
        for j in range(i + 1, len(clips)):
            assert not np.array_equal(clips[i], clips[j])


def test_second_call_writes_nothing(reference: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("synthesis ran for a finished corpus")

    monkeypatch.setattr(corpus, "synthesize_clip", must_not_run)
    before = {p: p.stat().st_mtime_ns for p in reference.rglob("*")}
    siblings = sorted(reference.parent.iterdir())
    assert generate_demo_corpus(reference, workers=1, **TINY) == reference
    assert {p: p.stat().st_mtime_ns for p in reference.rglob("*")} == before
    assert sorted(reference.parent.iterdir()) == siblings  # not even a lock file


def test_relative_path_finds_the_same_corpus(reference: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(reference.parent)
    monkeypatch.setattr(corpus, "synthesize_clip", lambda *a, **k: pytest.fail("regenerated"))
    assert generate_demo_corpus(reference.name, workers=1, **TINY) == reference


def test_foreign_directory_is_refused_and_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "music"
    root.mkdir()
    (root / "mine.txt").write_text("precious")
    with pytest.raises(ValueError) as excinfo:
        generate_demo_corpus(root, workers=1, **TINY)
    message = str(excinfo.value)
    assert str(root) in message and "delete" in message and "\n" not in message
    assert sorted(p.name for p in root.iterdir()) == ["mine.txt"]
    assert (root / "mine.txt").read_text() == "precious"


def test_corpus_with_other_parameters_is_refused(reference: Path) -> None:
    before = snapshot(reference)
    for change in ({"seed": 99}, {"clips_per_genre": 3}, {"clip_seconds": 1.0}, {"sample_rate": 22050}):
        with pytest.raises(ValueError, match=re.escape(str(reference))):
            generate_demo_corpus(reference, workers=1, **{**TINY, **change})
    assert snapshot(reference) == before


def test_corrupt_marker_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / MARKER_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="delete it or choose another cache dir"):
        generate_demo_corpus(root, workers=1, **TINY)


def test_empty_existing_directory_is_filled(reference: Path, tmp_path: Path) -> None:
    root = tmp_path / "premade"
    root.mkdir()
    assert generate_demo_corpus(root, workers=1, **TINY) == root
    assert snapshot(root) == snapshot(reference)


@pytest.mark.parametrize(
    "bad",
    [
        {"clips_per_genre": 0},
        {"clip_seconds": 0.0},
        {"clip_seconds": float("nan")},
        {"sample_rate": 100},
        {"seed": -1},
        {"workers": 0},
    ],
)
def test_invalid_arguments_are_rejected(tmp_path: Path, bad: dict) -> None:
    with pytest.raises(ValueError):
        generate_demo_corpus(tmp_path / "corpus", **{**TINY, "workers": 1, **bad})
    assert not (tmp_path / "corpus").exists()


def test_failed_generation_leaves_nothing_behind(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = corpus.synthesize_clip
    calls = []

    def flaky(*args: object, **kwargs: object) -> np.ndarray:
        calls.append(args)
        if len(calls) == 5:
            raise RuntimeError("synthesiser crashed")
        return real(*args, **kwargs)

    monkeypatch.setattr(corpus, "synthesize_clip", flaky)
    root = tmp_path / "corpus"
    with pytest.raises(RuntimeError, match="synthesiser crashed"):
        generate_demo_corpus(root, workers=1, **TINY)
    assert not root.exists() and partials(root) == []
    monkeypatch.setattr(corpus, "synthesize_clip", real)
    assert snapshot(generate_demo_corpus(root, workers=1, **TINY)) == snapshot(reference)


# Writes its first clip, then hangs on the second until killed: mid-way however slow the machine is.
_SLOW_GENERATOR = """
import sys, time
from genre.demo import corpus
real = corpus.synthesize_clip
made = []
def slow(*args, **kwargs):
    if made:
        time.sleep(3600)
    made.append(1)
    return real(*args, **kwargs)
corpus.synthesize_clip = slow
corpus.generate_demo_corpus(sys.argv[1], clips_per_genre=2, clip_seconds=2.0, sample_rate=16000, seed=3,
                            progress=False, workers=1)
"""


@pytest.mark.slow
def test_killed_generation_is_not_mistaken_for_a_corpus(reference: Path, tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    child = subprocess.Popen([sys.executable, "-c", _SLOW_GENERATOR, str(root)], env=python_env())
    try:
        wait_for(lambda: any(p.rglob("*.wav") for p in partials(root)), "the generator wrote a clip", child)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert not root.exists()  # nothing that looks finished ...
    assert partials(root)  # ... only the hidden half-written sibling
    assert snapshot(generate_demo_corpus(root, workers=1, **TINY)) == snapshot(reference)
    assert partials(root) == []  # the next run cleaned it up


def _generate_in_child(root: str, start: multiprocessing.synchronize.Event) -> None:
    start.wait()
    generate_demo_corpus(root, workers=1, **TINY)


@pytest.mark.slow
def test_concurrent_generation_yields_one_intact_corpus(reference: Path, tmp_path: Path) -> None:
    root = tmp_path / "shared" / "corpus"
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    children = [ctx.Process(target=_generate_in_child, args=(str(root), start)) for _ in range(2)]
    for child in children:
        child.start()
    start.set()  # release both at once
    for child in children:
        child.join(timeout=SAFETY_TIMEOUT)
    assert [child.exitcode for child in children] == [0, 0]
    assert snapshot(root) == snapshot(reference)
    assert partials(root) == []

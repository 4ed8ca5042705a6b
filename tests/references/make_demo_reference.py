"""Write ``tests/references/demo_corpus_sha256.json``: the SHA-256 of every file of a few small demo corpora.

The demo synthesiser promises byte-identical output for identical arguments, so a refactor of it must
not change a single sample. This script records what the implementation at the current commit writes;
``tests/test_demo.py::test_corpus_matches_the_committed_reference`` regenerates the same corpora and
compares. Rerun it (and commit the JSON) only when the synthesis changes on purpose -- and then bump
``FORMAT_VERSION``.

Usage, from the repository root: ``python tests/references/make_demo_reference.py``
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from genre.demo import generate_demo_corpus  # noqa: E402 - the repo is put on the path first

OUTPUT = Path(__file__).with_name("demo_corpus_sha256.json")

# Small enough to regenerate in a test (~seconds each), varied enough to exercise every genre, two seeds
# and a second sample rate (filter designs, note lengths and drum samples all depend on it).
PARAMETER_SETS: list[dict] = [
    {"clips_per_genre": 2, "clip_seconds": 3.0, "sample_rate": 22050, "seed": 0},
    {"clips_per_genre": 2, "clip_seconds": 3.0, "sample_rate": 22050, "seed": 5},
    {"clips_per_genre": 2, "clip_seconds": 3.0, "sample_rate": 16000, "seed": 0},
    # More clips and longer ones reach more of the random branches (optional voices, forms, fills).
    {"clips_per_genre": 6, "clip_seconds": 8.0, "sample_rate": 22050, "seed": 11},
]


def corpus_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (the marker included), by relative POSIX path."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def git_commit() -> str:
    """The commit the generator comes from, with ``-dirty`` when the working tree differs from it."""
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "genre"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    return commit + ("-dirty" if dirty else "")


def main() -> None:
    corpora = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i, params in enumerate(PARAMETER_SETS):
            root = generate_demo_corpus(Path(tmp) / f"corpus{i}", progress=False, workers=1, **params)
            corpora.append({"parameters": params, "sha256": corpus_hashes(root)})
    reference = {"generator": "genre.demo.generate_demo_corpus", "commit": git_commit(), "corpora": corpora}
    OUTPUT.write_text(json.dumps(reference, indent=1) + "\n")
    print(
        f"{OUTPUT}: {sum(len(c['sha256']) for c in corpora)} files in {len(corpora)} corpora, "
        f"{time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()

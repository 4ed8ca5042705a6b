"""Classify audio files with a trained run.

    python -m genre.cli.predict <run dir or checkpoint.pt> <audio files or folders>...
        [--top-k 3] [--format table|csv|json]

The feature extractor (with its fitted statistics) and the model are rebuilt from the checkpoint's
stored config and weights (a run dir means its ``best.pt``), looking genre's own classes up by name: a
checkpoint naming anything else is refused with one line (README "Security"). Each file is decoded,
mixed to mono, resampled and trimmed or padded to the run's clip length exactly as the training data was, cut into
the run's evaluation segments, and the segment logits are aggregated as in the run's evaluation
(``eval.aggregate``, or ``--aggregate``). Files that cannot be read are reported on stderr and
skipped; the others are still predicted. Exit status: 0 all predicted, 1 some skipped, 2 none
predicted or bad arguments.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from omegaconf import OmegaConf

from genre.core.cli_errors import one_line_user_errors
from genre.core.errors import UserInputError, config_keys
from genre.data.decode import DecodeError, decode_clip, int16_to_float
from genre.data.prepare import clip_format
from genre.data.sources import AUDIO_EXTENSIONS
from genre.experiment.checks import check_clip_seconds
from genre.experiment.pipeline import rebuild_pipeline
from genre.run_files import BEST_CHECKPOINT, Checkpoint
from genre.training.device import resolve_device, resolve_precision
from genre.training.segments import AGGREGATES, clip_probabilities, split_segments

FORMATS = ("table", "csv", "json")


@dataclass
class Prediction:
    """The top-k genres of one file (or one segment of it, with ``--aggregate none``), or why it failed."""

    file: str
    start_seconds: float = 0.0
    end_seconds: float = 0.0
    genres: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None


class Predictor:
    """A trained run's feature extractor and model, ready to classify audio files."""

    def __init__(
        self, checkpoint: str | Path, device: str = "auto", aggregate: str | None = None, seconds: float | None = None
    ) -> None:
        path = Path(checkpoint).expanduser()
        if path.is_dir():
            path = path / BEST_CHECKPOINT
        if not path.is_file():
            raise UserInputError(
                f"{checkpoint}: no checkpoint there. Give a run directory (with {BEST_CHECKPOINT}) or a .pt file"
            )
        self.device = resolve_device(device)
        # Loading checks the stored config (genre.run_files.stored_config): plain data naming genre's own classes,
        # no interpolation; the feature and model are then looked up by name, never imported from it.
        state = Checkpoint.load(path, map_location=self.device)
        config = OmegaConf.create(state.config)
        self.labels: list[str] = list(state.labels)
        pipeline = rebuild_pipeline(state.config, len(self.labels), self.device)
        pipeline.features.load_state_dict(state.features)
        pipeline.model.load_state_dict(state.model)
        self.features, self.model = pipeline.features, pipeline.model.eval()
        self.precision = resolve_precision(config.trainer.precision, self.device)
        evaluation = config.get("eval") or {}
        self.aggregate = aggregate or str(evaluation.get("aggregate", "mean"))
        if self.aggregate not in AGGREGATES:
            raise UserInputError(f"--aggregate: '{self.aggregate}' is not one of {', '.join(AGGREGATES)}")
        self.format = clip_format(config.dataset)
        if seconds is not None:
            check_clip_seconds(
                "--seconds",
                float(seconds),
                self.format.sample_rate,
                OmegaConf.select(config, "feature.transform.n_fft", default=None),
            )
            self.format = replace(self.format, clip_seconds=float(seconds))
        segment_seconds = float(evaluation.get("segment_seconds", config.trainer.segment_seconds))
        self.segment_samples = min(int(round(segment_seconds * self.format.sample_rate)), self.format.clip_samples)

    @torch.no_grad()
    def logits(self, path: str | Path) -> torch.Tensor:
        """Segment logits ``(segments, classes)`` of one file. Raises :class:`DecodeError` if unreadable."""
        clip = int16_to_float(torch.from_numpy(decode_clip(path, self.format)))
        segments = split_segments(clip.unsqueeze(0).to(self.device), self.segment_samples)[0]
        with self.precision.autocast():
            return self.model(self.features(segments)).float().cpu()

    def predict(self, path: str | Path, top_k: int) -> list[Prediction]:
        """The top-k genres of ``path`` (one entry, or one per segment with aggregate ``none``)."""
        logits = self.logits(path)
        seconds = self.segment_samples / self.format.sample_rate
        if self.aggregate == "none":
            rows = [(i * seconds, (i + 1) * seconds, logits[i].softmax(dim=-1)) for i in range(len(logits))]
        else:
            rows = [(0.0, len(logits) * seconds, clip_probabilities(logits.unsqueeze(0), self.aggregate)[0])]
        results = []
        for start, end, probabilities in rows:
            values, indices = probabilities.topk(min(top_k, len(self.labels)))
            results.append(
                Prediction(
                    str(path),
                    start,
                    end,
                    [(self.labels[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())],
                )
            )
        return results


def audio_files(inputs: Iterable[str]) -> list[Path]:
    """The inputs, with each folder replaced by the audio files under it (recursively, sorted)."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS))
        else:
            files.append(path)  # missing or unreadable files are reported when decoding fails
    return files


def _table(predictions: list[Prediction], top_k: int) -> str:
    rows = [["file", *(f"#{k + 1}" for k in range(top_k))]]
    for p in predictions:
        whole = p.end_seconds == 0 and p.start_seconds == 0
        where = p.file if whole else f"{p.file} [{p.start_seconds:g}-{p.end_seconds:g} s]"
        rows.append([where, *(f"{genre} {probability:.3f}" for genre, probability in p.genres)])
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def render(predictions: list[Prediction], fmt: str, top_k: int) -> str:
    """Predictions as a table, CSV (one row per file and rank) or JSON (a list of objects)."""
    if fmt == "json":
        return json.dumps(
            [
                {
                    "file": p.file,
                    "start_seconds": p.start_seconds,
                    "end_seconds": p.end_seconds,
                    "predictions": [{"genre": g, "probability": v} for g, v in p.genres],
                }
                for p in predictions
            ],
            indent=2,
        )
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["file", "start_seconds", "end_seconds", "rank", "genre", "probability"])
        for p in predictions:
            for rank, (genre, probability) in enumerate(p.genres, start=1):
                writer.writerow(
                    [p.file, f"{p.start_seconds:g}", f"{p.end_seconds:g}", rank, genre, f"{probability:.6f}"]
                )
        return out.getvalue().rstrip("\n")
    return _table(predictions, top_k)


@one_line_user_errors
def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m genre.cli.predict",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", help="a run directory (its best.pt is used) or a checkpoint file")
    parser.add_argument("inputs", nargs="+", help="audio files and/or folders (searched recursively)")
    parser.add_argument("--top-k", type=int, default=3, help="genres to show per file (default 3)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    parser.add_argument(
        "--aggregate",
        choices=AGGREGATES,
        default=None,
        help="how segment logits become a file's prediction (default: the run's eval.aggregate)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="analyse this many seconds of each file (default: the run's clip length)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error("--top-k must be at least 1")
    with config_keys("", {"device": "--device"}):  # the library names its parameter; here it is an option
        resolve_device(args.device)
    predictor = Predictor(args.checkpoint, device=args.device, aggregate=args.aggregate, seconds=args.seconds)
    predictions: list[Prediction] = []
    skipped = 0
    files = audio_files(args.inputs)
    for path in files:
        try:
            predictions.extend(predictor.predict(path, args.top_k))
        except DecodeError as exc:
            skipped += 1
            print(f"skipped {path}: {exc}", file=sys.stderr)
    if predictions:
        print(render(predictions, args.format, min(args.top_k, len(predictor.labels))))
    if not files:
        print("error: no audio files found in the inputs", file=sys.stderr)
        return 2
    if not predictions:
        return 2
    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())

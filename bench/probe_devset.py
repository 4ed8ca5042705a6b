"""The closed-form probe against a plain scikit-learn script on the same embeddings and the same folds.

    python bench/probe_devset.py --root ~/genre-devset                 # 5 folds, experiment=probe
    python bench/probe_devset.py --root ~/genre-devset -- feature.transform.model=MTT_musicnn
    python bench/probe_devset.py --root ~/genre-devset --seeds 0 1 2 3 4     # the inner-CV seed's share

1. ``run.py experiment=probe dataset=folder dataset.root=ROOT cv.folds=K`` twice, into a fresh cache
   folder (or ``--cache``): the first builds the audio and embedding caches, the second (timed, end to end, start-up
   included) is what a researcher re-running the probe waits for once the cache exists.
2. The plain script, fold by fold: genre's own k-fold split and embedding cache give the fold's clips and
   their activations (the very values the run read); each clip is pooled (mean ‖ max over its patches),
   and scikit-learn's ``StandardScaler`` + ``LogisticRegression`` is fitted on the fold's training clips
   with ``C`` from ``GridSearchCV`` (stratified inner folds, the same grid), then scored on its test clips.

Prints each fold's test accuracy both ways, their means with 95 % t intervals, and the paired difference.
With ``--seeds``, both sides repeat per seed (genre's ``seed=S``, the plain script's inner shuffle
``random_state=S``; the outer folds never change): where the inner accuracies of the grid are within a
point or two of each other, which ``C`` wins is decided by how the inner folds fall, so one seed's
comparison measures that draw as much as the two implementations. The seed-averaged per-fold accuracies
are then compared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def run_probe(root: Path, folds: int, extra: list[str], job: Path, cache: Path) -> float:
    """One cross-validated probe job in ``job``; its wall time in seconds (raise if it fails)."""
    args = ["experiment=probe", "dataset=folder", f"dataset.root={root}", f"cv.folds={folds}", f"hydra.run.dir={job}"]
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(REPO / "run.py"), *args, "trainer.progress=false", *extra],
        cwd=job.parent,
        env={**os.environ, "GENRE_CACHE": str(cache)},
        text=True,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"run.py failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def fold_embeddings(root: Path, folds: int, fold: int, extra: list[str], cache: Path):
    """Fold ``fold``'s (train rows, train targets, test rows, test targets) and the embedding table, read
    through genre's own split and embedding cache (built by the runs above)."""
    import torch
    from hydra import compose, initialize_config_dir

    from genre import CONFIG_DIR
    from genre.data.prepare import prepare_data
    from genre.experiment.pipeline import build_pipeline
    from genre.experiment.spec import build_spec
    from genre.training.distributed import DistContext
    from genre.training.loaders import LoaderSettings, run_loaders

    overrides = [
        "experiment=probe",
        "dataset=folder",
        f"dataset.root={root}",
        "dataset/split=kfold",
        f"dataset.split.folds={folds}",
        f"dataset.split.fold={fold}",
        f"paths.cache_dir={cache}",
        "hydra.runtime.output_dir=/tmp",
        *extra,
    ]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().set_config(cfg)
    spec = build_spec(cfg)
    prepared = prepare_data(spec.parts.dataset, spec.cache_dir, progress=False)
    pipeline = build_pipeline(spec.parts, len(prepared.labels))
    settings = LoaderSettings(
        train_segment=spec.segments.train_samples,
        eval_segment=spec.segments.eval_samples,
        batch_size=8,
        eval_batch_size=8,
        crops_per_clip=1,
        num_workers=0,
        seed=0,
    )
    loaders = run_loaders(
        prepared,
        pipeline.features,
        settings,
        ctx=DistContext(),
        device=torch.device("cpu"),
        cache_dir=spec.cache_dir,
        progress=False,
    )
    assert loaders.table is not None and not loaders.table.stats.built, "the runs above build the embeddings"
    splits = prepared.splits
    return splits["train"], splits["test"], loaders.table, spec.parts.model


def plain_probe(train, test, table, model_cfg, seed: int = 0) -> float:
    """scikit-learn alone on the pooled clips: test accuracy of the fold."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def pooled(rows) -> np.ndarray:
        clips = [table.read(int(row)) for row in rows]  # (steps, dims) each
        return np.stack([np.concatenate([c.mean(axis=0), c.max(axis=0)]) for c in clips]).astype(np.float64)

    x_train, y_train = pooled(train.rows), np.asarray(train.targets)
    x_test, y_test = pooled(test.rows), np.asarray(test.targets)
    inner = min(int(model_cfg.inner_folds), int(np.bincount(y_train).min()))
    search = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=int(model_cfg.max_iter), random_state=seed)),
        {"logisticregression__C": list(model_cfg.c_grid)},
        cv=StratifiedKFold(n_splits=inner, shuffle=True, random_state=seed),
        scoring="accuracy",
    )
    search.fit(x_train, y_train)
    return float((search.predict(x_test) == y_test).mean())


def interval(values: list[float]) -> str:
    """Mean ± the half-width of the 95 % t interval, in percent."""
    from scipy import stats

    array = np.asarray(values)
    half = stats.t.ppf(0.975, len(array) - 1) * array.std(ddof=1) / np.sqrt(len(array))
    return f"{100 * array.mean():.1f} ± {100 * half:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="a folder dataset (e.g. the development set)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--work", type=Path, default=None, help="where the jobs and caches go (default: a temp dir)")
    parser.add_argument("--cache", type=Path, default=None, help="the audio and embedding caches (default: WORK/cache)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="run seeds, each both ways (default: 42)")
    parser.add_argument("extra", nargs="*", help="run.py overrides for both (after --)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="genre-probe-bench-"))
    cache = (args.cache or work / "cache").expanduser()
    work.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    first = run_probe(args.root.expanduser(), args.folds, args.extra, work / "first", cache)
    ours, plain, seconds = [], [], []
    data = [fold_embeddings(args.root.expanduser(), args.folds, k, args.extra, cache) for k in range(args.folds)]
    for seed in args.seeds:
        job = work / f"cached_seed{seed}"
        seconds.append(run_probe(args.root.expanduser(), args.folds, [*args.extra, f"seed={seed}"], job, cache))
        cv = json.loads((job / "cv.json").read_text())
        metrics = [job / f"fold{k}" / "metrics.json" for k in range(cv["folds"])]
        ours.append([json.loads(path.read_text())["test/acc"] for path in metrics])
        plain.append([plain_probe(*fold, seed=seed) for fold in data])
    print(
        f"cross-validation job: {args.folds} folds; first run (builds the caches) {first:.1f} s, "
        f"cached runs (end to end) {' '.join(f'{t:.1f}' for t in seconds)} s"
    )
    for seed, a_seed, b_seed in zip(args.seeds, ours, plain, strict=True):
        print(f"seed {seed}: fold  genre probe  plain scikit-learn")
        for fold, (a, b) in enumerate(zip(a_seed, b_seed, strict=True)):
            print(f"{fold:>12}  {100 * a:11.1f}  {100 * b:18.1f}")
        print(f"        mean  {interval(a_seed):>11}  {interval(b_seed):>18}   (%, 95 % t interval)")
        print(f"        paired difference (genre - plain): {interval(np.subtract(a_seed, b_seed))} points")
    if len(args.seeds) > 1:
        mean_ours, mean_plain = np.mean(ours, axis=0), np.mean(plain, axis=0)
        print(f"averaged over seeds {args.seeds}, per fold: genre {interval(mean_ours)}, plain {interval(mean_plain)}")
        print(f"paired difference of the seed-averaged folds (genre - plain): {interval(mean_ours - mean_plain)}")


if __name__ == "__main__":
    main()

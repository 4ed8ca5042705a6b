"""The run itself, as the phases a newcomer can name: build data -> build pipeline -> start fresh or
restore -> fit -> test the best checkpoint -> write outputs.

:class:`Run` is one process's part of a run (all of it, or one rank of a data-parallel run); rank 0
alone logs and writes files. The order of the phases matters for reproducibility: every random
number is drawn in the same order as in an uninterrupted run, and a restored run puts the random
generators back last, after everything that may draw from them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from genre.augment import Augmentations
from genre.data.clips import ClipDataset
from genre.data.decode import int16_to_float
from genre.data.prepare import PreparedData, prepare_data
from genre.errors import ConfigError, config_keys
from genre.experiment.checks import run_objectives
from genre.experiment.embedded import embedded_loaders, is_frozen_embedding
from genre.experiment.outputs import collect_metrics, run_predictions, stored_config, sweep_objective
from genre.experiment.pipeline import Pipeline, build_pipeline
from genre.run_files import BEST_CHECKPOINT, TENSORBOARD_DIR, Checkpoint, RunIdentity, RunMetrics
from genre.tracking.classification_report import log_split_report
from genre.tracking.tensorboard import RunLogger
from genre.training.device import resolve_device, resolve_precision
from genre.training.distributed import DistContext, replica_device, state_fingerprint
from genre.training.early_stopping import EarlyStopping
from genre.training.evaluation import EvalResult
from genre.training.interrupt import StopRequest
from genre.training.loaders import eval_loader, train_loader
from genre.training.seeding import restore_rng_state, seed_everything
from genre.training.trainer import FitResult, Trainer
from genre.training.weight_decay import decay_groups

if TYPE_CHECKING:
    from genre.sweeps.pruning import TrialReporter

log = logging.getLogger(__name__)


@dataclass
class RunData:
    """The run's dataset and its loaders: training crops, whole val/test clips, whole training clips."""

    prepared: PreparedData
    crops: DataLoader
    val: DataLoader
    test: DataLoader
    # Whole training clips, read once for the feature standardisation statistics.
    train_clips: DataLoader
    # Evaluation segment length in the loaders' units, when they deliver activations instead of audio.
    eval_segment: int | None = None


@dataclass
class Tested:
    """The best checkpoint's results on validation and test data, and each replica's final weights' hash."""

    val: EvalResult
    test: EvalResult
    fingerprints: list[str]


class Run:
    """One process's part of a run; :meth:`execute` runs the phases in order and returns the objective."""

    def __init__(
        self, cfg: DictConfig, hparams: dict[str, Any], ctx: DistContext, resume_from: str | None, stop: StopRequest
    ) -> None:
        self.cfg = cfg
        self.hparams = hparams
        self.ctx = ctx
        self.resume_from = resume_from
        self.stop = stop
        self.run_dir = Path(cfg.paths.output_dir)
        self.seed = int(cfg.seed)
        self.device = replica_device(resolve_device(cfg.trainer.device), ctx)
        self.precision = resolve_precision(cfg.trainer.precision, self.device)

    def execute(self) -> float | list[float]:
        """Run every phase; return the run's objective (its best validation metric)."""
        seed_everything(self.seed, bool(self.cfg.trainer.deterministic))
        if self.ctx.is_main:
            log.info(
                "Run dir %s | device %s | precision %s | processes %d%s",
                self.run_dir,
                self.device,
                self.precision,
                self.ctx.world_size,
                f" | resuming from {self.resume_from}" if self.resume_from else "",
            )
        data = self.build_data()
        pipeline = self.build_pipeline(data)
        data = self.embed_data(data, pipeline)
        restored = self.read_checkpoint(data)
        logger = self.open_logger(data, restored)
        try:
            trainer, tracker = self.build_trainer(pipeline, data, logger)
            self.start(trainer, tracker, data, restored)
            fit = self.fit(trainer, tracker, data, restored)
            tested = self.test(trainer, data)
            metrics = self.write_outputs(fit, tested, pipeline, data, logger)
        finally:
            if logger is not None:
                logger.close()
        return self.objective(metrics)

    # --- build data -------------------------------------------------------------------------------------

    def build_data(self) -> RunData:
        """List, decode (once, into the shared cache) and split the dataset; make the loaders."""
        cfg, ctx, trainer_cfg = self.cfg, self.ctx, self.cfg.trainer
        # No safe point to stop at while the corpus or cache is built: a stop signal ends it at once.
        with self.stop.at_once("preparing the data (demo corpus, audio cache)"):
            # Rank 0 generates/decodes first; the others then only open the finished cache.
            prepared = (
                prepare_data(cfg.dataset, cfg.paths.cache_dir, progress=bool(trainer_cfg.progress))
                if ctx.is_main
                else None
            )
            ctx.barrier()
            prepared = prepared or prepare_data(cfg.dataset, cfg.paths.cache_dir, progress=False)
        if ctx.is_main:
            log.info("%s", prepared.summary())
        splits, cache = prepared.splits, prepared.cache
        segment = int(round(float(trainer_cfg.segment_seconds) * int(cfg.dataset.sample_rate)))
        crops = ClipDataset(
            cache,
            splits["train"].rows,
            splits["train"].targets,
            segment_samples=segment,
            seed=self.seed,
            crops_per_clip=int(trainer_cfg.crops_per_clip),
        )
        workers, batch = int(trainer_cfg.num_workers), int(trainer_cfg.eval_batch_size)

        def clips(name: str, shard: bool = True) -> DataLoader:
            return eval_loader(
                ClipDataset(cache, splits[name].rows, splits[name].targets),
                batch_size=batch,
                ctx=ctx,
                device=self.device,
                num_workers=workers,
                shard=shard,
            )

        return RunData(
            prepared=prepared,
            val=clips("val"),
            test=clips("test"),
            train_clips=clips("train", shard=False),
            crops=train_loader(
                crops,
                batch_size=int(trainer_cfg.batch_size),
                seed=self.seed,
                ctx=ctx,
                device=self.device,
                num_workers=workers,
            ),
        )

    # --- build pipeline ---------------------------------------------------------------------------------

    def build_pipeline(self, data: RunData) -> Pipeline:
        """Features and model for the dataset's genres, on this process's device."""
        pipeline = build_pipeline(self.cfg, len(data.prepared.labels), self.device)
        if self.ctx.is_main:
            log.info("%s", pipeline.describe())
        if self.ctx.enabled and self.device.type == "cuda":
            # Per-GPU batches are small; synchronised BatchNorm normalises over the global batch.
            pipeline.model = nn.SyncBatchNorm.convert_sync_batchnorm(pipeline.model)
        return pipeline

    def embed_data(self, data: RunData, pipeline: Pipeline) -> RunData:
        """A frozen pretrained feature: its activations computed once per clip (the embedding cache) and the
        loaders switched to them (windows on the patch grid for training, every patch for evaluation)."""
        if not is_frozen_embedding(pipeline.features.transform):
            return data
        loaders = embedded_loaders(
            self.cfg, data.prepared, pipeline.features.transform, ctx=self.ctx, device=self.device, seed=self.seed
        )
        return replace(
            data,
            crops=loaders.crops,
            val=loaders.val,
            test=loaders.test,
            train_clips=loaders.train_clips,
            eval_segment=loaders.eval_segment,
        )

    # --- start fresh or restore -------------------------------------------------------------------------

    def read_checkpoint(self, data: RunData) -> Checkpoint | None:
        """The interrupted run's ``last.pt`` when resuming (checked against this launch), else None."""
        if not self.resume_from:
            return None
        checkpoint = Checkpoint.load(self.resume_from, map_location=self.device)
        if int(checkpoint.world_size) != self.ctx.world_size:
            raise ConfigError(
                "trainer.devices",
                f"the run trained on {checkpoint.world_size} process(es), not {self.ctx.world_size}",
                "Resume with the same number of processes",
            )
        cache = data.prepared.cache.directory.name
        if checkpoint.audio_cache != cache and self.ctx.is_main:
            # The cache key hashes every file's size and mtime: the audio changed since the run started.
            log.warning(
                "The dataset's audio changed since this run started (audio cache %s, now %s): the resumed "
                "run will not match an uninterrupted one",
                checkpoint.audio_cache,
                cache,
            )
        return checkpoint

    def open_logger(self, data: RunData, restored: Checkpoint | None) -> RunLogger | None:
        """Rank 0's TensorBoard writer; a resumed run drops what it logged past its checkpoint."""
        if not self.ctx.is_main:
            return None
        logger = RunLogger(
            self.run_dir / TENSORBOARD_DIR, purge_step=restored.position.epoch if restored is not None else None
        )
        if restored is None:
            logger.text("config", OmegaConf.to_yaml(self.cfg))
            logger.text("data", data.prepared.summary())
        return logger

    def build_trainer(
        self, pipeline: Pipeline, data: RunData, logger: RunLogger | None
    ) -> tuple[Trainer, EarlyStopping]:
        """The optimizer, schedule, augmentation, loss and objective tracker around the pipeline."""
        cfg, trainer_cfg = self.cfg, self.cfg.trainer
        optimizer = instantiate(cfg.optimizer)(params=decay_groups(pipeline.model))
        with config_keys("scheduler"):  # the factory's checks run here, outside instantiate
            schedule = instantiate(cfg.scheduler)(
                optimizer, epochs=int(trainer_cfg.epochs), steps_per_epoch=len(data.crops)
            )
        augment = Augmentations([instantiate(node) for node in cfg.augment.values()], len(data.prepared.labels))
        if self.ctx.is_main and augment:
            log.info("Augmentation: %s", augment)
        name, mode = run_objectives(cfg)[0]  # the first objective picks the checkpoint
        tracker = EarlyStopping(
            name=name,
            mode=mode,
            patience=trainer_cfg.early_stopping.patience,
            min_delta=float(trainer_cfg.early_stopping.min_delta),
        )
        sample_rate = int(cfg.dataset.sample_rate)
        trainer = Trainer(
            pipeline.model,
            pipeline.features,
            optimizer,
            schedule,
            device=self.device,
            precision=self.precision,
            loss_fn=nn.CrossEntropyLoss(label_smoothing=float(trainer_cfg.label_smoothing)),
            augment=augment,
            segment_samples=data.eval_segment or int(round(float(cfg.eval.segment_seconds) * sample_rate)),
            aggregate=str(cfg.eval.aggregate),
            grad_clip=trainer_cfg.grad_clip,
            dist=self.ctx,
            logger=logger,
            progress=bool(trainer_cfg.progress),
            stop=self.stop,
        )
        return trainer, tracker

    def start(self, trainer: Trainer, tracker: EarlyStopping, data: RunData, restored: Checkpoint | None) -> None:
        """Fresh: fit the feature statistics on the training split. Restored: put the interrupted run's state back."""
        if restored is None:
            # Standardisation statistics come from the training split only (whole clips), never from val/test.
            trainer.features.fit_normalization(int16_to_float(audio.to(self.device)) for audio, _ in data.train_clips)
            if self.ctx.enabled and self.ctx.rank:
                # Replicas start from rank 0's weights (DDP broadcast them); their dropout and augmentation differ.
                seed_everything(self.seed + self.ctx.rank, bool(self.cfg.trainer.deterministic))
            return
        trainer.restore(restored)
        tracker.load_state_dict(restored.early_stopping)
        # Last: everything above may have drawn random numbers the interrupted run did not.
        restore_rng_state(restored.rng[self.ctx.rank], self.device)

    # --- fit, test ----------------------------------------------------------------------------------------

    def fit(self, trainer: Trainer, tracker: EarlyStopping, data: RunData, restored: Checkpoint | None) -> FitResult:
        """Train to ``trainer.epochs`` epochs (or early stopping), keeping ``best.pt`` and ``last.pt``."""
        config = stored_config(self.cfg)
        identity = RunIdentity(
            config=config, labels=data.prepared.labels, audio_cache=data.prepared.cache.directory.name
        )
        reporter = self.trial_reporter()
        fit = trainer.fit(
            data.crops,
            data.val,
            epochs=int(self.cfg.trainer.epochs),
            tracker=tracker,
            run_dir=self.run_dir,
            identity=identity,
            resume=restored,
            on_epoch=reporter,
        )
        if fit.stopped_by_hook is not None:
            from genre.sweeps.pruning import RunPruned

            # Pruned by the sweep's study: checkpoints are kept, the test and outputs skipped.
            raise reporter.pruned(fit.stopped_by_hook) if reporter else RunPruned(fit.stopped_by_hook)
        return fit

    def trial_reporter(self) -> TrialReporter | None:
        """Rank 0's per-epoch report to the run's Optuna trial (``optuna_trial``, set by the Optuna sweeper),
        which may prune the run; None outside such a sweep."""
        if not self.ctx.is_main or self.cfg.get("optuna_trial") is None:
            return None
        from genre.sweeps.pruning import trial_reporter

        return trial_reporter(self.cfg)

    def test(self, trainer: Trainer, data: RunData) -> Tested:
        """Evaluate the best checkpoint's weights on the validation and test clips."""
        # The replicas' final weights, to show that data-parallel training kept them identical.
        fingerprints = self.ctx.gather(state_fingerprint(trainer.module.state_dict()))
        best = Checkpoint.load(self.run_dir / BEST_CHECKPOINT, map_location=self.device)
        trainer.module.load_state_dict(best.model)
        return Tested(
            val=trainer.evaluate(data.val, desc="val (best)"),
            test=trainer.evaluate(data.test, desc="test (best)"),
            fingerprints=fingerprints,
        )

    # --- write outputs ------------------------------------------------------------------------------------

    def write_outputs(
        self, fit: FitResult, tested: Tested, pipeline: Pipeline, data: RunData, logger: RunLogger | None
    ) -> RunMetrics:
        """The run's metrics; rank 0 also writes ``metrics.json``, ``predictions.csv``, the test report and
        HPARAMS to TensorBoard."""
        metrics = self._metrics(fit, tested, pipeline, data)
        if logger is None:
            return metrics
        labels, test = data.prepared.labels, tested.test
        report = log_split_report(logger, test.targets, test.predictions, labels, "test", fit.best_epoch)
        metrics.write(self.run_dir)
        run_predictions(data.prepared, {"val": tested.val, "test": test}).write(self.run_dir)
        # The test scores, and the validation scores beyond those logged every epoch, at the best epoch.
        per_epoch = tested.val.metrics("val")
        logger.scalars(
            {
                key: value
                for key, value in metrics.scores.items()
                if key.startswith("test/") or (key.startswith("val/") and key not in per_epoch)
            },
            step=fit.best_epoch,
        )
        # Per-genre scores (two slashes) would crowd the HPARAMS table; they are in the scalars and metrics.json.
        logger.hparams(
            self.hparams,
            {f"hparams/{k.replace('/', '_')}": v for k, v in metrics.scores.items() if k.count("/") == 1},
            step=int(self.cfg.trainer.epochs),
        )
        log.info("Test report (best epoch %d):\n%s", fit.best_epoch, report)
        log.info(
            "val acc %.4f | test acc %.4f (segments %.4f) | test loss %.4f | %.0f clips/s, %.0f%% waiting for data",
            tested.val.acc,
            test.acc,
            test.segment_acc,
            test.loss,
            metrics.perf.get("perf/clips_per_second", math.nan),
            100 * metrics.perf.get("perf/data_wait_fraction", math.nan),
        )
        print(
            f"test accuracy: {test.acc:.4f} (segments {test.segment_acc:.4f}; val accuracy {tested.val.acc:.4f}, "
            f"best epoch {fit.best_epoch}) -> {self.run_dir}"
        )
        return metrics

    def _metrics(self, fit: FitResult, tested: Tested, pipeline: Pipeline, data: RunData) -> RunMetrics:
        return collect_metrics(
            self.cfg,
            fit=fit,
            val=tested.val,
            test=tested.test,
            prepared=data.prepared,
            n_parameters=pipeline.n_parameters,
            world_size=self.ctx.world_size,
            resumed=self.resume_from is not None,
            fingerprints=tested.fingerprints if self.ctx.enabled else None,
        )

    @staticmethod
    def objective(metrics: RunMetrics) -> float | list[float]:
        """The value a sweep optimises (several objectives: their values); a diverged run raises instead."""
        return sweep_objective(metrics)

"""The run itself, as the phases a newcomer can name: prepare the dataset -> build pipeline -> build data
(the loaders the feature asks for: audio, or a precomputed feature's activations) -> start fresh or
restore -> fit -> test the best checkpoint -> write outputs.

:class:`Run` is one process's part of a run (all of it, or one rank of a data-parallel run); rank 0
alone logs and writes files. The order of the phases matters for reproducibility: every random
number is drawn in the same order as in an uninterrupted run, and a restored run puts the random
generators back last, after everything that may draw from them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf
from torch import nn

from genre.augment import Augmentations
from genre.core.errors import ConfigError, config_keys, split_parameter
from genre.data.prepare import PreparedData, prepare_data
from genre.experiment.hparams import hparams_session
from genre.experiment.outputs import collect_metrics, run_predictions, sweep_objective
from genre.experiment.pipeline import Pipeline, build_pipeline
from genre.experiment.provenance import write_provenance
from genre.experiment.spec import RunSpec, Segments, declared
from genre.run_files import BEST_CHECKPOINT, TENSORBOARD_DIR, Checkpoint, RunIdentity, RunMetrics
from genre.tracking.classification_report import log_split_report
from genre.tracking.tensorboard import RunLogger
from genre.training.callbacks import EpochCallback, StoppedByCallback
from genre.training.closed_form import fit_closed_form, is_closed_form
from genre.training.distributed import DistContext, replica_device, state_fingerprint
from genre.training.early_stopping import EarlyStopping
from genre.training.evaluation import EvalResult
from genre.training.finetuned import FineTuned
from genre.training.interrupt import StopRequest
from genre.training.loaders import LoaderSettings, RunLoaders, batch_on_device, run_loaders
from genre.training.param_groups import optimizer_groups
from genre.training.seeding import restore_rng_state, seed_everything
from genre.training.trainer import FitResult, Trainer

log = logging.getLogger(__name__)


# The config keys behind the lengths run_loaders names when they hold no whole patch of a precomputed feature.
# (Taken from the spec's declarations, so that a key is written once.)
_LENGTH_KEYS = {
    parameter: declared(Segments)[field].key
    for parameter, field in (
        ("train_segment", "train_seconds"),
        ("eval_segment", "eval_seconds"),
        ("clip_samples", "clip_seconds"),
    )
}


@dataclass
class RunData:
    """The run's dataset and its loaders, all of the kind the feature declares: int16 audio, or
    (``loaders.precomputed``) the feature's activations."""

    prepared: PreparedData
    loaders: RunLoaders


@dataclass
class Tested:
    """The best checkpoint's results on validation and test data, and each replica's final weights' hash."""

    val: EvalResult
    test: EvalResult
    fingerprints: list[str]


class Run:
    """One process's part of a run, read from its :class:`~genre.experiment.spec.RunSpec` alone;
    :meth:`execute` runs the phases in order and returns the objective. ``callbacks`` are told of every
    epoch (on rank 0) and may end training (:class:`StoppedByCallback`)."""

    def __init__(
        self, spec: RunSpec, ctx: DistContext, stop: StopRequest, callbacks: Sequence[EpochCallback] = ()
    ) -> None:
        self.spec = spec
        self.ctx = ctx
        self.stop = stop
        self.callbacks = tuple(callbacks)
        self.resume_from = spec.resume_from
        self.run_dir = spec.run_dir
        self.seed = spec.seed
        self.device = replica_device(spec.runtime.device, ctx)
        self.precision = spec.runtime.precision

    def execute(self) -> float | list[float]:
        """Run every phase; return the run's objective (its best validation metric)."""
        seed_everything(self.seed, self.spec.training.deterministic)
        if self.ctx.is_main:
            log.info(
                "Run dir %s | device %s | precision %s | processes %d%s",
                self.run_dir,
                self.device,
                self.precision,
                self.ctx.world_size,
                f" | resuming from {self.resume_from}" if self.resume_from else "",
            )
        prepared = self.prepare()
        pipeline = self.build_pipeline(prepared)
        data = self.build_data(prepared, pipeline)
        restored = self.read_checkpoint(data)
        logger = self.open_logger(data, restored)
        spec = self.spec
        objectives = [objective.name for objective in spec.objectives]
        try:
            with hparams_session(logger, spec.hparams, spec.varying, objectives, fresh=restored is None):
                trainer, tracker = self.build_trainer(pipeline, data, logger)
                self.start(trainer, tracker, data, restored)
                fit = self.fit(trainer, tracker, data, restored)
                tested = self.test(trainer, data)
                metrics = self.write_outputs(fit, tested, pipeline, data, logger)
                objective = self.objective(metrics)  # a diverged run raises: its session ends as a failure
        finally:
            if logger is not None:
                logger.close()
        return objective

    # --- build data -------------------------------------------------------------------------------------

    def prepare(self) -> PreparedData:
        """List, decode (once, into the shared cache) and split the dataset."""
        spec, ctx = self.spec, self.ctx
        # No safe point to stop at while the corpus or cache is built: a stop signal ends it at once.
        with self.stop.at_once("preparing the data (demo corpus, audio cache)"):
            # Rank 0 generates/decodes first; the others then only open the finished cache.
            prepared = (
                prepare_data(spec.parts.dataset, spec.cache_dir, progress=spec.training.progress)
                if ctx.is_main
                else None
            )
            ctx.barrier()
            prepared = prepared or prepare_data(spec.parts.dataset, spec.cache_dir, progress=False)
        if ctx.is_main:
            log.info("%s", prepared.summary())
            write_provenance(self.run_dir, spec.parts.dataset.split, prepared, self.resume_from)
        return prepared

    # --- build pipeline ---------------------------------------------------------------------------------

    def build_pipeline(self, prepared: PreparedData) -> Pipeline:
        """Features and model for the dataset's genres, on this process's device."""
        pipeline = build_pipeline(self.spec.parts, len(prepared.labels), self.device)
        if self.ctx.is_main:
            log.info("%s", pipeline.describe())
        if self.ctx.enabled and self.device.type == "cuda":
            # Per-GPU batches are small; synchronised BatchNorm normalises over the global batch.
            pipeline.sync_batch_norm()
        return pipeline

    def build_data(self, prepared: PreparedData, pipeline: Pipeline) -> RunData:
        """The loaders, of the kind the feature declares (:func:`~genre.training.loaders.run_loaders` decides):
        audio crops and clips, or a precomputed feature's activations, computed once per clip (the embedding
        cache), with windows on the patch grid for training and every patch for evaluation."""
        spec = self.spec
        stages = [getattr(get_class(node._target_), "stage", None) for node in self.spec.parts.augment.values()]
        if "waveform" in stages and pipeline.features.precomputed_transform is not None:
            raise ConfigError(
                "augment",
                "waveform augmentations cannot apply to a precomputed feature's activations",
                "Use augment=none (or a feature computed in every step)",
            )
        settings = LoaderSettings(
            train_segment=spec.segments.train_samples,
            eval_segment=spec.segments.eval_samples,
            batch_size=spec.loader.batch_size,
            eval_batch_size=spec.loader.eval_batch_size,
            crops_per_clip=spec.loader.crops_per_clip,
            num_workers=spec.loader.num_workers,
            seed=self.seed,
        )
        try:
            loaders = run_loaders(
                prepared,
                pipeline.features,
                settings,
                ctx=self.ctx,
                device=self.device,
                cache_dir=spec.cache_dir,
                progress=spec.training.progress,
            )
        except ValueError as exc:
            if split_parameter(exc)[0] not in _LENGTH_KEYS:
                raise
            raise ConfigError.from_library("", exc, _LENGTH_KEYS) from exc
        return RunData(prepared=prepared, loaders=loaders)

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
            logger.text("config", OmegaConf.to_yaml(self.spec.config))
            logger.text("data", data.prepared.summary())
        return logger

    def build_trainer(
        self, pipeline: Pipeline, data: RunData, logger: RunLogger | None
    ) -> tuple[Trainer, EarlyStopping]:
        """The optimizer, schedule, augmentation, loss and objective tracker around the pipeline."""
        parts, training = self.spec.parts, self.spec.training
        backbone_lr = float(parts.optimizer.lr) * self.spec.finetune.backbone_lr_scale
        optimizer = instantiate(parts.optimizer)(params=optimizer_groups(pipeline.model, backbone_lr))
        with config_keys("scheduler"):  # the factory's checks run here, outside instantiate
            schedule = instantiate(parts.scheduler)(
                optimizer, epochs=training.epochs, steps_per_epoch=len(data.loaders.crops)
            )
        augment = Augmentations([instantiate(node) for node in parts.augment.values()], len(data.prepared.labels))
        if self.ctx.is_main and augment:
            log.info("Augmentation: %s", augment)
        trainer = Trainer(
            pipeline.model,
            pipeline.features,
            optimizer,
            schedule,
            device=self.device,
            precision=self.precision,
            loss_fn=nn.CrossEntropyLoss(label_smoothing=training.label_smoothing),
            augment=augment,
            segment_samples=data.loaders.eval_segment,
            aggregate=self.spec.aggregate,
            precomputed=data.loaders.precomputed,
            grad_clip=training.grad_clip,
            dist=self.ctx,
            logger=logger,
            progress=training.progress,
            stop=self.stop,
            unfreezing=self.spec.finetune.unfreezing(len(data.loaders.crops)),
        )
        return trainer, self.spec.tracker()  # the tracker of the first objective, which picks the checkpoint

    def start(self, trainer: Trainer, tracker: EarlyStopping, data: RunData, restored: Checkpoint | None) -> None:
        """Fresh: fit the feature statistics on the training split. Restored: put the interrupted run's state back."""
        if restored is None:
            # Standardisation statistics come from the training split only (whole clips), never from val/test.
            precomputed = data.loaders.precomputed
            clips = data.loaders.train_clips
            if trainer.features.standardize:
                trainer.features.fit_normalization(
                    (batch_on_device(batch, self.device, precomputed=precomputed) for batch, _ in clips),
                    transformed=precomputed,
                )
            if isinstance(trainer.module, FineTuned):
                # The network's layer is standardised as a frozen probe's would be (pretrained network).
                trainer.module.fit_normalization(
                    trainer.features(batch_on_device(batch, self.device, precomputed=False)) for batch, _ in clips
                )
            if self.ctx.enabled and self.ctx.rank:
                # Replicas start from rank 0's weights (DDP broadcast them); their dropout and augmentation differ.
                seed_everything(self.seed + self.ctx.rank, self.spec.training.deterministic)
            return
        trainer.restore(restored)
        tracker.load_state_dict(restored.early_stopping)
        # Last: everything above may have drawn random numbers the interrupted run did not.
        restore_rng_state(restored.rng[self.ctx.rank], self.device)

    # --- fit, test ----------------------------------------------------------------------------------------

    def fit(self, trainer: Trainer, tracker: EarlyStopping, data: RunData, restored: Checkpoint | None) -> FitResult:
        """Train to ``trainer.epochs`` epochs (or early stopping), or solve a closed-form model once, keeping
        ``best.pt`` and ``last.pt``."""
        identity = RunIdentity(
            config=self.spec.config, labels=data.prepared.labels, audio_cache=data.prepared.cache.directory.name
        )
        if is_closed_form(trainer.module):
            # Solved once on the pooled training segments instead of trained for epochs.
            return fit_closed_form(
                trainer,
                data.loaders.train_clips,
                data.loaders.val,
                tracker=tracker,
                run_dir=self.run_dir,
                identity=identity,
                seed=self.seed,
                resume=restored,
            )
        fit = trainer.fit(
            data.loaders.crops,
            data.loaders.val,
            epochs=self.spec.training.epochs,
            tracker=tracker,
            run_dir=self.run_dir,
            identity=identity,
            resume=restored,
            callbacks=self.callbacks,
        )
        if fit.stopped_by_callback is not None:
            # E.g. pruned by a sweep's study: checkpoints are kept, the test and outputs skipped.
            raise StoppedByCallback(fit.stopped_by_callback)
        return fit

    def test(self, trainer: Trainer, data: RunData) -> Tested:
        """Evaluate the best checkpoint's weights on the validation and test clips."""
        # The replicas' final weights, to show that data-parallel training kept them identical.
        fingerprints = self.ctx.gather(state_fingerprint(trainer.module.state_dict()))
        best = Checkpoint.load(self.run_dir / BEST_CHECKPOINT, map_location=self.device)
        trainer.module.load_state_dict(best.model)
        return Tested(
            val=trainer.evaluate(data.loaders.val, desc="val (best)"),
            test=trainer.evaluate(data.loaders.test, desc="test (best)"),
            fingerprints=fingerprints,
        )

    # --- write outputs ------------------------------------------------------------------------------------

    def write_outputs(
        self, fit: FitResult, tested: Tested, pipeline: Pipeline, data: RunData, logger: RunLogger | None
    ) -> RunMetrics:
        """The run's metrics; rank 0 also writes ``metrics.json``, ``predictions.csv``, the test report and
        the test scores to TensorBoard."""
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
        log.info("Test report (best epoch %d):\n%s", fit.best_epoch, report)
        speed = metrics.perf.get("perf/clips_per_second")  # none for a model solved without epochs
        log.info(
            "val acc %.4f | test acc %.4f (segments %.4f) | test loss %.4f%s",
            tested.val.acc,
            test.acc,
            test.segment_acc,
            test.loss,
            ""
            if speed is None
            else f" | {speed:.0f} clips/s, {100 * metrics.perf['perf/data_wait_fraction']:.0f}% waiting for data",
        )
        print(
            f"test accuracy: {test.acc:.4f} (segments {test.segment_acc:.4f}; val accuracy {tested.val.acc:.4f}, "
            f"best epoch {fit.best_epoch}) -> {self.run_dir}"
        )
        return metrics

    def _metrics(self, fit: FitResult, tested: Tested, pipeline: Pipeline, data: RunData) -> RunMetrics:
        return collect_metrics(
            self.spec,
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

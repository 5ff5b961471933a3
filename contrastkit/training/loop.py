"""The step loop: :class:`Trainer` runs a :class:`Pipeline`'s steps with the ``[train]``, ``[eval]`` and ``[log]`` settings.

The hot path stays on the device: metrics are summed there and copied to the host once every
``log.every_n_steps`` steps; the NaN/inf guard reads each step's loss one step late (after the
next step is queued), so it never stalls the device yet stops the run within one step.
Checkpoints (:mod:`contrastkit.training.state`) let ``fit(resume=True)`` continue exactly where the
run stopped.

Example:
    >>> import tempfile
    >>> from contrastkit.config import config_from_dict
    >>> cfg = config_from_dict({
    ...     "data": {"name": "colorful-moving-digits", "size": 64},
    ...     "encoder": {"name": "convnet", "width": 4, "depth": 2},
    ...     "train": {"max_steps": 2, "batch_size": 16, "device": "cpu", "out_dir": tempfile.mkdtemp()},
    ...     "eval": {"knn": False}, "log": {"progress": False}})
    >>> result = Trainer.from_config(cfg).fit()
    >>> result.steps, result.checkpoint.name
    (2, 'final.pt')
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import Tensor, nn

from contrastkit import distributed
from contrastkit.config import Config, EvalConfig, LogConfig, TrainConfig
from contrastkit.errors import ConfigError
from contrastkit.evaluation import EvalResult, evaluate
from contrastkit.optim import warmup_cosine
from contrastkit.pipeline import Pipeline, PipelineOutput
from contrastkit.training import checks, data
from contrastkit.training.checkpoint import CheckpointDir
from contrastkit.training.device import autocast, data_parallel, select_device, setup_determinism
from contrastkit.training.guard import FiniteGuard, NonFiniteError, check_finite_state, stopped_error
from contrastkit.training.optimizers import build_optimizers, view_maker_parameters
from contrastkit.training.preflight import check_run_storage
from contrastkit.training.reporting import (
    MetricWindow,
    Progress,
    log_learned_views,
    log_projector,
    log_views,
    make_writer,
    write_scalars,
)
from contrastkit.training.samplers import AlternatingBatchSampler, EpochBatchSampler
from contrastkit.training.state import RunState, check_allow_changes, checkpoint_payload, restore

__all__ = ["TrainResult", "Trainer"]


@attrs.frozen
class TrainResult:
    """What :meth:`Trainer.fit` returns (see the module example).

    Example:
        >>> from pathlib import Path
        >>> TrainResult(steps=1, seconds=1.0, images_per_second=8.0, final_metrics={}, checkpoint=Path("c.pt"),
        ...             tensorboard_dir=None, knn=[]).steps
        1
    """

    steps: int
    seconds: float
    images_per_second: float
    final_metrics: dict[str, float]
    checkpoint: Path
    tensorboard_dir: Path | None
    knn: list[Any]
    resumed_from: Path | None = None


class Trainer:
    """Trains a :class:`Pipeline` with the ``[train]``, ``[eval]`` and ``[log]`` settings.

    ``print_fn`` receives the human-readable lines (the CLI prints them; tests may collect them).
    ``from_config`` seeds torch with ``train.seed`` before building, so initial weights are reproducible.

    Example:
        >>> from contrastkit.config import config_from_dict
        >>> cfg = config_from_dict({"data": {"size": 32}, "train": {"batch_size": 8, "device": "cpu"}})
        >>> Trainer.from_config(cfg).device
        device(type='cpu')
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        train: TrainConfig,
        eval: EvalConfig | None = None,
        log: LogConfig | None = None,
        config: Config | None = None,
        print_fn: Callable[[str], None] = print,
    ) -> None:
        if pipeline.dataset is None:
            raise ConfigError("data: training needs a dataset; give the pipeline a data slot")
        self.pipeline = pipeline
        self.train_cfg = train
        self.eval_cfg = eval or EvalConfig()
        self.log_cfg = log or LogConfig()
        self.config = config
        self.out_dir = Path(train.out_dir or "runs/default")
        # Under torchrun: join the process group (nccl on CUDA, gloo otherwise), one GPU per process.
        self.device = distributed.init_from_environment(select_device(train.device))
        self.rank, self.world_size = distributed.rank(), distributed.world_size()
        #: Rank 0 alone prints, shows progress, writes TensorBoard and checkpoints and runs the probes.
        self.is_main = self.rank == 0
        self.print = print_fn if self.is_main else (lambda _message: None)
        self.checkpoints = CheckpointDir(self.out_dir / "checkpoints", keep=train.keep_checkpoints)
        self._test_dataset: Any = None
        self._validate()

    @classmethod
    def from_config(cls, config: Config, *, path: str | None = None, print_fn: Callable[[str], None] = print) -> Trainer:
        """Build the pipeline and trainer of a recipe (every check runs here, before training)."""
        torch.manual_seed(config.train.seed)  # initial weights follow train.seed
        pipeline = Pipeline.from_config(config, path=path)
        try:
            return cls(pipeline, train=config.train, eval=config.eval, log=config.log, config=config, print_fn=print_fn)
        except ConfigError as exc:
            raise exc.with_path(path) from None

    def _validate(self) -> None:
        """Every check that can fail before the first step (:mod:`contrastkit.training.checks`)."""
        dataset = self.pipeline.dataset
        assert dataset is not None  # checked in __init__
        checks.check_batch_fits(self.train_cfg, len(dataset), world_size=self.world_size)
        self.make_sampler()  # a labelled set too small for one batch fails here, before training
        checks.check_worker_decoding(dataset, self.pipeline.worker_augmentations)
        checks.check_device_settings(self.train_cfg, self.device, world_size=self.world_size)
        checks.check_labels(self.eval_cfg.labels or (), checks.label_keys(dataset))
        checks.check_required_keys(self.pipeline.view_maker, dataset)
        checks.check_supervised_classes(self.pipeline.view_maker, dataset)

    @property
    def eval_labels(self) -> tuple[str, ...]:
        """The labels the probes report (``eval.labels``, default every dataset label)."""
        if self.eval_cfg.labels is not None:
            return tuple(self.eval_cfg.labels)
        return checks.label_keys(self.pipeline.dataset)

    def make_optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer | None]:
        """The model optimizer and, for a trainable view maker, its own Adam (:func:`build_optimizers`)."""
        return build_optimizers(self.pipeline, self.train_cfg)

    def make_sampler(self) -> EpochBatchSampler | AlternatingBatchSampler:
        """This rank's batch sampler, seeded by ``train.seed`` (:func:`contrastkit.training.data.make_sampler`)."""
        assert self.pipeline.dataset is not None  # checked in __init__
        return data.make_sampler(len(self.pipeline.dataset), self.pipeline.view_maker,
                                 batch_size=self.train_cfg.batch_size, seed=self.train_cfg.seed, rank=self.rank,
                                 world_size=self.world_size)

    def make_loader(self, sampler: EpochBatchSampler | AlternatingBatchSampler | None = None) -> torch.utils.data.DataLoader:
        """The training DataLoader: batches from :meth:`make_sampler` unless ``sampler`` is given.

        Worker-side augmentations (e.g. ``albumentations``) wrap the dataset here so each item
        carries its per-view augmented copies.
        """
        cfg = self.train_cfg
        return data.make_loader(self.pipeline.dataset, sampler if sampler is not None else self.make_sampler(),
                                seed=cfg.seed, worker_augmentations=self.pipeline.worker_augmentations,
                                num_workers=cfg.num_workers, pin_memory=self.device.type == "cuda")

    def start_epoch(self, loader: torch.utils.data.DataLoader, epoch: int, *, start_batch: int = 0) -> Iterator[Any]:
        """Point the loader at ``epoch`` (from batch ``start_batch``) and return its iterator."""
        return data.start_epoch(loader, epoch, seed=self.train_cfg.seed, start_batch=start_batch)

    def preflight(self) -> None:
        """Checks before the first step (:func:`~contrastkit.training.preflight.check_run_storage`; rank 0 only)."""
        if self.is_main:
            check_run_storage(self.out_dir, self.checkpoints, [self.pipeline], cfg=self.train_cfg, print_fn=self.print)

    def fit(self, *, resume: bool = False, allow_changes: Sequence[str] = ()) -> TrainResult:
        """Train, write checkpoints, run the probes; returns a :class:`TrainResult`.

        :meth:`preflight` runs first. ``allow_changes`` (keys of :data:`CHANGEABLE_ON_RESUME`) may
        differ from the checkpoint's recipe on resume; the optimizer then takes the new values.
        ``resume=True`` continues from the newest valid checkpoint in ``<out_dir>/checkpoints`` (a fresh
        start when there is none). A NaN or inf loss raises :class:`TrainingError` naming the step;
        the checkpoints written before it stay loadable.
        """
        check_allow_changes(allow_changes, resume=resume)
        self.preflight()
        run, lr_factor, sampler = self._start_run()
        resumed_from = self._resume(run, allow_changes, lr_factor) if resume else None
        if self.train_cfg.compile:
            for encoder in self.pipeline.encoders:
                encoder.compile()
        writer = make_writer(self.out_dir, enabled=self.log_cfg.tensorboard) if self.is_main else None
        guard = FiniteGuard(self.device)
        start_step, start = run.step, time.perf_counter()
        try:
            knn = self._train(run, sampler, writer, guard)
        except NonFiniteError as exc:
            raise stopped_error(exc, self.checkpoints.newest_valid()[0]) from None
        finally:
            if writer is not None:
                writer.flush()
        seconds = time.perf_counter() - start
        checkpoint = self._save_final(run, guard, start_step=start_step, resumed_from=resumed_from)
        knn = self._final_probes(run.step, writer) or knn
        if writer is not None:
            if self.log_cfg.projector_samples:
                log_projector(writer, self.pipeline, run.step, samples=self.log_cfg.projector_samples)
            writer.close()
        images = (run.step - start_step) * self.train_cfg.batch_size * self.train_cfg.accumulate_steps
        return TrainResult(steps=run.step, seconds=seconds, images_per_second=images / max(seconds, 1e-9),
                           final_metrics=run.metrics, checkpoint=checkpoint,
                           tensorboard_dir=self.out_dir / "tensorboard" if writer is not None else None,
                           knn=knn, resumed_from=resumed_from)

    def _start_run(self) -> tuple[RunState, Callable[[int], float], data.BatchSampler]:
        """Move the pipeline to the device, build the optimizers, DDP wrapper, scaler and schedule."""
        cfg = self.train_cfg
        setup_determinism(self.device, deterministic=cfg.deterministic)
        pipeline = self.pipeline.to(self.device)
        if cfg.channels_last:
            pipeline.to(memory_format=torch.channels_last)
            pipeline.memory_format = torch.channels_last
        if cfg.sync_batchnorm and self.world_size > 1:
            # Before the optimizers: the conversion makes new batch norm modules (new parameters).
            nn.SyncBatchNorm.convert_sync_batchnorm(pipeline)
        pipeline.train()
        optimizer, view_optimizer = self.make_optimizers()
        model = data_parallel(pipeline, self.device, world_size=self.world_size)
        scaler = torch.amp.GradScaler(self.device.type) if cfg.precision == "fp16" else None
        sampler = self.make_sampler()
        steps_per_epoch = sampler.batches_per_epoch // cfg.accumulate_steps
        total_steps = cfg.max_steps if cfg.max_steps is not None else steps_per_epoch * cfg.epochs

        def lr_factor(step: int) -> float:
            return warmup_cosine(step, total_steps=total_steps, warmup_steps=cfg.warmup_steps,
                                 min_ratio=cfg.min_lr / cfg.lr, schedule=cfg.schedule)

        optimizers = [o for o in (optimizer, view_optimizer) if o is not None]
        schedulers = [torch.optim.lr_scheduler.LambdaLR(o, lr_factor) for o in optimizers]
        # Each rank draws its own augmentations (rank 0 keeps train.seed: one process is unchanged).
        torch.manual_seed(cfg.seed + 1_000_003 * self.rank)
        if self.world_size > 1:
            self.print(
                f"distributed: {self.world_size} processes ({torch.distributed.get_backend()}), batch {cfg.batch_size} "
                f"per process x {cfg.accumulate_steps} accumulation -> effective batch "
                f"{cfg.batch_size * cfg.accumulate_steps * self.world_size}"
            )
        run = RunState(pipeline=pipeline, model=model, optimizer=optimizer, view_optimizer=view_optimizer,
                       schedulers=schedulers, scaler=scaler, total_steps=total_steps,
                       parameters=[p for g in optimizer.param_groups for p in g["params"]]
                       + view_maker_parameters(pipeline))
        return run, lr_factor, sampler

    def _resume(self, run: RunState, allow_changes: Sequence[str], lr_factor: Callable[[int], float]) -> Path | None:
        """Restore the newest valid checkpoint into ``run`` (``None``: none, a fresh start)."""
        resumed_from = restore(run, self.checkpoints, device=self.device, rank=self.rank, world_size=self.world_size,
                               config=self.config, allow_changes=allow_changes, lr_factor=lr_factor,
                               print_fn=self.print)
        if resumed_from is not None:
            self.print(f"resuming from {resumed_from} at step {run.step} (epoch {run.epoch + 1}, batch {run.position})")
            if run.step >= run.total_steps:
                self.print(f"nothing to resume: {resumed_from} already holds step {run.step} of {run.total_steps}")
        return resumed_from

    def _train(self, run: RunState, sampler: data.BatchSampler, writer: Any, guard: FiniteGuard) -> list[EvalResult]:
        """Epochs until ``total_steps``: the steps, a checkpoint at each epoch end, the online kNN probe."""
        window = MetricWindow()
        progress = Progress(run.total_steps, enabled=self.log_cfg.progress and self.is_main, completed=run.step)
        knn: list[EvalResult] = []
        first_step = run.step + 1
        try:
            loader = self.make_loader(sampler)
            while run.step < run.total_steps:
                batches = self.start_epoch(loader, run.epoch, start_batch=run.position)
                finished_epoch = self._epoch(run, batches, writer, guard, window, progress, first_step=first_step)
                if not finished_epoch:
                    break  # total_steps reached mid-epoch
                run.epoch, run.position = run.epoch + 1, 0
                if run.step < run.total_steps:
                    self._save(run, guard, complete=False)
                every = self.eval_cfg.knn_every_n_epochs
                if every and run.epoch % every == 0:
                    knn = self._online_probe(run, writer, guard) or knn
            guard.flush()
        finally:
            progress.close()
        return knn

    def _epoch(self, run: RunState, batches: Iterator[Any], writer: Any, guard: FiniteGuard, window: MetricWindow,
               progress: Progress, *, first_step: int) -> bool:
        """One epoch's steps (from ``run.position``); ``False`` when ``total_steps`` was reached inside it."""
        cfg = self.train_cfg
        micro = 0
        step_loss: Tensor | None = None
        while run.step < run.total_steps:
            wait_start = time.perf_counter()
            batch = next(batches, None)
            window.wait += time.perf_counter() - wait_start
            if batch is None:
                if micro % cfg.accumulate_steps:  # an incomplete accumulation does not leak into the next epoch
                    for o in run.optimizers:
                        o.zero_grad(set_to_none=True)
                return True
            output, loss = self._forward_backward(run, batch, last_micro=(micro + 1) % cfg.accumulate_steps == 0)
            step_loss = loss if step_loss is None else step_loss + loss
            window.add(output.metrics, accumulate_steps=cfg.accumulate_steps)
            micro += 1
            if micro % cfg.accumulate_steps:
                continue
            self._optimizer_step(run, window)
            guard.push(run.step + 1, step_loss)
            step_loss = None
            run.step += 1
            run.position += cfg.accumulate_steps
            window.end_step()
            self._after_step(run, output, batch, writer, window, progress, guard, first_step=first_step)
        return False

    def _forward_backward(self, run: RunState, batch: Any, *, last_micro: bool) -> tuple[PipelineOutput, Tensor]:
        """One micro-batch: forward under autocast, backward of the loss over the accumulation."""
        # DDP all-reduces gradients on the last micro-batch of an accumulation only; model is
        # DistributedDataParallel when it is not the pipeline, so it has no_sync().
        sync = contextlib.nullcontext() if last_micro or run.model is run.pipeline else run.model.no_sync()  # type: ignore[operator]
        with sync:
            with autocast(self.device, self.train_cfg.precision):
                output = run.model(batch)
            loss = output.loss.float()
            scaled = loss / self.train_cfg.accumulate_steps
            (run.scaler.scale(scaled) if run.scaler is not None else scaled).backward()
        return output, loss.detach()

    def _optimizer_step(self, run: RunState, window: MetricWindow) -> None:
        """Unscale, clip, step every optimizer, update the EMA encoders and the schedule."""
        if run.scaler is not None:
            for o in run.optimizers:
                run.scaler.unscale_(o)
        if self.train_cfg.grad_clip is not None:
            window.add_grad_norm(torch.nn.utils.clip_grad_norm_(run.parameters, self.train_cfg.grad_clip))
        for o in run.optimizers:
            if run.scaler is not None:
                run.scaler.step(o)
            else:
                o.step()
            o.zero_grad(set_to_none=True)
        if run.scaler is not None:
            run.scaler.update()
        self.pipeline.update_momentum()  # EMA key/target encoder (MoCo, ReLIC); no-op without one
        for s in run.schedulers:
            s.step()

    def _after_step(self, run: RunState, output: PipelineOutput, batch: Any, writer: Any, window: MetricWindow,
                    progress: Progress, guard: FiniteGuard, *, first_step: int) -> None:
        """View images, the metric window's log line, and the periodic checkpoint, when due."""
        step, images_every = run.step, self.log_cfg.images_every_n_steps
        if images_every and writer is not None and (step == first_step or step % images_every == 0):
            log_views(writer, output.views, step)
            log_learned_views(writer, self.pipeline, batch, step)
        if step % self.log_cfg.every_n_steps == 0 or step == run.total_steps:
            self._log_window(run, writer, window, progress)
        every = self.train_cfg.checkpoint_every_n_steps
        if every and step % every == 0:
            self._save(run, guard, complete=False)

    def _log_window(self, run: RunState, writer: Any, window: MetricWindow, progress: Progress) -> None:
        """Close the metric window (the one host sync), check the state is finite, write the scalars."""
        cfg = self.train_cfg
        means, rate, wait = window.close(images_per_step=cfg.batch_size * cfg.accumulate_steps)
        check_finite_state(self.pipeline, run.optimizers, step=run.step)  # the log step syncs anyway
        run.metrics = means
        if writer is not None:
            write_scalars(writer, run.step, {**means, "lr": run.optimizer.param_groups[0]["lr"], "images_per_second": rate,
                                             "data_wait_fraction": wait}
                          | ({"grad_scale": run.scaler.get_scale()} if run.scaler is not None else {}))
        progress.update(run.step, means.get("loss", float("nan")), rate)

    def _online_probe(self, run: RunState, writer: Any, guard: FiniteGuard) -> list[EvalResult]:
        """The kNN probe every ``eval.knn_every_n_epochs`` epochs, on rank 0 while the others wait."""
        guard.flush()
        results: list[EvalResult] = []
        if self.is_main:
            results = self.probe()
            write_scalars(writer, run.step, {f"knn/{r.label}_{r.metric}": r.value for r in results})
            self.pipeline.train()
        distributed.barrier()
        return results

    def _final_probes(self, step: int, writer: Any) -> list[EvalResult]:
        """The kNN and linear probes after training (rank 0; the other ranks wait)."""
        results: list[EvalResult] = []
        if (self.eval_cfg.knn or self.eval_cfg.linear) and self.eval_labels and self.is_main:
            results = self.probe(knn=self.eval_cfg.knn, linear=self.eval_cfg.linear)
            write_scalars(writer, step, {f"{r.probe}/{r.label}_{r.metric}": r.value for r in results})
        distributed.barrier()  # the other ranks wait for rank 0's probes, then all leave together
        return results

    def _save(self, run: RunState, guard: FiniteGuard, *, complete: bool) -> None:
        """Rank 0 writes a periodic checkpoint; every rank waits for it, so none runs ahead of a save."""
        payload = self._payload(run, guard, complete=complete)
        if self.is_main:
            self.checkpoints.save(payload, step=run.step)
        distributed.barrier()

    def _payload(self, run: RunState, guard: FiniteGuard, *, complete: bool) -> dict[str, Any]:
        guard.flush()  # never write weights that came from a non-finite step
        check_finite_state(self.pipeline, run.optimizers, step=run.step)  # nor inf statistics or moments
        return checkpoint_payload(run, complete=complete, world_size=self.world_size, config=self.config)

    def _save_final(self, run: RunState, guard: FiniteGuard, *, start_step: int, resumed_from: Path | None) -> Path:
        """``final.pt``; a resume from a periodic file at the end (final.pt broken or older) writes it again."""
        checkpoint = self.checkpoints.final
        if run.step > start_step or resumed_from is None or resumed_from != self.checkpoints.final:
            try:
                final = self._payload(run, guard, complete=True)
            except NonFiniteError as exc:
                raise stopped_error(exc, self.checkpoints.newest_valid()[0]) from None
            if self.is_main:
                checkpoint = self.checkpoints.save_final(final)
            distributed.barrier()
        return checkpoint

    def probe(self, *, knn: bool = True, linear: bool = False) -> list[EvalResult]:
        """The kNN probe (and the linear probe when ``linear``) on the test split, per ``eval.labels``.

        Example:
            >>> from contrastkit.config import config_from_dict
            >>> cfg = config_from_dict({"data": {"size": 32}, "encoder": {"width": 4},
            ...                         "train": {"batch_size": 8, "device": "cpu"}, "eval": {"labels": ["digit"]}})
            >>> [(r.label, r.probe) for r in Trainer.from_config(cfg).probe()]
            [('digit', 'knn')]
        """
        if not self.eval_labels:
            return []
        if self._test_dataset is None:  # built once: online kNN runs every few epochs
            self._test_dataset = self.pipeline.build_dataset("test")
        assert self.pipeline.dataset is not None  # the Trainer checked it
        return evaluate(self.pipeline, self.pipeline.dataset, self._test_dataset, labels=self.eval_labels, knn=knn,
                        linear=linear, k=self.eval_cfg.knn_k, temperature=self.eval_cfg.knn_temperature,
                        epochs=self.eval_cfg.linear_epochs, batch_size=self.train_cfg.batch_size,
                        max_samples=self.eval_cfg.max_samples, seed=self.train_cfg.seed)

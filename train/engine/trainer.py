"""The training loop for any method: epochs over the streaming loader, logging, validation,
checkpoints, resume. The method (:mod:`train.methods`) supplies networks, loader request,
optimisers, loss and predictor; nothing here names a network.

:func:`train` runs a whole (or resumed) run into a run folder (:mod:`train.engine.run_folder`):

* ``checkpoints/last.pt`` and ``epoch_NNN.pt`` as :mod:`train.engine.checkpoint_policy` says;
  ``--resume`` continues from ``last.pt`` exactly (same batches, same random draws, same weights as
  an uninterrupted run); SIGINT / SIGTERM finish the step, write ``last.pt`` and return;
* ``config.json``, ``run.json`` (the stores), ``log.jsonl`` (+ TensorBoard events when available);
  a resumed run drops the records of the steps it redoes;
* a folder that already holds a run is refused unless ``resume`` or ``overwrite``; ``.lock``
  keeps a second process out while the run trains.

Validation each epoch: the loss on the val store, and depth metrics from ``scorer`` (the training
command passes the evaluation's :func:`train.eval.validation.depth_scorer`).

DDP: launched with ``torchrun``, each rank trains on its shard of the store (the loader shards by
rank, ``even="drop"`` so every rank runs the same number of steps); only rank 0 logs and saves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from pipelines.loader import Batch, make_loader, resolve_workers
from pipelines.store import open_store, require_complete
from train.engine.checkpoint import (
    TrainState,
    checkpoint_config,
    init_networks,
    match_optimiser_layout,
    read_checkpoint,
    restore,
)
from train.engine.checkpoint_policy import CheckpointPolicy, Saver
from train.engine.config import TrainConfig
from train.engine.distributed import Distributed, init_distributed, seed_step
from train.engine.header import header_lines, parameter_line, validation_note
from train.engine.progress import Progress
from train.engine.run_folder import RunFolder, RunLock
from train.engine.runlog import RunLogger, log_step
from train.engine.runtime import Runtime, build_runtime, configure_determinism, resolve_device
from train.engine.step import StepResult, complete_samples, train_step
from train.engine.stop import StopRequest
from train.engine.validate import Scorer, validate
from train.methods import Method, Networks, OptimiserSpec, build_method

# Fields a resumed run may change (how it runs, not what it computes).
RESUMABLE_CHANGES = {
    "epochs",
    "max_steps",
    "workers",
    "device",
    "log_every",
    "val_batches",
    "checkpoint_every",
    "checkpoint_minutes",
    "keep_epochs",
    "compile",
    "deterministic",
}
RESUME_HINT = "python cli.py train --out {run} --resume"


@dataclass
class TrainSummary:
    """What :func:`train` did; ``stopped`` names the signal that ended it early."""

    run_dir: str
    epochs_done: int
    steps: int
    last_loss: float | None
    seconds: float
    samples_per_second: float
    validation: dict[str, float] = field(default_factory=dict)
    checkpoint: str | None = None
    stopped: str | None = None

    def __str__(self) -> str:
        loss = "n/a" if self.last_loss is None else f"{self.last_loss:.4f}"
        epochs = f"{self.epochs_done} epoch{'s' * (self.epochs_done != 1)}"
        lines = [
            f"trained {self.steps} steps ({epochs}) in {self.seconds:.1f} s, "
            f"{self.samples_per_second:.1f} samples/s, last loss {loss}",
        ]
        if self.checkpoint:
            lines.append(f"checkpoint: {self.checkpoint}")
        if self.stopped:
            hint = RESUME_HINT.format(run=self.run_dir)
            lines.append(f"stopped by {self.stopped} at step {self.steps}; resume with: {hint}")
        return "\n".join(lines)


@dataclass
class Session:
    """Everything one run needs, built by :func:`_open` (one place for the loop's state)."""

    config: TrainConfig
    method: Method
    nets: Networks
    optimisers: list[OptimiserSpec]
    runtime: Runtime
    dist: Distributed
    folder: RunFolder
    logger: RunLogger
    loader: torch.utils.data.DataLoader
    state: TrainState
    saver: Saver
    stop: StopRequest
    echo: Callable[[str], None]
    train_store: str
    val_store: str | None
    scorer: Scorer | None
    total: int
    generators: dict[str, torch.Generator]
    samples: int = 0
    step_start: float = field(default_factory=time.perf_counter)
    last_loss: float | None = None
    validation: dict[str, float] = field(default_factory=dict)
    epochs_done: int = 0


def check_resume(config: TrainConfig, stored: TrainConfig) -> None:
    """Refuse to resume with a config that computes something else than the stored one."""
    new, old = config.to_dict(), stored.to_dict()
    diff = sorted(k for k in new if new[k] != old[k] and k not in RESUMABLE_CHANGES)
    if diff:
        changes = ", ".join(f"{k}: {old[k]!r} -> {new[k]!r}" for k in diff)
        raise ValueError(f"cannot resume with a different configuration ({changes})")


def train(
    config: TrainConfig,
    train_store: str | Path,
    run_dir: str | Path,
    val_store: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    init: str | Path | None = None,
    scorer: Scorer | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> TrainSummary:
    """Train (or resume) a run of ``config.method``; see the module docstring for what is written.

    ``init``: a checkpoint of the same method whose network weights the run starts from (fresh
    optimisers and schedules; networks it lacks keep their initialisation). Ignored by
    ``resume``, which continues from ``last.pt``. ``overwrite``: replace a run already in
    ``run_dir``. ``scorer``: depth metrics of the validation (None: the loss only).

    Raises:
        ValueError: unusable store (missing, incomplete, another dataset than the preset's, no
            stereo view for ``"s"``), a folder holding a run (without resume / overwrite) or in
            use by another process, a resume without a checkpoint or with an incompatible
            config, bad device.
    """
    start = time.perf_counter()
    dist = init_distributed(config.device)
    folder = RunFolder(Path(run_dir))
    with RunLock(folder.path, enabled=dist.main), StopRequest(echo) as stop:
        session = _open(config, train_store, folder, val_store, dist, stop, echo, scorer)
        _start_run(session, resume=resume, overwrite=overwrite, init=init)
        try:
            _run_epochs(session, progress)
        finally:
            session.logger.close()
    dist.barrier()  # rank 0 may still be writing the last checkpoint
    dist.close()
    return _summary(session, time.perf_counter() - start)


def _open(
    config: TrainConfig,
    train_store: str | Path,
    folder: RunFolder,
    val_store: str | Path | None,
    dist: Distributed,
    stop: StopRequest,
    echo: Callable[[str], None],
    scorer: Scorer | None,
) -> Session:
    """Check the stores, build the method, networks, optimisers, runtime and loader (nothing is
    written yet)."""
    device = resolve_device(config.device)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    configure_determinism(config.deterministic)
    config = replace(config, workers=resolve_workers(config.workers))
    method = build_method(config)
    store = require_complete(open_store(train_store))
    method.check_store(store)
    if val_store is not None:
        require_complete(open_store(val_store))
    nets = method.build_networks(device)
    optimisers = method.optimisers(nets)
    runtime = build_runtime(config, method, nets, device, distributed=dist.enabled)
    policy = CheckpointPolicy(config.checkpoint_every, config.checkpoint_minutes)
    loader = make_loader(
        train_store,
        config.batch_size,
        workers=config.workers,
        seed=config.seed,
        frames=method.loader_request().frames,
        extras=method.loader_request().extras,
        drop_last=True,
        shuffle_chunks=config.shuffle_chunks,
        even="drop" if dist.enabled else "none",
    )
    if len(loader) == 0:
        raise ValueError(f"{train_store}: fewer samples than one batch of {config.batch_size}")
    return Session(
        config=method.config,
        method=method,
        nets=nets,
        optimisers=optimisers,
        runtime=runtime,
        dist=dist,
        folder=folder,
        logger=RunLogger(folder.path, enabled=False),
        loader=loader,
        state=TrainState(),
        saver=Saver(folder, method.config, nets, optimisers, dist, policy),
        stop=stop,
        echo=echo,
        train_store=str(train_store),
        val_store=None if val_store is None else str(val_store),
        scorer=scorer,
        total=_total_steps(config, len(loader)),
        # re-seeded from (seed, rank, step) before every step: nothing to save, any device
        generators={"augment": torch.Generator(), "noise": torch.Generator(device)},
    )


def _start_run(s: Session, *, resume: bool, overwrite: bool, init: str | Path | None) -> None:
    """Resume from ``last.pt`` or start (refusing a folder that holds a run), load ``init``
    weights, print the header, record the run and open its log."""
    if resume:
        if not s.folder.last.is_file():
            raise ValueError(
                f"{s.folder.path} has no checkpoint to resume ({s.folder.last}); start the run "
                "without --resume"
            )
        payload = read_checkpoint(s.folder.last)
        check_resume(s.config, checkpoint_config(payload))
        s.state = restore(payload, s.nets, s.optimisers, rank=s.dist.rank)
    else:
        if s.dist.main:
            s.folder.check_new_run(overwrite)
        if init is not None:
            _load_init(s, init)
        s.method.initialise(s.nets)  # weights from other runs (a stage-1 extractor)
    match_optimiser_layout(s.optimisers)  # after channels_last: Adam's moments like the weights
    s.loader.dataset.set_epoch(s.state.epoch)
    s.epochs_done = s.state.epoch
    if not s.dist.main:
        return
    store = open_store(s.train_store)
    for line in header_lines(s.config, store, s.runtime, s.dist.world_size):
        s.echo(line)
    s.echo(parameter_line(s.nets))
    note = _validation_note(s)
    if note:
        s.echo(note)
    stores = {"train": s.train_store, "val": s.val_store}
    s.folder.record(s.config.to_dict(), stores)
    s.logger = RunLogger(s.folder.path, resume_step=s.state.step if resume else None)


def _validation_note(s: Session) -> str | None:
    if s.val_store is None:
        return None
    return validation_note(s.method, open_store(s.val_store), with_metrics=s.scorer is not None)


def _load_init(s: Session, init: str | Path) -> None:
    kept = init_networks(init, s.nets, s.config.method)
    if s.dist.main:
        loaded = [name for name in s.nets.named() if name not in kept]
        fresh = f"; initialised afresh: {', '.join(kept)}" if kept else ""
        s.echo(f"networks from {init}: {', '.join(loaded)}{fresh}")


def _total_steps(config: TrainConfig, per_epoch: int) -> int:
    total = config.epochs * per_epoch
    return total if config.max_steps is None else min(total, config.max_steps)


def _run_epochs(s: Session, progress: bool) -> None:
    """Epochs from the resumed position until ``epochs``, ``max_steps`` or a stop request."""
    bar = Progress(s.total, s.state.step, enabled=progress and s.dist.main, echo=s.echo)
    s.nets.train(True)  # frozen networks stay in eval mode unless their method asks otherwise
    with bar:
        for epoch in range(s.state.epoch, s.config.epochs):
            if s.state.step >= s.total or s.stop.requested:
                break
            if not _run_epoch(s, epoch, bar):
                break
            _end_epoch(s, epoch)


def _run_epoch(s: Session, epoch: int, bar: Progress) -> bool:
    """The batches of ``epoch`` (after those a resumed run consumed); False when the run stopped
    inside it (``max_steps`` or a stop request, with ``last.pt`` written)."""
    s.loader.dataset.set_epoch(epoch)
    skip = s.state.batch_in_epoch if epoch == s.state.epoch else 0
    request = s.method.loader_request()
    for index, batch in enumerate(s.loader, start=1):
        if index <= skip:
            continue  # resumed mid-epoch: these batches were trained on already
        batch = complete_samples(batch, request)  # on the host
        if not s.dist.all_true(len(batch) > 0):
            continue  # skipped together: every DDP rank must run the same steps
        _step(s, batch, epoch, bar)
        # checked right after the step: Ctrl-C also ends the loader's worker processes
        running, no_save = s.dist.all_true_each(not s.stop.requested, not s.saver.policy.time_due())
        ended = s.state.step >= s.total or not running
        if ended and index == len(s.loader) and running:
            return True  # the epoch's end writes the checkpoints
        if ended or not no_save or s.saver.policy.step_due(s.state.step):
            s.saver.save_last(TrainState(epoch, s.state.step, index))
        if not running:
            s.stop.signal_name = s.stop.signal_name or "another process's stop request"
        if ended:
            return False
    return True


def _step(s: Session, batch: Batch, epoch: int, bar: Progress) -> StepResult:
    seed_step(s.generators, s.config.seed, s.dist.rank, s.state.step)
    first = time.perf_counter()
    result = train_step(
        s.runtime, s.method, s.optimisers, batch, s.generators["augment"], s.generators["noise"]
    )
    if s.runtime.compiled and s.samples == 0 and s.dist.main:
        s.echo(f"first step (torch.compile) {time.perf_counter() - first:.1f} s")
    s.state.step += 1
    s.samples += result.samples * s.dist.world_size
    rate = s.samples / max(time.perf_counter() - s.step_start, 1e-9)
    bar.advance(epoch, rate)
    last = s.state.step >= s.total
    if s.state.step % s.config.log_every == 0 or s.state.step == 1 or last:
        s.last_loss = float(result.loss)
        log_step(s.logger, result, s.state.step, s.optimisers, rate)
    return result


def _end_epoch(s: Session, epoch: int) -> None:
    """Per-epoch schedules, validation (rank 0), then the epoch's checkpoints."""
    for spec in s.optimisers:
        if spec.interval == "epoch":
            spec.scheduler.step()
    if s.val_store is not None and s.dist.main:
        # plain modules: a DDP forward on one rank alone could wait on the others
        plain = s.runtime.plain(s.nets)
        s.validation = validate(
            plain, s.method, s.nets, s.val_store, s.config.val_batches, s.scorer
        )
        s.logger.scalars(s.validation, s.state.step)
        if s.validation:
            text = ", ".join(f"{k.removeprefix('val/')} {v:.4f}" for k, v in s.validation.items())
            s.echo(f"epoch {epoch} validation: {text}")
    s.dist.barrier()
    s.saver.end_epoch(epoch, s.state.step)
    s.epochs_done = epoch + 1


def _summary(s: Session, seconds: float) -> TrainSummary:
    return TrainSummary(
        run_dir=str(s.folder.path),
        epochs_done=s.epochs_done,
        steps=s.state.step,
        last_loss=s.last_loss,
        seconds=seconds,
        samples_per_second=s.samples / max(time.perf_counter() - s.step_start, 1e-9),
        validation=s.validation,
        checkpoint=str(s.folder.last) if s.folder.last.exists() else None,
        stopped=s.stop.signal_name,
    )

"""The training loop for any method: epochs over the streaming loader, logging, validation,
checkpoints, resume. The method (:mod:`train.methods`) supplies networks, loader request,
optimisers, loss and predictor; nothing here names a network.

:func:`train` runs a whole (or resumed) run into ``run_dir``:

* ``run_dir/checkpoints/last.pt`` after every epoch (and every ``checkpoint_every`` steps), plus
  a weights-only ``epoch_NNN.pt`` per finished epoch (the newest ``keep_epochs`` of them, or all
  when 0); ``--resume`` continues from ``last.pt`` exactly (same batches, same random draws, same
  weights as an uninterrupted run);
* ``run_dir/config.json``; ``run_dir/log.jsonl`` (+ TensorBoard events when available).

DDP: launched with ``torchrun``, each rank trains on its shard of the store (the loader shards by
rank, ``even="drop"`` so every rank runs the same number of steps); only rank 0 logs and saves.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from pipelines.loader import make_loader
from pipelines.store import open_store, require_complete
from train.engine.checkpoint import (
    TrainState,
    checkpoint_config,
    init_networks,
    match_optimiser_layout,
    read_checkpoint,
    restore,
    rng_state,
    save_checkpoint,
    save_weights,
)
from train.engine.config import TrainConfig, apply_overrides
from train.engine.distributed import gather_objects, init_distributed, seed_step
from train.engine.header import header_lines
from train.engine.runlog import RunLogger
from train.engine.runtime import build_runtime, configure_determinism, resolve_device
from train.engine.step import StepResult, complete_samples, train_step
from train.engine.validate import validate
from train.eval.colormap import colorize
from train.methods import OptimiserSpec, method_class, preset

# Fields a resumed run may change (how it runs, not what it computes).
RESUMABLE_CHANGES = {
    "epochs",
    "max_steps",
    "workers",
    "device",
    "log_every",
    "val_batches",
    "checkpoint_every",
    "keep_epochs",
    "compile",
    "deterministic",
}


@dataclass
class TrainSummary:
    """What :func:`train` did."""

    run_dir: str
    epochs_done: int
    steps: int
    last_loss: float | None
    seconds: float
    samples_per_second: float
    validation: dict[str, float] = field(default_factory=dict)
    checkpoint: str | None = None

    def __str__(self) -> str:
        loss = "n/a" if self.last_loss is None else f"{self.last_loss:.4f}"
        val = ", ".join(f"{k.removeprefix('val/')} {v:.4f}" for k, v in self.validation.items())
        lines = [
            f"trained {self.steps} steps ({self.epochs_done} epochs) in {self.seconds:.1f} s, "
            f"{self.samples_per_second:.1f} samples/s, last loss {loss}",
        ]
        if val:
            lines.append(f"validation: {val}")
        if self.checkpoint:
            lines.append(f"checkpoint: {self.checkpoint}")
        return "\n".join(lines)


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
    init: str | Path | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> TrainSummary:
    """Train (or resume) a run of ``config.method``; see the module docstring for what is written.

    ``init``: a checkpoint of the same method whose network weights the run starts from (fresh
    optimisers and schedules; networks it lacks keep their initialisation). Ignored by
    ``resume``, which continues from ``last.pt``.

    Raises:
        ValueError: unusable store (missing, incomplete, another dataset than the preset's, no
            stereo view for ``"s"``), a resume without a checkpoint or with an incompatible
            config, bad device.
    """
    start = time.perf_counter()
    run_dir = Path(run_dir)
    dist = init_distributed(config.device)
    device = resolve_device(config.device)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    configure_determinism(config.deterministic)
    method = method_class(config.method)(config)
    store = require_complete(open_store(train_store))
    method.check_store(store)
    if val_store is not None:
        require_complete(open_store(val_store))

    nets = method.build_networks(device)
    if init is not None and not resume:
        kept = init_networks(init, nets, config.method)
        loaded = [name for name in nets.named() if name not in kept]
        fresh = f"; initialised afresh: {', '.join(kept)}" if kept else ""
        if dist.main:
            echo(f"networks from {init}: {', '.join(loaded)}{fresh}")
    optimisers = method.optimisers(nets)
    # re-seeded from (seed, rank, step) before every step: nothing to save, any device
    generators = {"augment": torch.Generator(), "noise": torch.Generator(device)}
    state = TrainState()
    last = run_dir / "checkpoints" / "last.pt"
    if resume:
        payload = read_checkpoint(last)
        check_resume(config, checkpoint_config(payload))
        state = restore(payload, nets, optimisers, rank=dist.rank)
    else:
        method.initialise(nets)  # weights from other runs (a stage-1 extractor), before writing
    runtime = build_runtime(config, method, nets, device, distributed=dist.enabled)
    match_optimiser_layout(optimisers)  # after channels_last: Adam's moments like the weights
    logger = RunLogger(run_dir, enabled=dist.main)
    if dist.main:
        for line in header_lines(config, store, runtime, dist.world_size):
            echo(line)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")

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
        epoch=state.epoch,
    )
    per_epoch = len(loader)
    if per_epoch == 0:
        raise ValueError(f"{train_store}: fewer samples than one batch of {config.batch_size}")
    total = config.epochs * per_epoch
    if config.max_steps is not None:
        total = min(total, config.max_steps)

    def save(epoch: int, batch_in_epoch: int) -> None:
        rank_rng = gather_objects(rng_state(), dist)  # every rank takes part
        if dist.main:
            counters = TrainState(epoch, state.step, batch_in_epoch)
            save_checkpoint(last, config, nets, optimisers, counters, rank_rng)

    nets.train(True)
    result: StepResult | None = None
    last_loss: float | None = None
    validation: dict[str, float] = {}
    samples, step_start = 0, time.perf_counter()
    epochs_done = state.epoch
    bar = _progress(progress and dist.main)
    task = bar.add_task("train", total=total, completed=state.step, rate="")
    with bar:
        for epoch in range(state.epoch, config.epochs):
            if state.step >= total:
                break
            loader.dataset.set_epoch(epoch)
            skip = state.batch_in_epoch if epoch == state.epoch else 0
            batch_index = 0
            for batch_index, batch in enumerate(loader, start=1):
                if batch_index <= skip:
                    continue  # resumed mid-epoch: these batches were trained on already
                batch = complete_samples(batch, method.loader_request())  # on the host
                if not dist.all_true(len(batch) > 0):
                    continue  # skipped together: every DDP rank must run the same steps
                seed_step(generators, config.seed, dist.rank, state.step)
                first = time.perf_counter()
                result = train_step(
                    runtime, method, optimisers, batch, generators["augment"], generators["noise"]
                )
                if runtime.compiled and samples == 0 and dist.main:
                    echo(f"first step (torch.compile) {time.perf_counter() - first:.1f} s")
                assert result is not None
                state.step += 1
                samples += result.samples * dist.world_size
                rate = samples / max(time.perf_counter() - step_start, 1e-9)
                bar.update(
                    task, advance=1, rate=f"{rate:.1f} samples/s", description=f"epoch {epoch}"
                )
                if state.step % config.log_every == 0 or state.step == 1:
                    last_loss = float(result.loss)
                    _log_step(logger, result, state.step, optimisers, rate)
                if config.checkpoint_every and state.step % config.checkpoint_every == 0:
                    save(epoch, batch_index)
                if state.step >= total:
                    break
            if result is not None:
                last_loss = float(result.loss)
            if batch_index < per_epoch and state.step >= total:
                save(epoch, batch_index)  # stopped by max_steps inside the epoch
                break
            for spec in optimisers:
                if spec.interval == "epoch":
                    spec.scheduler.step()
            if val_store is not None and dist.main:
                # plain modules: a DDP forward on one rank alone could wait on the others
                plain = runtime.plain(nets)
                validation = validate(plain, method, nets, str(val_store), config.val_batches)
                logger.scalars(validation, state.step)
                echo(_val_line(epoch, validation))
            dist.barrier()
            save(epoch + 1, 0)
            epochs_done = epoch + 1
            if dist.main:
                counters = TrainState(epoch + 1, state.step, 0)
                save_weights(last.with_name(f"epoch_{epoch:03d}.pt"), config, nets, counters)
                _prune_epoch_files(last.parent, config.keep_epochs)
    logger.close()
    dist.barrier()  # rank 0 may still be writing the last checkpoint
    dist.close()
    seconds = time.perf_counter() - start
    return TrainSummary(
        run_dir=str(run_dir),
        epochs_done=epochs_done,
        steps=state.step,
        last_loss=last_loss,
        seconds=seconds,
        samples_per_second=samples / max(time.perf_counter() - step_start, 1e-9),
        validation=validation,
        checkpoint=str(last) if last.exists() else None,
    )


def _prune_epoch_files(folder: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` ``epoch_NNN.pt`` files in ``folder`` (0 = keep all)."""
    if keep <= 0:
        return
    # by epoch number: past epoch 999 the zero-padded names no longer sort as numbers
    files = sorted(folder.glob("epoch_*.pt"), key=lambda p: int(p.stem.removeprefix("epoch_")))
    for old in files[:-keep]:
        old.unlink(missing_ok=True)


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def _log_step(
    logger: RunLogger, result: StepResult, step: int, optimisers: list[OptimiserSpec], rate: float
) -> None:
    values = {"train/loss": float(result.loss), "train/samples_per_s": rate}
    for spec in optimisers:
        suffix = "" if spec.name == "main" else f"_{spec.name}"
        values[f"train/lr{suffix}"] = spec.optimiser.param_groups[0]["lr"]
    values |= {f"train/{k}": float(v) for k, v in result.scalars.items()}
    logger.scalars(values, step)
    for name, image in result.images.items():
        logger.image(f"train/{name}", colorize(image[0, 0].float().cpu().numpy()), step)


def _val_line(epoch: int, values: dict[str, float]) -> str:
    text = ", ".join(f"{k.removeprefix('val/')} {v:.4f}" for k, v in values.items())
    return f"epoch {epoch} validation: {text or 'nothing to validate'}"


def run_config(
    preset_name: str | None, overrides: list[str], run_dir: str | Path, resume: bool
) -> TrainConfig:
    """The config of ``cli.py train``: the preset (or, when resuming without one, the config
    stored in ``run_dir/checkpoints/last.pt``) with ``key=value`` overrides applied."""
    if preset_name is None:
        if not resume:
            raise ValueError("--preset is required (unless --resume continues a run)")
        payload = read_checkpoint(Path(run_dir) / "checkpoints" / "last.pt")
        base = checkpoint_config(payload)
    else:
        base = preset(preset_name)
    return apply_overrides(base, overrides)

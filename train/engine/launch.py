"""What ``cli.py train`` does with its options: a new run from a preset, or ``--resume`` of a run
folder with everything (stores, preset, settings, stages) taken from the folder.

A resumed run accepts only what may change without changing what it computes:
:data:`RESUME_FLAGS` as options, and the keys of
:data:`train.engine.trainer.RESUMABLE_CHANGES` through ``--set``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from train.engine.checkpoint import checkpoint_config, read_checkpoint
from train.engine.config import TrainConfig, apply_overrides
from train.engine.run_folder import RunFolder
from train.engine.stages import StageRun, train_stages
from train.engine.trainer import TrainSummary, train
from train.engine.validate import Scorer
from train.methods import preset

RESUME_FLAGS = ("epochs", "max_steps", "device", "workers")
STAGES_FILE = "stages.json"  # OUT/stages.json: how a --stages run was started


@dataclass(frozen=True)
class TrainRequest:
    """The options of ``cli.py train``. ``flags``: option name (config key) -> value, None when
    not given; ``sets``: the ``--set key=value`` items."""

    out: Path
    preset: str | None = None
    train_store: str | None = None
    val_store: str | None = None
    flags: dict[str, Any] = field(default_factory=dict)
    sets: tuple[str, ...] = ()
    resume: bool = False
    overwrite: bool = False
    init: str | None = None
    stages: str | None = None

    def overrides(self) -> list[str]:
        return [*self.sets, *(f"{k}={v}" for k, v in self.flags.items() if v is not None)]


def launch(
    request: TrainRequest, *, scorer: Scorer | None = None, echo: Callable[[str], None] = print
) -> list[TrainSummary | StageRun]:
    """Run ``request`` (a new run, a resumed one, or stages); returns what each run reported.

    Raises:
        ValueError: a missing or contradictory option, named in one line.
    """
    if request.resume:
        request, base = _resumed(request)
    elif request.preset is None or request.train_store is None:
        missing = "--preset" if request.preset is None else "--train"
        raise ValueError(f"{missing} is required (unless --resume continues a run in --out)")
    else:
        base = preset(request.preset)
    config = apply_overrides(base, request.overrides())
    options = {"resume": request.resume, "overwrite": request.overwrite, "init": request.init}
    options |= {"scorer": scorer, "echo": echo}
    stores = (request.train_store, request.out, request.val_store)
    if request.stages is None:
        return [train(config, stores[0], stores[1], stores[2], **options)]
    if request.resume:
        return list(train_stages(config, request.stages, *stores, **options))
    created = not request.out.exists()
    record = _record_stages(request)
    try:
        return list(train_stages(config, request.stages, *stores, **options))
    except BaseException:
        if not any(RunFolder(p).holds_run() for p in request.out.iterdir() if p.is_dir()):
            record.unlink(missing_ok=True)  # refused before any stage started
            if created and not any(request.out.iterdir()):
                request.out.rmdir()  # the folder this refusal made, as RunLock does
        raise


def _resumed(request: TrainRequest) -> tuple[TrainRequest, TrainConfig]:
    """``request`` completed from its run folder (and checked against it), and the config the
    run was started with."""
    given = [k for k, v in request.flags.items() if v is not None and k not in RESUME_FLAGS]
    if given:
        names = ", ".join("--" + k.replace("_", "-") for k in given)
        allowed = ", ".join("--" + k.replace("_", "-") for k in RESUME_FLAGS)
        raise ValueError(
            f"--resume continues {request.out} with its own settings; {names} cannot change "
            f"(only {allowed} may)"
        )
    if request.init is not None:
        raise ValueError("--init starts a new run from other weights; it cannot be combined "
                         "with --resume")  # fmt: skip
    recorded = _recorded(request.out)
    for option, key in (("--preset", "preset"), ("--stages", "stages")):
        mine, theirs = getattr(request, key), recorded.get(key)
        if mine is not None and theirs is not None and mine != theirs:
            raise ValueError(f"{request.out} was started with {option} {theirs}, not {mine}")
    stores = recorded.get("stores", {})
    for option, key, attr in (("--train", "train", "train_store"), ("--val", "val", "val_store")):
        mine, theirs = getattr(request, attr), stores.get(key)
        if mine is not None and theirs is not None and str(mine) != str(theirs):
            raise ValueError(
                f"{request.out} trains on {option} {theirs}; omit {option} to resume it"
            )
    train_store = request.train_store or stores.get("train")
    if train_store is None:
        raise ValueError(f"{request.out} does not record its stores (an older run): pass --train")
    resumed = TrainRequest(
        out=request.out,
        preset=recorded["preset"],
        train_store=train_store,
        val_store=request.val_store or stores.get("val"),
        flags=request.flags,
        sets=request.sets,
        resume=True,
        stages=recorded.get("stages", request.stages),
    )
    return resumed, recorded["config"]


def _recorded(out: Path) -> dict[str, Any]:
    """How the run in ``out`` was started: preset, stores, settings, stages."""
    stages_file = out / STAGES_FILE
    if stages_file.is_file():
        record = json.loads(stages_file.read_text(encoding="utf-8"))
        base = apply_overrides(preset(record["preset"]), record.get("sets", []))
        return record | {"config": base}
    folder = RunFolder(out)
    if not folder.last.is_file():
        raise ValueError(
            f"{out} holds no run to resume (no {folder.last} nor {stages_file}); start the run "
            "without --resume"
        )
    config = checkpoint_config(read_checkpoint(folder.last))
    return {"preset": config.preset, "stores": folder.recorded_stores(), "config": config}


def _record_stages(request: TrainRequest) -> Path:
    """Write ``OUT/stages.json`` (what ``--resume`` of a staged run reads); refuse a folder
    holding another staged run unless ``overwrite``."""
    path = request.out / STAGES_FILE
    if path.exists() and not request.overwrite:
        raise ValueError(
            f"{request.out} already holds a staged run ({path}); continue it with --resume, or "
            "replace it with --overwrite"
        )
    request.out.mkdir(parents=True, exist_ok=True)
    record = {
        "preset": request.preset,
        "stages": request.stages,
        "sets": request.overrides(),
        "stores": {"train": request.train_store, "val": request.val_store},
    }
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path

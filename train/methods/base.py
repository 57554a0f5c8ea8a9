"""The Method protocol: what a training method declares so the engine can run it.

A method (one file per method under :mod:`train.methods`) supplies

* its own config dataclass (:attr:`Method.Params`), nested in
  :class:`train.engine.config.TrainConfig` as ``config.params`` (``--set key=value`` and
  ``--set params.key=value`` reach it);
* its networks (:meth:`Method.build_networks`: name -> module, which are frozen);
* what the loader must deliver (:meth:`Method.loader_request`: source frames and store extras) and
  the on-device augmentation it wants (:meth:`Method.augment_config`);
* its stages (:attr:`Method.stages`, :meth:`Method.stage_config`), weights taken from other
  runs (:meth:`Method.initialise`), optimisers and schedules (:meth:`Method.optimisers`);
* its loss (:meth:`Method.loss`, returning one :class:`LossOutput`);
* a :class:`Predictor` (RGB in [0, 1] -> depth, with the method's scaling rule) that validation,
  evaluation, ``predict`` and export all use.

The engine (trainer, checkpoints, resume, logging) and evaluation only talk to this interface; they
never name a network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch
from torch import Tensor, nn

from pipelines.loader import AugmentConfig, Augmented

if TYPE_CHECKING:
    from pipelines.store import Store
    from train.engine.config import TrainConfig

FRAMES = ("prev", "next", "stereo")
EXTRAS = ("seg", "depth", "gt", "hint")


@dataclass(frozen=True)
class LoaderRequest:
    """What the streaming loader must deliver besides the target image.

    Attributes:
        frames: source frames (``"prev"``, ``"next"``, ``"stereo"``); empty for single-frame
            methods. Samples lacking a requested temporal neighbour are dropped by the engine.
        extras: store arrays (``"seg"``, ``"depth"``, ``"gt"`` for ``gt_depth``, ``"hint"`` for
            ``hint_depth``).
    """

    frames: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        bad = [f for f in self.frames if f not in FRAMES] + [
            e for e in self.extras if e not in EXTRAS
        ]
        if bad:
            raise ValueError(f"loader request: unknown {bad}; frames {FRAMES}, extras {EXTRAS}")


@dataclass
class Networks:
    """A method's networks by name, and which of them are frozen (never optimised, no DDP).

    Frozen networks stay in eval mode, except those also in ``train_mode``: they follow
    :meth:`train` like the others (BatchNorm on batch statistics while training, updating its
    running statistics, as FeatDepth's frozen feature extractor does), but are still never
    optimised.
    """

    modules: dict[str, nn.Module]
    frozen: frozenset[str] = frozenset()
    train_mode: frozenset[str] = frozenset()

    def named(self) -> dict[str, nn.Module]:
        """Every network (checkpoints save and load all of them)."""
        return dict(self.modules)

    def trainable(self) -> dict[str, nn.Module]:
        """The networks that are optimised."""
        return {k: m for k, m in self.modules.items() if k not in self.frozen}

    def parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the trainable networks, in network order."""
        for module in self.trainable().values():
            yield from module.parameters()

    def train(self, mode: bool = True) -> None:
        """Train/eval mode of the trainable networks (and of frozen ones in ``train_mode``);
        other frozen ones stay in eval mode."""
        for name, module in self.modules.items():
            module.train(mode and (name not in self.frozen or name in self.train_mode))

    def __getitem__(self, name: str) -> nn.Module:
        return self.modules[name]

    def __contains__(self, name: object) -> bool:
        return name in self.modules


@dataclass
class OptimiserSpec:
    """One optimiser, its schedule and how the engine drives them.

    Attributes:
        optimiser: over some trainable parameters.
        scheduler: stepped after every epoch (``interval="epoch"``) or every optimiser step.
        interval: ``"epoch"`` or ``"step"``.
        clip_grad_norm: clip the optimiser's parameters to this L2 norm before stepping
            (None = off).
        name: checkpoint and log name.
    """

    optimiser: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    interval: str = "epoch"
    clip_grad_norm: float | None = None
    name: str = "main"

    def __post_init__(self) -> None:
        if self.interval not in ("epoch", "step"):
            raise ValueError(f"scheduler interval must be 'epoch' or 'step', not {self.interval!r}")

    def parameters(self) -> list[nn.Parameter]:
        return [p for group in self.optimiser.param_groups for p in group["params"]]


@dataclass
class LossOutput:
    """A method's loss on one batch.

    Attributes:
        total: scalar to minimise (float32).
        scalars: named scalar tensors for logging (``train/<name>``), e.g. per-scale losses.
        images: named ``(B, 1, H, W)`` maps for logging (the first sample is shown), e.g. the
            disparity as ``"disp"``.
        outputs: named network outputs with their gradients (Monodepth2: ``disp_s`` per scale),
            for a subclass whose ``loss`` adds a term to ``super().loss(...)``; not logged.
    """

    total: Tensor
    scalars: dict[str, Tensor] = field(default_factory=dict)
    images: dict[str, Tensor] = field(default_factory=dict)
    outputs: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class Scaling:
    """How predicted depth is scaled before scoring: per-image ``median`` ratio, or a fixed
    ``factor`` (1 for metric models, 5.4 for monodepth2 stereo training units)."""

    median: bool = True
    factor: float = 1.0

    @property
    def name(self) -> str:
        return "median" if self.median else f"x{self.factor:g}"


PREDICTOR_INPUTS = ("previous", "image", "intrinsics")


class Predictor(nn.Module):
    """RGB ``(B, 3, H, W)`` float in [0, 1] -> depth ``(B, 1, h, w)`` (the method's units, at the
    network's output resolution), plus the :class:`Scaling` rule that makes it metric.

    Subclasses implement :meth:`forward`; the module holds the networks it needs (so export traces
    it whole). :attr:`inputs` names ``forward``'s positional arguments, in order, from
    :data:`PREDICTOR_INPUTS`: ``"image"`` (always), ``"previous"`` (the frame before it, same size;
    all zeros, i.e. black, where there is none) and ``"intrinsics"`` (``(B, 4, 4)`` pixel
    intrinsics of the H x W input). Callers build the arguments with :meth:`arguments`, so
    evaluation, ``predict`` and export never depend on which method they run.
    ``input_resize``: how ``predict`` brings a picture to the network size (``"bilinear"``,
    antialiased when shrinking; ``"lanczos"``: PIL's, as a reference's ``test_simple.py`` may
    do).
    """

    scaling: Scaling = Scaling()
    inputs: tuple[str, ...] = ("image",)
    input_resize: str = "bilinear"

    def forward(self, image: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def fixed_intrinsics(self, height: int, width: int) -> Tensor | None:
        """``(4, 4)`` pixel intrinsics of an ``height x width`` input when the model was trained
        with one fixed camera (evaluation then feeds them, as the reference does); None when it
        uses each store's own (or no intrinsics at all)."""
        return None

    def arguments(
        self, image: Tensor, previous: Tensor | None = None, intrinsics: Tensor | None = None
    ) -> tuple[Tensor, ...]:
        """``forward``'s arguments for :attr:`inputs` from what the caller has: a missing
        ``previous`` becomes black, missing ``intrinsics`` the :meth:`fixed_intrinsics`.

        Raises:
            ValueError: intrinsics are needed and the model has no fixed ones.
        """
        values = {"image": image}
        if "previous" in self.inputs:
            values["previous"] = torch.zeros_like(image) if previous is None else previous
        if "intrinsics" in self.inputs:
            if intrinsics is None:
                intrinsics = self.fixed_intrinsics(*image.shape[-2:])
            if intrinsics is None:
                raise ValueError("this model needs camera intrinsics (give --intrinsics)")
            intrinsics = intrinsics.to(image.device, torch.float32)
            values["intrinsics"] = intrinsics.expand(image.shape[0], 4, 4)
        return tuple(values[name] for name in self.inputs)


@dataclass(frozen=True)
class Reference:
    """The published setting a preset stands for, as far as the training header checks it
    (:meth:`Method.reference`).

    Attributes:
        source: what it is, e.g. ``"monodepth2's train.py"``.
        images: image files its loader reads for KITTI (``"jpg"`` / ``"png"``; None = not
            checked); ``resize``: how (``"lanczos"`` = PIL LANCZOS of the full frame).
        split: the split folder it trains on (None = not checked).
        gpus, batch_per_gpu: its processes and the batch of each (None = the preset's batch).
        sync_bn: whether its batch norm synchronised across GPUs.
        notes: differences depthkit always has from it (printed on every run).
    """

    source: str
    images: str | None = None
    resize: str | None = None
    split: str | None = None
    gpus: int = 1
    batch_per_gpu: int | None = None
    sync_bn: bool = False
    notes: tuple[str, ...] = ()


def adam(params: Iterable[nn.Parameter], lr: float, **kwargs: Any) -> torch.optim.Adam:
    """Adam (betas 0.9/0.999, eps 1e-8, no weight decay) with the fused kernel: it never reads
    the step count back to the host, unlike the per-tensor and foreach paths."""
    return torch.optim.Adam(params, lr=lr, fused=True, **kwargs)


class Forward(Protocol):
    """What :meth:`Method.loss` gets from the engine's runtime
    (:class:`train.engine.runtime.Runtime`)."""

    device: torch.device
    nets: Mapping[str, Callable[..., Any]]

    def autocast(self) -> AbstractContextManager[Any]: ...

    def prepare(self, images: Tensor) -> Tensor: ...


class Method:
    """Base class of training methods (see the module docstring). Subclasses set ``name``,
    ``Params``, ``datasets`` and implement the abstract members."""

    name: ClassVar[str] = ""
    Params: ClassVar[type] = object
    stages: ClassVar[tuple[str, ...]] = ("depth",)
    datasets: ClassVar[tuple[str, ...]] = ("kitti-raw",)
    # older checkpoint formats that name no method and that this class's upgrade_checkpoint reads
    upgrades_formats: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: TrainConfig) -> None:
        """Keep ``config``, its ``params`` (this method's :attr:`Params`; None = the defaults).

        Raises:
            ValueError: params of another class.
        """
        if config.params is None:
            config = replace(config, params=self.Params())
        elif not isinstance(config.params, self.Params):
            raise ValueError(
                f"params of method {self.name!r} must be {self.Params.__name__}, "
                f"not {type(config.params).__name__}"
            )
        self.config = config
        self.params = config.params

    # -- what to build -------------------------------------------------------------------------
    def build_networks(self, device: torch.device | str = "cpu") -> Networks:
        """The networks, seeded by ``config.seed``, on ``device`` (pretrained weights resolved
        through :mod:`train.models.weights`)."""
        raise NotImplementedError

    def initialise(self, nets: Networks) -> None:
        """Load weights that come from other runs into freshly built ``nets`` (e.g. a frozen
        feature extractor from a stage-1 checkpoint). The trainer calls it on a new run, before
        anything is written; not on resume (the checkpoint has every network) nor at evaluation.

        Raises:
            ValueError: one line naming what is missing or does not fit.
        """

    def stage_config(self, stage: str, previous: str | None = None) -> TrainConfig:
        """The config that trains ``stage`` (one of :attr:`stages`) of this run; ``previous`` is
        the last checkpoint of the stage before it (None for the first). Default: one stage, the
        config itself."""
        if stage not in self.stages:
            raise ValueError(f"{self.name} has no stage {stage!r} (stages: {self.stages})")
        return self.config

    def reference(self) -> Reference | None:
        """The published setting this config reproduces (None: none to compare with)."""
        return None

    def store_deviations(self, store: Store) -> list[str]:
        """Ways ``store`` departs from what the reference trains on, beyond the checks the
        header makes from :meth:`reference` (e.g. the size depth hints were computed at)."""
        return []

    def describe(self) -> str:
        """A few words on what this config of the method trains (``train --help``'s preset
        list), e.g. its frames; default none."""
        return ""

    @property
    def predicts_depth(self) -> bool:
        """False for a stage that trains no depth network (no :meth:`predictor`, no depth
        metrics in validation)."""
        return True

    def loader_request(self) -> LoaderRequest:
        raise NotImplementedError

    def augment_config(self) -> AugmentConfig:
        """On-device augmentation settings (model size, pyramid, probabilities, intrinsics)."""
        c = self.config
        return AugmentConfig(
            height=c.height, width=c.width, jitter_prob=c.jitter_prob, flip_prob=c.flip_prob
        )

    def optimisers(self, nets: Networks) -> list[OptimiserSpec]:
        """Adam over every trainable parameter, step decay ``lr * gamma ** (epoch // step)``."""
        c = self.config
        optimiser = adam(nets.parameters(), lr=c.lr)
        step, gamma = c.scheduler_step, c.scheduler_gamma
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda e: gamma ** (e // step))
        return [OptimiserSpec(optimiser, scheduler)]

    # -- what to compute -----------------------------------------------------------------------
    def loss(
        self, run: Forward, aug: Augmented, generator: torch.Generator | None = None
    ) -> LossOutput:
        """The loss of an augmented batch; networks are called through ``run.nets`` (possibly
        compiled / DDP-wrapped) inside ``run.autocast()``; geometry stays in float32."""
        raise NotImplementedError

    def predictor(self, nets: Networks) -> Predictor:
        raise NotImplementedError

    # -- checks --------------------------------------------------------------------------------
    def check_store(self, store: Store) -> None:
        """Refuse a training store this method cannot use (one clear line).

        Default: the store's dataset must be one the method trains on (:attr:`datasets`, always
        checked) and the preset's (``check_dataset=false`` allows another of :attr:`datasets`);
        stereo frames need a two-view store, temporal frames a store whose samples have
        neighbours (a labeled NYU store has none: self-supervised methods train on raw stores).
        """
        c = self.config
        if store.dataset not in self.datasets:
            raise ValueError(
                f"{store.path}: {self.name} ({c.preset}) trains on {' or '.join(self.datasets)} "
                f"stores, this store is {store.dataset or 'of no known dataset'}"
            )
        if c.check_dataset and store.dataset != c.dataset:
            raise ValueError(
                f"{store.path}: preset {c.preset!r} is for {c.dataset} stores, this store is "
                f"{store.dataset} (use a {c.dataset} store, or --set check_dataset=false)"
            )
        if "stereo" in self.loader_request().frames and store.views < 2:
            raise ValueError(f"{store.path}: {c.preset} needs a two-view (stereo) store")
        temporal = [f for f in self.loader_request().frames if f in ("prev", "next")]
        if temporal and not bool((store.samples[:, 1:3] >= 0).any()):
            split = getattr(store, "split", None)
            where = (
                f"this is a {split} split store of single frames; train on the train split "
                "(train.zarr)"
                if split == "test" or store.dataset == "nyu-labeled"
                else "train it on a store with neighbours (prepare it with a train split)"
            )
            raise ValueError(
                f"{store.path}: {c.preset} is self-supervised from video and needs temporal "
                f"neighbours ({'/'.join(temporal)}); this {store.dataset} store's samples have "
                f"none: {where}"
            )

    def reference_notes(self) -> list[str]:
        """Quirks of the reference that this run reproduces on purpose and that a reader would
        not expect (printed in the training header; default: none)."""
        return []

    @classmethod
    def upgrade_checkpoint(cls, payload: dict[str, Any]) -> dict[str, Any]:
        """This method's fix-ups of an older checkpoint's payload (default: none). Called by
        :func:`train.engine.checkpoint.read_checkpoint` for checkpoints of this method, and for
        those of a format listed in :attr:`upgrades_formats` that name no method."""
        return payload

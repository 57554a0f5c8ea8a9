"""Monodepth2 (training.md sections 1-4): self-supervised depth from monocular video (M), stereo
pairs (S) or both (MS).

Per batch: the depth net sees the jittered target at scale 0; the pose net sees jittered temporal
pairs in temporal order (``[I_-1, I_0]``, ``[I_0, I_1]``; the -1 pose is inverted); the stereo
source uses the fixed stereo transform; :func:`train.losses.monodepth2.monodepth2_loss` compares
the plain (un-jittered) images. Frame ids: ``0`` = target, ``-1``/``1`` = temporal neighbours,
``"s"`` = the other stereo camera.

With ``feature_metric > 0`` (the seed study's combination, presets ``monodepth2-fm-*``) the loss
gains ``feature_metric`` times FeatDepth's feature-metric term
(:func:`train.methods.feature_metric.feature_metric_term`): the level-0 features of a frozen
FeatureNet encoder (network ``extractor``, ResNet-``feature_layers``, loaded from the
``featdepth`` auto-encoder checkpoint ``extractor``), warped with the scale-0 depth and the same
poses. Everything else is Monodepth2 unchanged; ``feature_metric = 0`` (the default) builds no
extractor and computes exactly the plain Monodepth2 loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from pipelines.loader import AugmentConfig, Augmented
from pipelines.store import Store
from pipelines.store.passrecord import pass_refusal
from train.constants import STEREO_SCALE_FACTOR
from train.engine.config import TrainConfig
from train.geometry import KITTI_NORMALISED_INTRINSICS, disp_to_depth
from train.losses.depthhints import HINT_LOSSES, HintViews
from train.losses.monodepth2 import Monodepth2LossConfig, Views, monodepth2_loss
from train.methods.base import (
    Forward,
    LoaderRequest,
    LossOutput,
    Method,
    Networks,
    Predictor,
    Reference,
    Scaling,
)
from train.methods.feature_metric import (
    FrozenExtractor,
    check_extractor_bn,
    feature_metric_term,
    load_extractor,
)
from train.methods.registry import register_method, register_preset
from train.models import DepthNet, PoseOutput, build_network, pose_input

FrameId = int | str
HINT_REFERENCE_SIZE = (320, 1024)  # depth-hints' precompute_depth_hints.py
SOURCE_NAMES: dict[FrameId, str] = {-1: "prev", 1: "next", "s": "stereo"}


@dataclass(frozen=True)
class Monodepth2Params:
    """Monodepth2's own settings (reference defaults).

    ``num_layers``: ResNet depth of both encoders. ``scales``: disparity outputs used by the loss.
    ``frame_ids``: target 0 first, then sources. ``intrinsics``: ``"monodepth2"`` (the fixed
    normalised KITTI matrix) or ``"store"`` (the store's per-frame pixel intrinsics). Loss:
    ``min_depth``, ``max_depth``, ``disparity_smoothness``, ``automask``, ``avg_reprojection``,
    ``use_ssim``. Depth Hints (training.md section 7, stereo sources only): ``hints`` adds the
    hint term (needs the store's ``hint_depth``, see ``cli.py hints``), ``hint_loss`` = ``log``
    (log(1 + |D - h|), the released code) or ``berhu`` (the paper's alternative).
    Feature-metric term (off by default): ``feature_metric`` (its weight; FeatDepth:
    1e-3), ``extractor`` (the ``featdepth`` auto-encoder checkpoint), ``feature_layers`` (its
    ResNet depth), ``extractor_bn`` (``"eval"`` or FeatDepth's ``"train"`` BatchNorm).
    """

    num_layers: int = 18
    scales: int = 4
    frame_ids: tuple[FrameId, ...] = (0, -1, 1)
    intrinsics: str = "monodepth2"
    min_depth: float = 0.1
    max_depth: float = 100.0
    disparity_smoothness: float = 1e-3
    automask: bool = True
    avg_reprojection: bool = False
    use_ssim: bool = True
    hints: bool = False
    hint_loss: str = "log"
    feature_metric: float = 0.0
    extractor: str | None = None
    feature_layers: int = 50
    extractor_bn: str = "eval"

    def __post_init__(self) -> None:
        if not self.frame_ids or self.frame_ids[0] != 0:
            raise ValueError(f"frame_ids must start with 0 (the target), got {self.frame_ids}")
        bad = [f for f in self.frame_ids[1:] if f not in SOURCE_NAMES]
        if bad:
            raise ValueError(f"frame_ids: unsupported {bad}; use -1, 1 and 's'")
        if len(self.frame_ids) < 2:
            raise ValueError("frame_ids needs at least one source frame besides 0")
        if self.intrinsics not in ("monodepth2", "store"):
            raise ValueError(f"intrinsics must be 'monodepth2' or 'store', not {self.intrinsics!r}")
        if not 1 <= self.scales <= 4:
            raise ValueError(f"scales must be 1..4, not {self.scales}")
        if self.hints and "s" not in self.frame_ids:
            raise ValueError("hints=true needs the stereo source: frame_ids with 's'")
        if self.hint_loss not in HINT_LOSSES:
            raise ValueError(f"hint_loss must be one of {HINT_LOSSES}, not {self.hint_loss!r}")
        if self.feature_metric < 0:
            raise ValueError(f"feature_metric must be >= 0, not {self.feature_metric}")
        check_extractor_bn(self.extractor_bn)

    @property
    def use_stereo(self) -> bool:
        """True when the other stereo camera is a source (``"s"`` in ``frame_ids``)."""
        return "s" in self.frame_ids

    @property
    def temporal_ids(self) -> tuple[int, ...]:
        """The temporal source offsets (-1 and/or 1), in ``frame_ids`` order."""
        return tuple(f for f in self.frame_ids[1:] if isinstance(f, int))

    def loss_config(self) -> Monodepth2LossConfig:
        return Monodepth2LossConfig(
            min_depth=self.min_depth,
            max_depth=self.max_depth,
            disparity_smoothness=self.disparity_smoothness,
            use_ssim=self.use_ssim,
            automask=self.automask,
            avg_reprojection=self.avg_reprojection,
        )


class Monodepth2Predictor(Predictor):
    """Depth of the scale-0 sigmoid disparity, bounded by ``min_depth`` / ``max_depth``."""

    def __init__(self, depth: DepthNet, min_depth: float, max_depth: float, scaling: Scaling):
        super().__init__()
        self.depth = depth
        self.min_depth, self.max_depth = min_depth, max_depth
        self.scaling = scaling

    def forward(self, image: Tensor) -> Tensor:
        disp = self.depth(image).disps[0].float()
        return disp_to_depth(disp, self.min_depth, self.max_depth)[1]


@register_method
class Monodepth2(Method):
    """Monodepth2: depth + pose networks, one Adam, the multi-scale photometric loss."""

    name = "monodepth2"
    Params = Monodepth2Params
    datasets = ("kitti-raw", "nyu-raw")
    upgrades_formats = ("depthkit-checkpoint/1",)  # Monodepth2 before methods were plug-ins

    def reference(self) -> Reference | None:
        """monodepth2's ``train.py`` (one GPU, batch 12, the README's JPEGs resized with PIL
        LANCZOS; stereo alone on eigen_full, else eigen_zhou), or depth-hints' (eigen_full)."""
        p = self.params
        if self.config.dataset != "kitti-raw":
            return None
        if p.hints:
            return Reference("depth-hints' train.py", "jpg", "lanczos", "eigen_full")
        split = "eigen_full" if p.use_stereo and not p.temporal_ids else "eigen_zhou"
        return Reference("monodepth2's train.py", "jpg", "lanczos", split)

    def store_deviations(self, store: Store) -> list[str]:
        """With hints: hints matched at another size than depth-hints' 320x1024."""
        if not self.params.hints:
            return []
        size = (store.attrs.get("hints") or {}).get("hint_size")
        if size is None or tuple(size) == HINT_REFERENCE_SIZE:
            return []
        return [
            f"depth hints matched at {size[0]}x{size[1]} (reference: 320x1024; "
            "cli.py hints --hint-size 320x1024)"
        ]

    def describe(self) -> str:
        p = self.params
        words = ["frames " + " ".join(str(f) for f in p.frame_ids)]
        if p.hints:
            words.append("hints (from `hints`)")
        if p.feature_metric > 0:
            words.append(f"feature-metric {p.feature_metric:g} (--set extractor=AE/last.pt)")
        return ", ".join(words)

    def build_networks(self, device: torch.device | str = "cpu") -> Networks:
        p = self.params
        torch.manual_seed(self.config.seed)
        weights = self.config.encoder_weights
        modules = {
            "depth": build_network(
                "monodepth2_depth",
                num_layers=p.num_layers,
                encoder_weights=weights,
                num_scales=p.scales,
            )
        }
        if p.temporal_ids:
            modules["pose"] = build_network(
                "monodepth2_pose", num_layers=p.num_layers, encoder_weights=weights
            )
        frozen: frozenset[str] = frozenset()
        train_mode: frozenset[str] = frozenset()
        if p.feature_metric > 0:  # built last: depth and pose start as without it
            modules["extractor"] = FrozenExtractor(p.feature_layers)
            frozen = frozenset({"extractor"})
            train_mode = frozen if p.extractor_bn == "train" else frozenset()
        for module in modules.values():
            module.to(device)
        return Networks(modules, frozen=frozen, train_mode=train_mode)

    def initialise(self, nets: Networks) -> None:
        if self.params.feature_metric > 0:
            load_extractor(nets["extractor"], self.params.extractor, "feature_metric > 0")

    def loader_request(self) -> LoaderRequest:
        frames = tuple(SOURCE_NAMES[f] for f in self.params.frame_ids[1:])
        return LoaderRequest(frames=frames, extras=("hint",) if self.params.hints else ())

    def check_store(self, store: Store) -> None:
        """The default checks; with ``hints`` also a fully computed ``hint_depth``."""
        super().check_store(store)
        if not self.params.hints:
            return
        how = "compute them with `cli.py hints STORE --kitti-root ROOT` (or prepare-kitti --hints)"
        if not store.has("hint_depth"):
            raise ValueError(f"{store.path}: hints=true needs depth hints (hint_depth); {how}")
        for name in ("hint_depth", "hint_depth_flipped"):
            refusal = pass_refusal(store, name, f"{self.config.preset} (hints=true)")
            if refusal is not None and store.has(name):
                raise ValueError(refusal)

    def augment_config(self) -> AugmentConfig:
        c, p = self.config, self.params
        normalised = KITTI_NORMALISED_INTRINSICS if p.intrinsics == "monodepth2" else None
        return AugmentConfig(
            height=c.height,
            width=c.width,
            scales=p.scales,
            jitter_prob=c.jitter_prob,
            flip_prob=c.flip_prob,
            normalised_K=normalised,
        )

    def loss(
        self, run: Forward, aug: Augmented, generator: torch.Generator | None = None
    ) -> LossOutput:
        disps, views = self.disparities_and_views(run, aug)
        out = self.photometric_loss(disps, views, aug, generator)
        p = self.params
        if p.feature_metric > 0:
            with run.autocast():
                fm = feature_metric_term(
                    run.nets["extractor"],
                    disps[0],
                    views.target,
                    views.sources,
                    views.poses,
                    views.K,
                    p.min_depth,
                    p.max_depth,
                )
            out.scalars["photometric"] = out.total.detach()
            out.scalars["feature_metric"] = fm.detach()
            out.total = out.total + p.feature_metric * fm
        return out

    def disparities_and_views(self, run: Forward, aug: Augmented) -> tuple[list[Tensor], Views]:
        """The depth net's disparities (scales ``0 .. scales - 1``) of the jittered target, and
        the :class:`Views` (plain images, poses from the pose net or the stereo transform)."""
        p = self.params
        target_aug = run.prepare(aug.color_aug["target"][0])
        with run.autocast():
            disps = run.nets["depth"](target_aug).disps[: p.scales]
        sources = [aug.color[SOURCE_NAMES[f]][0] for f in p.frame_ids[1:]]
        poses = self.poses(run, aug, target_aug)
        views = Views(
            target=aug.color["target"][0],
            sources=sources,
            poses=poses,
            K=aug.K[0],
            inv_K=aug.inv_K[0],
            target_pyramid=aug.color["target"][: p.scales],
        )
        return list(disps), views

    def photometric_loss(
        self,
        disps: list[Tensor],
        views: Views,
        aug: Augmented,
        generator: torch.Generator | None = None,
    ) -> LossOutput:
        """:func:`train.losses.monodepth2.monodepth2_loss` (with the hint term when ``hints``),
        its per-scale values and mask fractions as scalars, the scale-0 disparity as image."""
        output = monodepth2_loss(
            disps, views, self.params.loss_config(), generator, self.hint_views(aug)
        )
        scalars = {f"loss_scale{s}": v.detach() for s, v in enumerate(output.per_scale)}
        if output.automask is not None:
            scalars["automask_fraction"] = output.automask.float().mean()
        if output.hint_mask is not None:
            scalars["hint_fraction"] = output.hint_mask.float().mean()
        outputs = {f"disp_{s}": d for s, d in enumerate(disps)}
        return LossOutput(output.total, scalars, {"disp": disps[0].detach().float()}, outputs)

    def poses(self, run: Forward, aug: Augmented, target_aug: Tensor) -> list[Tensor]:
        """One float32 ``(B, 4, 4)`` target-to-source transform per source frame.

        The pose network runs under the runtime's autocast; its axis-angle and translation are
        turned into matrices in float32 with autocast off (bf16 matrix products would move the
        warp by a fraction of a pixel).
        """
        outputs: list[PoseOutput | Tensor] = []
        for frame in self.params.frame_ids[1:]:
            if frame == "s":
                if aug.stereo_T is None:
                    raise ValueError("frame 's' requested but the batch has no stereo image")
                outputs.append(aug.stereo_T)
                continue
            name = SOURCE_NAMES[frame]
            pair = pose_input(target_aug, run.prepare(aug.color_aug[name][0]), frame)
            with run.autocast():
                outputs.append(run.nets["pose"](pair))
        poses: list[Tensor] = []
        with torch.autocast(run.device.type, enabled=False):
            for frame, out in zip(self.params.frame_ids[1:], outputs, strict=True):
                if isinstance(out, Tensor):
                    poses.append(out)
                    continue
                pose = PoseOutput(out.axisangle.float(), out.translation.float())
                poses.append(pose.matrix(invert=frame < 0))
        return poses

    def hint_views(self, aug: Augmented) -> HintViews | None:
        """The Depth Hints inputs of a batch (None without ``hints``)."""
        if not self.params.hints:
            return None
        if aug.hint_depth is None or aug.stereo_T is None:
            raise ValueError("hints=true but the batch has no hint_depth or no stereo image")
        return HintViews(
            aug.hint_depth, aug.color["stereo"][0], aug.stereo_T, self.params.hint_loss
        )

    def predictor(self, nets: Networks) -> Predictor:
        p = self.params
        scaling = Scaling(median=False, factor=STEREO_SCALE_FACTOR) if p.use_stereo else Scaling()
        return Monodepth2Predictor(nets["depth"], p.min_depth, p.max_depth, scaling)

    @classmethod
    def upgrade_checkpoint(cls, payload: dict[str, Any]) -> dict[str, Any]:
        """``depthkit-checkpoint/1`` (flat Monodepth2-only config, one optimiser) -> current."""
        if payload.get("format") != "depthkit-checkpoint/1":
            return payload
        flat = dict(payload["config"])
        own = {k: flat.pop(k) for k in list(flat) if k in _PARAM_NAMES}
        flat["method"] = cls.name
        flat["params"] = own
        upgraded = dict(payload, config=flat)
        if "optimiser" in upgraded:
            upgraded["optimisers"] = {"main": upgraded.pop("optimiser")}
            upgraded["schedulers"] = {"main": upgraded.pop("scheduler")}
        return upgraded


_PARAM_NAMES = set(Monodepth2Params.__dataclass_fields__)


# Presets. KITTI (training.md section 4): ResNet-18 depth and pose networks, 192x640, batch 12,
# Adam 1e-4, 20 epochs, learning rate x0.1 from epoch 15 (the reference's behaviour under PyTorch
# 0.4.1), depth 0.1-100, smoothness 1e-3, scales 0-3. NYU (P2Net / StructDepth, nyuv2.md 7.5):
# 288x384, 0.1..10 m, the store's own intrinsics (NYU's principal point is not centred). Depth
# Hints (training.md 7): the hint term (hint_depth from `hints`), the paper's recipe: eigen_full,
# LR x0.1 every 5 epochs, no smoothness. The seed study: the feature-metric term (1e-3, a ResNet-50
# extractor from a featdepth-ae run: --set extractor=AE/checkpoints/last.pt).
MONO, STEREO, BOTH = (0, -1, 1), (0, "s"), (0, -1, 1, "s")
NYU = {"dataset": "nyu-raw", "height": 288, "width": 384}
NYU_PARAMS = {"max_depth": 10.0, "intrinsics": "store"}
HINTS = {"hints": True, "disparity_smoothness": 0.0}
for _name, _frames, _run, _params in (
    ("monodepth2-m", MONO, {}, {}),
    ("monodepth2-s", STEREO, {}, {}),
    ("monodepth2-ms", BOTH, {}, {}),
    ("monodepth2-nyu-m", MONO, NYU, NYU_PARAMS),
    ("depthhints-s", STEREO, {"scheduler_step": 5}, HINTS),
    ("depthhints-ms", BOTH, {"scheduler_step": 5}, HINTS),
    ("monodepth2-fm-m", MONO, {}, {"feature_metric": 1e-3}),
    ("monodepth2-fm-s", STEREO, {}, {"feature_metric": 1e-3}),
    ("monodepth2-fm-nyu-m", MONO, NYU | {"width": 480, "height": 192},
     NYU_PARAMS | {"feature_metric": 1e-3}),
):  # fmt: skip
    register_preset(
        TrainConfig(preset=_name, **_run, params=Monodepth2Params(frame_ids=_frames, **_params))
    )

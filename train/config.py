"""Training configuration: one dataclass with every hyper-parameter, named presets, overrides.

Presets follow monodepth2's reference settings (training.md section 4): ResNet-18 depth and pose
networks, 192x640, batch 12, Adam lr 1e-4, 20 epochs, learning rate x0.1 from epoch 15 (the
reference's behaviour under PyTorch 0.4.1), min/max depth 0.1/100, smoothness 1e-3, scales 0..3.
Frame ids: ``0`` = target, ``-1``/``1`` = temporal neighbours, ``"s"`` = the other stereo camera.

Any field can be overridden from text (``key=value``, :func:`apply_overrides`); values are parsed
according to the field's type (``frame_ids=0,-1,1,s``, ``amp=false``, ``max_steps=none``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from train.geometry import KITTI_NORMALISED_INTRINSICS

FrameId = int | str


@dataclass(frozen=True)
class TrainConfig:
    """Every hyper-parameter of a Monodepth2 training run (reference defaults).

    Model: ``num_layers`` (ResNet depth of both encoders), ``pretrained`` (ImageNet encoder
    weights from the local torch cache), ``weights`` (explicit weights name or file; overrides
    ``pretrained``). Input: ``height`` x ``width`` (multiples of 32), ``scales`` (disparity outputs
    used by the loss), ``frame_ids``, ``intrinsics`` (``"monodepth2"``: the fixed normalised KITTI
    matrix; ``"store"``: the store's per-frame pixel intrinsics). Optimisation: Adam ``lr``,
    ``epochs``, ``scheduler_step`` / ``scheduler_gamma`` (lr of epoch e = lr * gamma ** (e //
    step)), ``max_steps`` (stop early; None = all epochs). Loss: ``min_depth``, ``max_depth``,
    ``disparity_smoothness``, ``automask``, ``avg_reprojection``, ``use_ssim``. Loader:
    ``batch_size``, ``workers``, ``shuffle_chunks``. Runtime: ``seed``, ``device`` (None = CUDA when
    available), ``amp`` (bf16 autocast where supported: CUDA with bf16), ``channels_last``
    (None = on CUDA only), ``compile`` (``torch.compile`` the networks). Logging: ``log_every``
    steps, ``val_batches`` per validation (None = the whole val store), ``checkpoint_every`` steps
    (0 = only at epoch ends), ``keep_epochs`` (weights-only ``epoch_NNN.pt`` files kept, newest
    first; 0 = all).
    """

    preset: str = "monodepth2-m"
    dataset: str = "kitti-raw"
    num_layers: int = 18
    pretrained: bool = True
    weights: str | None = None
    height: int = 192
    width: int = 640
    scales: int = 4
    frame_ids: tuple[FrameId, ...] = (0, -1, 1)
    intrinsics: str = "monodepth2"
    batch_size: int = 12
    lr: float = 1e-4
    epochs: int = 20
    scheduler_step: int = 15
    scheduler_gamma: float = 0.1
    max_steps: int | None = None
    min_depth: float = 0.1
    max_depth: float = 100.0
    disparity_smoothness: float = 1e-3
    automask: bool = True
    avg_reprojection: bool = False
    use_ssim: bool = True
    workers: int = 4
    shuffle_chunks: int = 8
    seed: int = 0
    device: str | None = None
    amp: bool = True
    channels_last: bool | None = None
    compile: bool = False
    log_every: int = 50
    val_batches: int | None = 20
    checkpoint_every: int = 0
    keep_epochs: int = 0
    jitter_prob: float = 0.5
    flip_prob: float = 0.5

    def __post_init__(self) -> None:
        if self.height % 32 or self.width % 32 or min(self.height, self.width) < 64:
            raise ValueError(
                "height and width must be multiples of 32 and >= 64, "
                f"got {self.height}x{self.width}"
            )
        if not self.frame_ids or self.frame_ids[0] != 0:
            raise ValueError(f"frame_ids must start with 0 (the target), got {self.frame_ids}")
        bad = [f for f in self.frame_ids[1:] if f not in (-1, 1, "s")]
        if bad:
            raise ValueError(f"frame_ids: unsupported {bad}; use -1, 1 and 's'")
        if len(self.frame_ids) < 2:
            raise ValueError("frame_ids needs at least one source frame besides 0")
        if self.intrinsics not in ("monodepth2", "store"):
            raise ValueError(f"intrinsics must be 'monodepth2' or 'store', not {self.intrinsics!r}")
        if not 1 <= self.scales <= 4:
            raise ValueError(f"scales must be 1..4, not {self.scales}")
        if self.keep_epochs < 0:
            raise ValueError(f"keep_epochs must be >= 0 (0 = keep all), not {self.keep_epochs}")
        if self.batch_size < 1 or self.epochs < 1 or self.lr <= 0:
            raise ValueError("batch_size and epochs must be >= 1 and lr > 0")

    @property
    def use_stereo(self) -> bool:
        """True when the other stereo camera is a source (``"s"`` in ``frame_ids``)."""
        return "s" in self.frame_ids

    @property
    def temporal_ids(self) -> tuple[int, ...]:
        """The temporal source offsets (-1 and/or 1), in ``frame_ids`` order."""
        return tuple(f for f in self.frame_ids[1:] if isinstance(f, int))

    @property
    def loader_frames(self) -> tuple[str, ...]:
        """Frames the streaming loader must read besides the target."""
        names = {-1: "prev", 1: "next", "s": "stereo"}
        return tuple(names[f] for f in self.frame_ids[1:])

    @property
    def normalised_K(self) -> tuple[tuple[float, ...], ...] | None:
        """The fixed normalised intrinsics, or None to use the store's."""
        return KITTI_NORMALISED_INTRINSICS if self.intrinsics == "monodepth2" else None

    def lr_at(self, epoch: int) -> float:
        """Learning rate of ``epoch`` (0-based): ``lr * gamma ** (epoch // scheduler_step)``."""
        return self.lr * self.scheduler_gamma ** (epoch // self.scheduler_step)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}")
        data = dict(values)
        if "frame_ids" in data:
            data["frame_ids"] = tuple(data["frame_ids"])
        return cls(**data)


PRESETS: dict[str, TrainConfig] = {
    "monodepth2-m": TrainConfig(preset="monodepth2-m", frame_ids=(0, -1, 1)),
    "monodepth2-s": TrainConfig(preset="monodepth2-s", frame_ids=(0, "s")),
    "monodepth2-ms": TrainConfig(preset="monodepth2-ms", frame_ids=(0, -1, 1, "s")),
    # Indoor self-supervised setting (P2Net / StructDepth, nyuv2.md 7.5): 288x384, 0.1..10 m,
    # the store's own intrinsics (NYU's principal point is not centred).
    "monodepth2-nyu-m": TrainConfig(
        preset="monodepth2-nyu-m",
        dataset="nyu-raw",
        frame_ids=(0, -1, 1),
        height=288,
        width=384,
        max_depth=10.0,
        intrinsics="store",
    ),
}


def preset(name: str) -> TrainConfig:
    """The preset called ``name``; ValueError listing the presets otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name]


def parse_value(text: str, current: Any, name: str) -> Any:
    """Parse ``text`` for field ``name`` whose current (or default) value is ``current``."""
    lowered = text.strip().lower()
    if name == "frame_ids":
        return tuple(
            part if part == "s" else int(part)
            for part in (p.strip() for p in text.split(","))
            if part
        )
    if lowered in ("none", "null") and name in _OPTIONAL:
        return None
    kind = _FIELD_KINDS[name]
    if kind is bool:
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name}: expected true or false, got {text!r}")
    try:
        return kind(text)
    except ValueError as e:
        raise ValueError(f"{name}: cannot parse {text!r} as {kind.__name__}") from e


def apply_overrides(
    config: TrainConfig, overrides: Iterable[str] | Mapping[str, Any]
) -> TrainConfig:
    """A copy of ``config`` with ``key=value`` strings (or a mapping of values) applied.

    Raises:
        ValueError: unknown key, malformed item or unparsable value (the message names it).
    """
    changes: dict[str, Any] = {}
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            _check_key(key)
            changes[key] = (
                parse_value(value, getattr(config, key), key) if isinstance(value, str) else value
            )
    else:
        for item in overrides:
            key, sep, value = item.partition("=")
            key = key.strip().replace("-", "_")
            if not sep:
                raise ValueError(f"override {item!r}: expected key=value")
            _check_key(key)
            changes[key] = parse_value(value, getattr(config, key), key)
    return replace(config, **changes)


def _check_key(key: str) -> None:
    if key not in _FIELD_KINDS:
        raise ValueError(f"unknown config key {key!r}; known: {', '.join(sorted(_FIELD_KINDS))}")


def _kind(annotation: str) -> type:
    base = annotation.replace(" | None", "").strip()
    return {"int": int, "float": float, "bool": bool, "str": str}.get(base, str)


_FIELD_KINDS: dict[str, type] = {f.name: _kind(str(f.type)) for f in fields(TrainConfig)}
_OPTIONAL = {f.name for f in fields(TrainConfig) if "None" in str(f.type)}

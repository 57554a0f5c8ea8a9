"""Training configuration: the run's settings, with the method's own settings nested.

:class:`TrainConfig` holds what every method shares (input size, batch, optimiser schedule,
loader, runtime, logging) and ``params``, the method's own frozen dataclass
(:attr:`train.methods.Method.Params`). Presets live in their method's file
(:mod:`train.methods.registry`).

Overrides are ``key=value`` text (:func:`apply_overrides`), parsed by the field's type:
``epochs=3``, ``amp=false``, ``max_steps=none``, ``frame_ids=0,-1,1,s``. A key that is not a
field of :class:`TrainConfig` is looked up in ``params``; dotted keys reach nested dataclasses
explicitly (``params.disparity_smoothness=1e-3``).

Plain data: nothing here knows the methods. ``params`` is the method's own dataclass (None = its
defaults, filled in by :func:`train.methods.with_params` when the method is built), validated by
that dataclass itself.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run (Monodepth2's reference values by default).

    Model input: ``height`` x ``width`` (multiples of 32, >= 64); ``pretrained`` (ImageNet
    encoders from the local torch cache) or ``weights`` (an explicit weights name or file).
    Optimisation: Adam ``lr``, ``epochs``, ``scheduler_step`` / ``scheduler_gamma`` (lr of epoch
    e = lr * gamma ** (e // step)), ``max_steps`` (stop early; None = all epochs). Loader:
    ``batch_size`` (per process under ``torchrun``), ``workers`` (None = up to 4, at most the
    machine's cores; a run records the number it used), ``shuffle_chunks``. Runtime:
    ``seed``, ``device`` (None = CUDA when available), ``amp`` (bf16 autocast where supported),
    ``channels_last`` (None = on CUDA only), ``compile``, ``deterministic`` (deterministic
    algorithms, no cuDNN autotuning: what makes a CUDA resume bitwise), ``exact`` (float32
    without TF32 and no compile, as the reference ran: sets ``amp`` and ``compile`` to False;
    the trainer checks the store, :mod:`train.engine.header`), ``sync_bn`` (SyncBatchNorm
    across processes under ``torchrun``; CUDA only). Logging: ``log_every`` steps,
    ``val_batches`` per validation (None = the whole val store); checkpoints: ``last.pt`` every
    ``checkpoint_every`` steps (0 = off) and every ``checkpoint_minutes`` minutes (0 = off) besides
    the epoch ends, ``keep_epochs`` (weights-only epoch files kept; 0 = all). Augmentation:
    ``jitter_prob``, ``flip_prob``. ``dataset``: the store dataset the preset is for;
    ``check_dataset=false`` allows another. ``method`` (a registered name) and its ``params``
    (that method's ``Params`` instance; None = its defaults).
    """

    preset: str = "monodepth2-m"
    method: str = "monodepth2"
    dataset: str = "kitti-raw"
    check_dataset: bool = True
    pretrained: bool = True
    weights: str | None = None
    height: int = 192
    width: int = 640
    batch_size: int = 12
    lr: float = 1e-4
    epochs: int = 20
    scheduler_step: int = 15
    scheduler_gamma: float = 0.1
    max_steps: int | None = None
    workers: int | None = None
    shuffle_chunks: int = 16
    seed: int = 0
    device: str | None = None
    amp: bool = True
    channels_last: bool | None = None
    compile: bool = False
    deterministic: bool = False
    exact: bool = False
    sync_bn: bool = False
    log_every: int = 50
    val_batches: int | None = 20
    checkpoint_every: int = 0
    checkpoint_minutes: float = 30.0
    keep_epochs: int = 0
    jitter_prob: float = 0.5
    flip_prob: float = 0.5
    params: Any = None

    def __post_init__(self) -> None:
        if self.exact:  # the one place --exact is applied to the settings
            object.__setattr__(self, "amp", False)
            object.__setattr__(self, "compile", False)
        if self.height % 32 or self.width % 32 or min(self.height, self.width) < 64:
            raise ValueError(
                "height and width must be multiples of 32 and >= 64, "
                f"got {self.height}x{self.width}"
            )
        if self.checkpoint_every < 0 or self.checkpoint_minutes < 0:
            raise ValueError("checkpoint_every and checkpoint_minutes must be >= 0 (0 = off)")
        if self.workers is not None and self.workers < 0:
            raise ValueError(f"workers must be >= 0, not {self.workers}")
        if self.keep_epochs < 0:
            raise ValueError(f"keep_epochs must be >= 0 (0 = keep all), not {self.keep_epochs}")
        for name in ("batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, not {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 (or none), not {self.max_steps}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, not {self.lr}")

    @property
    def encoder_weights(self) -> str | None:
        """What pretrained encoders start from: ``weights``, else ImageNet when ``pretrained``."""
        if self.weights is not None:
            return self.weights
        return "imagenet" if self.pretrained else None

    def lr_at(self, epoch: int) -> float:
        """Learning rate of ``epoch`` (0-based) under the default step decay."""
        return self.lr * self.scheduler_gamma ** (epoch // self.scheduler_step)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists, ``params`` a nested dict)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], params_cls: type | None = None) -> TrainConfig:
        """Inverse of :meth:`to_dict`, ``params`` rebuilt as ``params_cls`` (the method's
        ``Params``; :func:`train.methods.config_from_dict` looks it up). Unknown keys raise
        ValueError."""
        data = dict(values)
        params = data.pop("params", None)
        config = _build(cls, data, "")
        if params is not None:
            if params_cls is None:
                raise ValueError("TrainConfig.from_dict: stored params need their params_cls")
            config = replace(config, params=_build(params_cls, params, "params."))
        return config


def _build(cls: type, values: Mapping[str, Any], prefix: str) -> Any:
    """``cls(**values)`` with list values turned back into tuples and nested dicts into their
    dataclasses; unknown keys raise ValueError naming them."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown config keys {[prefix + k for k in unknown]}")
    data: dict[str, Any] = {}
    for key, value in values.items():
        kind = _strip_optional(hints[key])
        if isinstance(value, Mapping) and is_dataclass(kind):
            value = _build(kind, value, f"{prefix}{key}.")  # type: ignore[arg-type]
        elif isinstance(value, list):
            value = tuple(value)
        data[key] = value
    return cls(**data)


def parse_value(text: str, kind: Any, name: str) -> Any:
    """Parse ``text`` for field ``name`` annotated ``kind`` (int, float, bool, str, tuples of
    int/str, ``X | None``)."""
    lowered = text.strip().lower()
    optional = _is_optional(kind)
    kind = _strip_optional(kind)
    if optional and lowered in ("none", "null"):
        return None
    if typing.get_origin(kind) is tuple:
        return tuple(_scalar(p.strip()) for p in text.split(",") if p.strip())
    if kind is bool:
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name}: expected true or false, got {text!r}")
    if kind in (int, float, str):
        try:
            return kind(text)
        except ValueError as e:
            raise ValueError(f"{name}: cannot parse {text!r} as {kind.__name__}") from e
    return text


def apply_overrides(
    config: TrainConfig, overrides: Iterable[str] | Mapping[str, Any]
) -> TrainConfig:
    """A copy of ``config`` with ``key=value`` strings (or a mapping of values) applied.

    Raises:
        ValueError: unknown key, malformed item or unparsable value (the message names it).
    """
    items: list[tuple[str, Any]] = []
    if isinstance(overrides, Mapping):
        items = list(overrides.items())
    else:
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"override {item!r}: expected key=value")
            items.append((key.strip().replace("-", "_"), value))
    changes: dict[tuple[str, ...], Any] = {}
    for key, value in items:
        if key in ("method", "preset"):
            raise ValueError(f"{key} cannot be overridden: choose another --preset")
        changes[tuple(_resolve_key(config, key))] = value
    return _apply(config, changes)  # all at once: checks see the final values


def config_keys(config: TrainConfig) -> list[str]:
    """Every settable key of ``config`` (``params`` fields as ``params.NAME``)."""
    top = [f.name for f in fields(config) if f.name != "params"]
    own = _leaf_keys(config.params) if is_dataclass(config.params) else []
    return top + [f"params.{k}" for k in own]


def _leaf_keys(obj: Any, prefix: str = "") -> list[str]:
    keys: list[str] = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            keys += _leaf_keys(value, f"{prefix}{f.name}.")
        else:
            keys.append(prefix + f.name)
    return keys


def _resolve_key(config: TrainConfig, key: str) -> list[str]:
    """The field path of ``key``: a top-level field, a dotted path, or a ``params`` field."""
    path = key.split(".")
    if _has_path(config, path):
        return path
    if _has_path(config.params, path):
        return ["params", *path]
    raise ValueError(
        f"unknown config key {key!r} for method {config.method!r}; known: "
        + ", ".join(config_keys(config))
    )


def _has_path(obj: Any, path: list[str]) -> bool:
    for name in path:
        if not is_dataclass(obj) or name not in {f.name for f in fields(obj)}:
            return False
        obj = getattr(obj, name)
    return not (path == ["params"])


def _apply(obj: Any, changes: dict[tuple[str, ...], Any]) -> Any:
    """``obj`` with every ``path -> value`` change applied in one ``replace`` per dataclass (text
    values parsed by the field's type)."""
    direct: dict[str, Any] = {}
    nested: dict[str, dict[tuple[str, ...], Any]] = {}
    for path, value in changes.items():
        if len(path) > 1:
            nested.setdefault(path[0], {})[path[1:]] = value
        elif isinstance(value, str):
            kind = typing.get_type_hints(type(obj))[path[0]]
            direct[path[0]] = parse_value(value, kind, path[0])
        else:
            direct[path[0]] = value
    for name, inner in nested.items():
        direct[name] = _apply(getattr(obj, name), inner)
    return replace(obj, **direct) if direct else obj


def _scalar(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _is_optional(kind: Any) -> bool:
    return _is_union(kind) and type(None) in typing.get_args(kind)


def _is_union(kind: Any) -> bool:
    return typing.get_origin(kind) in (typing.Union, types.UnionType)


def _strip_optional(kind: Any) -> Any:
    if _is_union(kind):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        return args[0] if len(args) == 1 else kind
    return kind

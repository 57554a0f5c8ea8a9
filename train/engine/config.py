"""Training configuration: the run's settings, with the method's own settings nested.

:class:`TrainConfig` holds what every method shares (input size, batch, optimiser schedule,
loader, runtime, logging) and ``params``, the method's own frozen dataclass
(:attr:`train.methods.Method.Params`). Presets live in :mod:`train.engine.presets`.

Overrides are ``key=value`` text (:func:`apply_overrides`), parsed by the field's type:
``epochs=3``, ``amp=false``, ``max_steps=none``, ``frame_ids=0,-1,1,s``. A key that is not a
field of :class:`TrainConfig` is looked up in ``params``; dotted keys reach nested dataclasses
explicitly (``params.disparity_smoothness=1e-3``). ``method=NAME`` swaps in that method's default
``params``.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any

from train.methods import method_class


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run (Monodepth2's reference values by default).

    Model input: ``height`` x ``width`` (multiples of 32, >= 64); ``pretrained`` (ImageNet
    encoders from the local torch cache) or ``weights`` (an explicit weights name or file).
    Optimisation: Adam ``lr``, ``epochs``, ``scheduler_step`` / ``scheduler_gamma`` (lr of epoch
    e = lr * gamma ** (e // step)), ``max_steps`` (stop early; None = all epochs). Loader:
    ``batch_size`` (per process under ``torchrun``), ``workers``, ``shuffle_chunks``. Runtime:
    ``seed``, ``device`` (None = CUDA when available), ``amp`` (bf16 autocast where supported),
    ``channels_last`` (None = on CUDA only), ``compile``, ``deterministic`` (deterministic
    algorithms, no cuDNN autotuning: what makes a CUDA resume bitwise), ``exact`` (float32
    without TF32 and no compile, as the reference ran: sets ``amp`` and ``compile`` to False;
    the trainer checks the store, :mod:`train.engine.header`), ``sync_bn`` (SyncBatchNorm
    across processes under ``torchrun``; CUDA only). Logging: ``log_every`` steps,
    ``val_batches`` per validation (None = the whole val store), ``checkpoint_every`` steps (0 =
    epoch ends only), ``keep_epochs`` (weights-only epoch files kept; 0 = all). Augmentation:
    ``jitter_prob``, ``flip_prob``. ``dataset``: the store dataset the preset is for;
    ``check_dataset=false`` allows another. ``method`` and its ``params``.
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
    workers: int = 4
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
        if self.keep_epochs < 0:
            raise ValueError(f"keep_epochs must be >= 0 (0 = keep all), not {self.keep_epochs}")
        if self.batch_size < 1 or self.epochs < 1 or self.lr <= 0:
            raise ValueError("batch_size and epochs must be >= 1 and lr > 0")
        params_cls = method_class(self.method).Params
        if self.params is None:
            object.__setattr__(self, "params", params_cls())
        elif not isinstance(self.params, params_cls):
            raise ValueError(
                f"params of method {self.method!r} must be {params_cls.__name__}, "
                f"not {type(self.params).__name__}"
            )

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
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError."""
        data = dict(values)
        params = data.pop("params", None)
        config = _build(cls, data, "")
        if params is not None:
            config = replace(config, params=_build(type(config.params), params, "params."))
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
    for key, value in items:  # method first: it decides which params exist
        if key == "method":
            config = replace(config, method=str(value), params=None)
    for key, value in items:
        if key != "method":
            config = _set(config, _resolve_key(config, key), value)
    return config


def config_keys(config: TrainConfig) -> list[str]:
    """Every settable key of ``config`` (``params`` fields as ``params.NAME``)."""
    top = [f.name for f in fields(config) if f.name != "params"]
    return top + [f"params.{k}" for k in _leaf_keys(config.params)]


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


def _set(obj: Any, path: list[str], value: Any) -> Any:
    name = path[0]
    if len(path) > 1:
        return replace(obj, **{name: _set(getattr(obj, name), path[1:], value)})
    if isinstance(value, str):
        kind = typing.get_type_hints(type(obj))[name]
        value = parse_value(value, kind, name)
    return replace(obj, **{name: value})


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

"""The files ``predict`` writes for each depth map, and the companion JSON of each input
(:mod:`train.eval.predict` describes them): the float map, the 16-bit PNG with its scale, the
colour picture; every file atomic (:func:`train.eval.files.atomic_bytes`), each companion only
after all of its input's maps."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from train.colormap import colorize
from train.eval.files import atomic_bytes

if TYPE_CHECKING:
    from train.eval.media import Item

PNG_SCALE = 1000.0  # 16-bit PNG of metric depth: depth x 1000 (millimetres)
PNG_MAX = 65535


def png16_scale(depth: np.ndarray, metric: bool) -> float:
    """Depth per unit of the 16-bit PNG: 1 mm for metric depth; for relative depth the map's
    largest finite depth / 65535 (1 when the map has none), so that the map keeps its
    precision whatever the network's units."""
    if metric:
        return 1.0 / PNG_SCALE
    finite = depth[np.isfinite(depth) & (depth > 0)]
    top = float(finite.max()) if finite.size else 0.0
    return top / PNG_MAX if top > 0 else 1.0


def encode_png16(depth: np.ndarray, scale: float) -> np.ndarray:
    """uint16 ``round(depth x (1 / scale))`` in the depth's dtype (float32 depth x 1000 for
    millimetres, as before; float64 for a relative map's own scale), clipped to 0..65535
    (NaN: 0)."""
    values = np.nan_to_num(depth * (1.0 / scale), nan=0.0, posinf=PNG_MAX)
    return np.clip(np.round(values), 0, PNG_MAX).astype(np.uint16)


class Writer:
    """Writes the outputs of one prediction run (see the module docstring): maps as they are
    predicted, each input's companion JSON once all of its maps are written."""

    def __init__(self, out: Path, value_range: tuple[float, float] | None, metric: bool) -> None:
        self.out = out
        self.value_range = value_range
        self.metric = metric
        self.written: list[str] = []
        self.scales: dict[Path, list[float]] = {}  # companion path -> PNG scale of each map
        self.waiting: list[tuple[Item, dict[str, object]]] = []

    def maps(self, item: Item, frame: int | None, depth: np.ndarray, disp: np.ndarray) -> None:
        stem = item.map_stem(self.out, frame)
        stem.parent.mkdir(parents=True, exist_ok=True)
        npy = stem.with_name(stem.name + "_depth.npy")
        buffer = io.BytesIO()
        np.save(buffer, depth.astype(np.float32), allow_pickle=False)
        atomic_bytes(npy, buffer.getvalue())
        scale = png16_scale(depth, self.metric)
        png16 = encode_png16(depth if self.metric else depth.astype(np.float64), scale)
        atomic_bytes(stem.with_name(stem.name + "_depth.png"), _encode_png(png16))
        if self.value_range is None:
            picture = colorize(disp)
        else:
            lo, hi = self.value_range
            picture = colorize(disp, valid=np.isfinite(disp), vmin=1.0 / hi, vmax=1.0 / lo)
        atomic_bytes(stem.with_name(stem.name + "_colour.png"), _encode_png(picture[:, :, ::-1]))
        self.scales.setdefault(item.json_path(self.out), []).append(scale)
        self.written.append(str(npy))

    def finished(self, item: Item, info: dict[str, object]) -> None:
        """Every frame of ``item`` is read: its companion is written after the next flush."""
        self.waiting.append((item, info))

    def companions(self) -> None:
        """Write the companions of the finished inputs (all their maps are written)."""
        for item, info in self.waiting:
            path = item.json_path(self.out)
            scales = self.scales.pop(path, [])
            one = self.metric or item.kind == "image"
            scale = (scales[0] if scales else None) if one else scales
            info = {**info, "png16_scale": scale}
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_bytes(path, (json.dumps(info, indent=2) + "\n").encode())
        self.waiting.clear()


def png16_note(metric: bool) -> str:
    """What the 16-bit PNG holds (the companion JSON's ``png16``)."""
    if metric:
        return "uint16 depth in millimetres (png16_scale 0.001 m), clipped to 65535"
    return (
        "uint16 relative depth: depth = value x png16_scale, the map's own scale (its largest "
        "depth is 65535; one scale per frame for a video)"
    )


def _encode_png(array: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", array)
    if not ok:
        raise ValueError("could not encode a PNG")
    return data.tobytes()

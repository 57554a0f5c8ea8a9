"""Camera intrinsics for ``predict`` with models that need them (two-frame ManyDepth): from
``--intrinsics``, as

* ``fx,fy,cx,cy``: pixels of the input images (each image normalised by its own size);
* a ``.json`` file holding a 3x3 matrix normalised by the image size (ManyDepth's
  ``test_sequence_intrinsics.json``), as a list or under ``"K"``;
* a KITTI ``calib_cam_to_cam.txt``: camera 02's ``P_rect_02`` normalised by ``S_rect_02``;
* a store (``.zarr``): its first frame's intrinsics, normalised by its image size.

Everything becomes normalised ``(fx, fy, cx, cy)`` (x by the width, y by the height) and is
scaled to the network input in Monodepth2's convention (``K_pixels = K_norm * size``, what the
model trained with). Without ``--intrinsics`` the model's fixed training camera is used, if it
has one (:meth:`train.methods.Predictor.fixed_intrinsics`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Camera:
    """Intrinsics as given: ``normalised`` ``(fx, fy, cx, cy)``, or ``pixels`` of the input
    images (normalised per image); ``source`` says where they came from."""

    source: str
    normalised: tuple[float, float, float, float] | None = None
    pixels: tuple[float, float, float, float] | None = None

    def at(self, input_size: tuple[int, int], network_size: tuple[int, int]) -> Tensor:
        """``(4, 4)`` pixel intrinsics of the network input for an image of ``input_size``."""
        if self.normalised is not None:
            fx, fy, cx, cy = self.normalised
        else:
            assert self.pixels is not None
            h, w = input_size
            fx, fy, cx, cy = (v / s for v, s in zip(self.pixels, (w, h, w, h), strict=True))
        nh, nw = network_size
        K = torch.eye(4)
        K[0, 0], K[0, 2], K[1, 1], K[1, 2] = fx * nw, cx * nw, fy * nh, cy * nh
        return K


def parse_intrinsics(text: str | None) -> Camera | None:
    """The :class:`Camera` of a ``--intrinsics`` value (module docstring); None stays None.

    Raises:
        ValueError: a value that is none of the accepted forms, or an unreadable file.
    """
    if text is None:
        return None
    path = Path(text)
    if path.suffix == ".zarr" and path.exists():
        return _from_store(path)
    if path.suffix.lower() == ".json":
        return _from_json(path)
    if path.is_file():
        return _from_kitti(path)
    pieces = text.split(",")
    try:
        values = tuple(float(p) for p in pieces)
    except ValueError:
        values = ()
    if len(values) != 4 or min(values[:2]) <= 0:
        raise ValueError(
            f"--intrinsics {text!r}: expected fx,fy,cx,cy in pixels, a .json file, a KITTI "
            "calib_cam_to_cam.txt or a .zarr store"
        )
    return Camera(f"fx,fy,cx,cy {text} (input pixels)", pixels=values)  # type: ignore[arg-type]


def _from_json(path: Path) -> Camera:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read intrinsics JSON ({exc})") from exc
    matrix = np.asarray(data.get("K") if isinstance(data, dict) else data, dtype=float)
    if matrix.shape not in ((3, 3), (4, 4)) or matrix[0, 0] <= 0 or matrix[0, 0] > 10:
        raise ValueError(f"{path}: expected a 3x3 intrinsics matrix normalised by the image size")
    return Camera(str(path), normalised=_four(matrix))


def _from_kitti(path: Path) -> Camera:
    """``P_rect_02`` / ``S_rect_02`` of a KITTI ``key: values`` file (read here: ``train`` does
    not import the raw-data packages)."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read ({exc})") from exc
    calib = {}
    for line in lines:
        key, _, value = line.partition(":")
        try:
            calib[key.strip()] = np.array([float(v) for v in value.split()])
        except ValueError:
            continue
    P, S = calib.get("P_rect_02"), calib.get("S_rect_02")
    if P is None or S is None or P.size != 12 or S.size != 2:
        raise ValueError(f"{path}: no P_rect_02 / S_rect_02 (not a KITTI calib_cam_to_cam.txt)")
    w, h = float(S[0]), float(S[1])
    fx, fy, cx, cy = _four(P.reshape(3, 4))
    return Camera(f"{path} (camera 02)", normalised=(fx / w, fy / h, cx / w, cy / h))


def _from_store(path: Path) -> Camera:
    from pipelines.store import open_store

    store = open_store(path)
    if not store.has("intrinsics"):
        raise ValueError(f"{path}: the store has no intrinsics")
    K = np.asarray(store["intrinsics"][0, 0], dtype=float)
    h, w = store.image_size
    fx, fy, cx, cy = _four(K)
    return Camera(f"{path} (frame 0)", normalised=(fx / w, fy / h, cx / w, cy / h))


def _four(K: np.ndarray) -> tuple[float, float, float, float]:
    return float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])

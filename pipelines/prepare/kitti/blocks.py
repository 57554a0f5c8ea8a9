"""Per-block pixel work of ``prepare-kitti``: read, check and resize images; ground-truth maps.

:class:`KittiBlocks` is the block function handed to :func:`pipelines.store.runner.run_conversion`:
``blocks(block, rows)`` returns the pixel arrays of frame rows ``rows``; a block is a pure function
of the raw files, so re-running it gives the same bytes. Everything that does not need pixels
(intrinsics, baselines, timestamps, sequence and frame numbers) is computed by the caller and
written whole beside the blocks (:attr:`pipelines.store.runner.Conversion.frames`): a few zarr calls
per store instead of five per block, which saves about 1 ms of CPU per frame.

Images are PNG or JPEG (:mod:`pipelines.prepare.kitti.images` chose the file). Resizing
(``resize``): ``area`` = ``cv2.INTER_AREA`` when shrinking (pixel-area averaging, the
high-quality choice for downscaling), ``cv2.INTER_CUBIC`` when enlarging; ``lanczos`` = PIL's
``Image.resize((W, H), Image.LANCZOS)`` of the decoded file, byte for byte what monodepth2's
loader computes (``pil.open(path).convert("RGB")`` then torchvision's ``Resize`` with
``ANTIALIAS``): a JPEG is decoded by PIL itself there, an 8-bit RGB PNG (as KITTI's are) by the
fast decoder (lossless, so the same pixels). All of them map pixel centres onto pixel centres,
which is what :func:`pipelines.prepare.common.resized_intrinsics` assumes.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import imagecodecs
import numpy as np

import kitti
from pipelines.prepare.kitti.images import EXTENSIONS

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

RESIZES = ("area", "lanczos")
RESIZE_DESCRIPTIONS = {
    "area": "cv2.INTER_AREA when shrinking, cv2.INTER_CUBIC when enlarging",
    "lanczos": "PIL Image.resize((W, H), Image.LANCZOS) of the decoded file (monodepth2's)",
}
_JPEG_SUFFIXES = (".jpg", ".jpeg")
_EOI = b"\xff\xd9"  # JPEG end-of-image marker
_IEND = b"IEND"  # PNG end chunk

# DEPTHKIT_PNG=opencv decodes every PNG with OpenCV (an escape hatch, and the A/B switch).
_FAST_PNG = os.environ.get("DEPTHKIT_PNG", "") != "opencv"


def check_resize(resize: str) -> None:
    """ValueError unless ``resize`` (``--resize``) is one of :data:`RESIZES`."""
    if resize not in RESIZES:
        raise ValueError(f"--resize {resize!r} must be one of {', '.join(RESIZES)}")


def _unreadable(path: Path) -> ValueError:
    kind = "JPEG" if path.suffix.lower() in _JPEG_SUFFIXES else "PNG"
    return ValueError(f"{path}: cannot read image (missing, truncated or not a {kind})")


def _jpeg_bytes(path: Path) -> bytes:
    """The bytes of a JPEG file that ends with its end-of-image marker (a cut JPEG still
    decodes, its missing part grey, so decoders cannot be trusted to notice)."""
    try:
        data = path.read_bytes()
    except OSError:
        raise _unreadable(path) from None
    if _EOI not in data[-64:]:
        raise _unreadable(path)
    return data


def _pil_rgb(data: bytes, path: Path) -> PILImage:
    """PIL's decode of ``data`` converted to RGB, as monodepth2's ``pil_loader`` does."""
    from PIL import Image  # only the lanczos path and odd JPEGs need it

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except (OSError, ValueError, SyntaxError):
        raise _unreadable(path) from None


def read_rgb(path: Path) -> np.ndarray:
    """Decode a colour PNG or JPEG as uint8 (H, W, 3) RGB (ValueError naming the file if
    unreadable: missing, truncated, or not an image of its extension).

    8-bit RGB PNGs (every KITTI colour image) go through imagecodecs' libpng build, which
    inflates with zlib-ng; other PNGs (grey, 16-bit, palette, alpha) through OpenCV, which
    converts them. JPEGs go through imagecodecs' libjpeg-turbo (the same pixels as PIL's and
    OpenCV's decoders: ISLOW IDCT, fancy upsampling); grey or CMYK ones through PIL's RGB
    conversion. See ``benchmarks/bench_prepare_kitti.py``.
    """
    path = Path(path)
    if path.suffix.lower() in _JPEG_SUFFIXES:
        data = _jpeg_bytes(path)
        try:
            rgb = imagecodecs.jpeg8_decode(data)
        except (RuntimeError, ValueError):
            raise _unreadable(path) from None
        if rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8:
            return rgb
        return np.asarray(_pil_rgb(data, path))
    data = _png_bytes(path)
    if _FAST_PNG:
        try:
            rgb = imagecodecs.png_decode(data)
        except (RuntimeError, ValueError):  # imagecodecs reports without printing
            raise _unreadable(path) from None
        if rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8:
            return rgb
    # OpenCV's PNG decoder swaps to RGB while decoding, cheaper than a cvtColor pass afterwards.
    # It prints libpng's complaints to stderr: files that decode above (or end properly) only.
    rgb = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB)
    if rgb is None:
        raise _unreadable(path)
    return rgb


def _png_bytes(path: Path) -> bytes:
    """The bytes of a PNG file that ends with its IEND chunk (a cut file is refused here, before
    a decoder prints libpng's "Read Error" on stderr)."""
    try:
        data = path.read_bytes()
    except OSError:
        raise _unreadable(path) from None
    if _IEND not in data[-64:]:
        raise _unreadable(path)
    return data


def read_resized(
    path: Path,
    size: tuple[int, int],
    native: tuple[int, int],
    out: np.ndarray | None = None,
    resize: str = "area",
) -> np.ndarray:
    """Read a colour PNG or JPEG, check it is ``native`` (H, W), resize to ``size`` (H, W)
    with ``resize`` (``area`` or ``lanczos``, see the module docstring).

    ``out`` (uint8 (H, W, 3)), when given, receives the result without an extra copy.

    Returns:
        uint8 (H, W, 3) RGB.

    Raises:
        ValueError: naming the file, when it cannot be decoded or has another size.
    """
    path = Path(path)
    if resize == "lanczos":
        return _read_lanczos(path, size, native, out)
    rgb = read_rgb(path)
    _check_native(path, rgb.shape[:2], native)
    if rgb.shape[:2] == tuple(size):
        if out is None:
            return rgb
        out[...] = rgb
        return out
    shrink = size[0] <= native[0] and size[1] <= native[1]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return cv2.resize(rgb, (size[1], size[0]), dst=out, interpolation=interp)


def _read_lanczos(
    path: Path, size: tuple[int, int], native: tuple[int, int], out: np.ndarray | None
) -> np.ndarray:
    """``Image.resize((W, H), Image.LANCZOS)`` of the decoded file (see the module docstring)."""
    from PIL import Image

    if path.suffix.lower() in _JPEG_SUFFIXES:
        image = _pil_rgb(_jpeg_bytes(path), path)
    else:
        image = Image.fromarray(read_rgb(path))
    _check_native(path, (image.height, image.width), native)
    resized = np.asarray(image.resize((size[1], size[0]), Image.LANCZOS))
    if out is None:
        return resized
    out[...] = resized
    return out


def _check_native(path: Path, shape: tuple[int, ...], native: tuple[int, int]) -> None:
    if tuple(shape) != tuple(native):
        raise ValueError(
            f"{path}: image is {shape[1]}x{shape[0]} (WxH), the calibration's "
            f"S_rect says {native[1]}x{native[0]}"
        )


def ground_truth(root: Path, folder: str, frame: int, kind: str) -> np.ndarray:
    """Native-resolution test ground truth of camera 02: float32 (H, W) metres, 0 = none.

    ``velodyne``: ``kitti.velodyne_depth(calib, scan, cam=2, vel_depth=True)`` as monodepth2's
    ``export_gt_depth.py`` does for the Eigen split; ``improved``: the annotated-depth PNG.
    """
    if kind == "velodyne":
        calib = kitti.calib_dir(root, folder)
        scan = kitti.velodyne_path(root, folder, frame)
        return kitti.velodyne_depth(calib, scan, cam=2, vel_depth=True).astype(np.float32)
    if kind == "improved":
        return kitti.read_improved_gt(kitti.improved_gt_path(root, folder, frame))
    raise ValueError(f"unknown ground truth kind {kind!r}")


@dataclass(frozen=True, eq=False)
class KittiBlocks:
    """Block function of one KITTI store (picklable, for dask.distributed workers).

    Attributes:
        root: KITTI raw root.
        sequences: drive folders; ``sequence`` int32 (N,) indexes them, ``frame`` int32 (N,).
        sides: split sides stored as views: ``("l", "r")`` for training, ``("l",)`` for test.
        size: stored image size (H, W).
        native: int (S, V, 2) native (H, W) per sequence and view (calibration ``S_rect``).
        gt: None (training) or ``velodyne`` / ``improved``; ``gt_shape`` the padded (Hg, Wg).
        image_ext: uint8 (N, V) index into :data:`~pipelines.prepare.kitti.images.EXTENSIONS`
            of each row's image file per view (None: all PNG).
        resize: ``area`` or ``lanczos`` (see the module docstring).
        gt_rows: bool (N,) rows with ground truth (the test samples' centre rows; previous
            frames stored for multi-frame methods have none: zeros, ``gt_size`` (0, 0)); None =
            every row of a test store.
    """

    root: Path
    sequences: tuple[str, ...]
    sequence: np.ndarray
    frame: np.ndarray
    sides: tuple[str, ...]
    size: tuple[int, int]
    native: np.ndarray
    gt: str | None = None
    gt_shape: tuple[int, int] | None = None
    image_ext: np.ndarray | None = None
    resize: str = "area"
    gt_rows: np.ndarray | None = None

    def __call__(self, block: int, rows: slice) -> dict[str, np.ndarray]:
        """Pixel arrays of frame rows ``rows``: image, and for a test store gt_depth (zero
        padded) and gt_size. The per-frame metadata is written whole up front."""
        n = rows.stop - rows.start
        h, w = self.size
        image = np.empty((n, len(self.sides), h, w, 3), dtype=np.uint8)
        gt_depth = gt_size = None
        if self.gt is not None:
            assert self.gt_shape is not None
            gt_depth = np.zeros((n, *self.gt_shape), dtype=np.float32)
            gt_size = np.zeros((n, 2), dtype=np.int32)
        for i, row in enumerate(range(rows.start, rows.stop)):
            seq = int(self.sequence[row])
            folder, frame = self.sequences[seq], int(self.frame[row])
            for v, side in enumerate(self.sides):
                ext = ".png" if self.image_ext is None else EXTENSIONS[self.image_ext[row, v]]
                path = kitti.image_path(self.root, folder, frame, side, ext)
                native = (int(self.native[seq, v, 0]), int(self.native[seq, v, 1]))
                read_resized(path, self.size, native, out=image[i, v], resize=self.resize)
            has_gt = self.gt_rows is None or bool(self.gt_rows[row])
            if gt_depth is not None and gt_size is not None and has_gt:
                depth = ground_truth(self.root, folder, frame, str(self.gt))
                expected = (int(self.native[seq, 0, 0]), int(self.native[seq, 0, 1]))
                if depth.shape != expected:
                    raise ValueError(
                        f"{kitti.improved_gt_path(self.root, folder, frame)}: ground truth is "
                        f"{depth.shape[1]}x{depth.shape[0]}, camera 02 is "
                        f"{expected[1]}x{expected[0]}"
                    )
                gt_depth[i, : depth.shape[0], : depth.shape[1]] = depth
                gt_size[i] = depth.shape
        out = {"image": image}
        if gt_depth is not None and gt_size is not None:
            out["gt_depth"], out["gt_size"] = gt_depth, gt_size
        return out

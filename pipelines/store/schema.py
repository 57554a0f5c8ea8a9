"""Store schema v1: the single source of truth for array names, dtypes, shapes, chunks and codecs.

A store is one zarr v3 group per dataset split. Every array is described here by an
:class:`ArraySpec`; its shape comes from named dimensions whose sizes are fixed by a
:class:`StoreLayout` (frame count N, views V, image size H x W, ...). Dimension names double as
the xarray dimension names of :meth:`pipelines.store.Store.to_xarray`.

The frame axis is chunked (``DEFAULT_CHUNK`` frames), every other axis is whole; ``samples`` is
chunked along its own row axis. Every array, the writer's ``_done`` markers included, carries its
zarr v3 ``dimension_names``, and a complete store has consolidated metadata, so
``xarray.open_zarr(path)`` opens it with named dimensions.

Every chunk ends with a CRC-32C checksum (zarr v3's ``crc32c`` codec, after the compressor), so a
damaged chunk is an error, never other values (:mod:`pipelines.store.integrity`).

Coordinates along ``frame``: ``frame`` itself holds the global frame index 0..N-1 (the row that
``samples`` refers to; unique, the xarray index), ``sequence`` and ``frame_in_sequence`` say
where the frame comes from, ``timestamp`` when. ``image`` lists them in the CF ``coordinates``
attribute, so ``xarray.open_zarr`` and :meth:`pipelines.store.Store.to_xarray` both show them as
coordinates. Stores written before (``frame`` = the frame number inside its sequence, no
``frame_in_sequence``, no checksums) are still read: see :mod:`pipelines.store.reader`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from zarr.codecs import BloscCodec, BloscShuffle, Crc32cCodec, ZstdCodec

SCHEMA = "depthstore/1"
DATASETS = ("nyu-raw", "nyu-labeled", "kitti-raw")
DEFAULT_CHUNK = 16
SAMPLES_CHUNK = 65536
SEG_NOT_COMPUTED = 255
SEG_CLASSES = 21  # 0 = background, 1..20 = Pascal VOC classes
HINT_NOT_COMPUTED = float("nan")  # fill of hint_depth: a chunk the hints pass has not written

REQUIRED_ATTRS = ("schema", "dataset", "split", "image_size", "sequences", "complete")
OPTIONAL_ATTRS = ("camera", "source", "masks", "hints", "computed")
# Arrays a pass adds to a finished store (pipelines.passes), chunk by chunk; their fill value
# means "not computed yet". ``computed`` = {name: true} once a pass has filled every chunk.
PASS_ARRAYS = ("seg", "hint_depth", "hint_depth_flipped")
# A pass array's bookkeeping array: which settings wrote each chunk (pipelines.store.passrecord).
RECORD_PREFIX = "_written_"
WRITER_ATTR = "_writer"  # {"fingerprint", "frames_per_block", "n_blocks"}: writer bookkeeping
FAILED_ATTR = "_failed"  # {"error"}: the error that stopped the last run (pipelines.store.failures)
DONE_ARRAY = "_done"  # bool (n_blocks,), one chunk per block: True once a block is written
DONE_DIMS = ("block",)  # its dimension name (every array of a store has them, for xarray)

# Arrays every store has; the rest are present only for datasets that have them.
REQUIRED_ARRAYS = ("image", "sequence", "samples")
# Written by the writer itself: the global frame index (0..N-1) and the samples table.
WRITER_ARRAYS = ("frame", "samples")
# Coordinates along the frame axis besides ``frame`` (the index); listed in the CF
# ``coordinates`` attribute of ``image`` for xarray.
FRAME_COORDS = ("sequence", "frame_in_sequence", "timestamp")

Codec = Literal["fast", "dense", "small"]

# Sizes of the small fixed trailing dimensions.
FIXED_DIMS: dict[str, int] = {
    "channel": 3,
    "k_row": 3,
    "k_col": 3,
    "hw": 2,
    "accel_axis": 4,
    "field": 4,
}
# What the entries of some of them mean (not stored: xarray views show plain positions).
DIM_LABELS: dict[str, tuple[str, ...]] = {
    "channel": ("r", "g", "b"),
    "hw": ("height", "width"),
    "accel_axis": ("x", "y", "z", "tilt"),
    "field": ("center", "previous", "next", "view"),
}


@dataclass(frozen=True)
class ArraySpec:
    """One array of the schema: name, numpy dtype, named dimensions, codec kind, fill value."""

    name: str
    dtype: str
    dims: tuple[str, ...]
    codec: Codec
    fill_value: int | float = 0
    doc: str = ""

    @property
    def per_frame(self) -> bool:
        """True when the first axis is the frame axis (written block by block)."""
        return self.dims[0] == "frame"


ARRAYS: dict[str, ArraySpec] = {
    s.name: s
    for s in (
        ArraySpec("image", "uint8", ("frame", "view", "y", "x", "channel"), "fast", 0, "RGB"),
        ArraySpec("intrinsics", "float32", ("frame", "view", "k_row", "k_col"), "small", 0,
                  "pixel intrinsics of image"),
        ArraySpec("baseline", "float32", ("frame",), "small", 0, "stereo baseline, metres"),
        ArraySpec("depth", "float16", ("frame", "view", "y", "x"), "dense", 0,
                  "metric depth at image size, 0 = no measurement"),
        ArraySpec("gt_depth", "float32", ("frame", "gt_y", "gt_x"), "dense", 0,
                  "native-resolution ground truth, zero padded"),
        ArraySpec("gt_size", "int32", ("frame", "hw"), "small", 0, "valid (h, w) in gt_depth"),
        ArraySpec("seg", "uint8", ("frame", "view", "y", "x"), "fast", SEG_NOT_COMPUTED,
                  "DeepLabv3 class index, 255 = not computed"),
        ArraySpec("hint_depth", "float16", ("frame", "view", "y", "x"), "dense",
                  HINT_NOT_COMPUTED, "fused-SGM depth hint (0.58 W fx, baseline 0.1 units), "
                  "0 = no hint, NaN = not computed"),
        ArraySpec("hint_depth_flipped", "float16", ("frame", "view", "y", "x"), "dense",
                  HINT_NOT_COMPUTED, "the hint a flipped sample gets (depth-hints' loader flips "
                  "the full-size hint, then resizes), flipped back; 0 = no hint, NaN = not "
                  "computed"),
        ArraySpec("sequence", "int32", ("frame",), "small", 0, "index into attrs['sequences']"),
        ArraySpec("frame", "int32", ("frame",), "small", 0,
                  "global frame index 0..N-1 (the row samples refer to; the xarray index)"),
        ArraySpec("frame_in_sequence", "int32", ("frame",), "small", 0,
                  "frame number inside its sequence"),
        ArraySpec("timestamp", "float64", ("frame",), "small", 0, "seconds"),
        ArraySpec("accel", "float32", ("frame", "accel_axis"), "small", 0,
                  "NYU accelerometer x, y, z, tilt"),
        ArraySpec("samples", "int32", ("sample", "field"), "small", -1,
                  "(center, previous, next, view) rows; -1 = neighbour absent"),
    )
}  # fmt: skip


@dataclass(frozen=True)
class StoreLayout:
    """Sizes fixing every array shape: N frames, M samples, V views, H x W images, Hg x Wg GT."""

    n_frames: int
    n_samples: int
    views: int
    image_size: tuple[int, int]
    gt_size: tuple[int, int] | None = None
    chunk: int = DEFAULT_CHUNK

    def dim_sizes(self) -> dict[str, int]:
        """Size of every named dimension (``gt_y``/``gt_x`` only when ``gt_size`` is set)."""
        sizes = {
            "frame": self.n_frames,
            "sample": self.n_samples,
            "view": self.views,
            "y": self.image_size[0],
            "x": self.image_size[1],
        }
        if self.gt_size is not None:
            sizes["gt_y"], sizes["gt_x"] = self.gt_size
        sizes.update(FIXED_DIMS)
        return sizes

    def shape(self, name: str) -> tuple[int, ...]:
        """Shape of array ``name`` under this layout; ValueError for gt arrays without gt_size."""
        sizes = self.dim_sizes()
        try:
            return tuple(sizes[d] for d in ARRAYS[name].dims)
        except KeyError as e:
            raise ValueError(f"array {name!r} needs dimension {e.args[0]!r} (gt_size?)") from e

    def chunks(self, name: str) -> tuple[int, ...]:
        """Chunk shape: ``chunk`` frames (or SAMPLES_CHUNK rows), every other axis whole."""
        shape = self.shape(name)
        first = self.chunk if ARRAYS[name].per_frame else min(SAMPLES_CHUNK, max(1, shape[0]))
        return (first, *shape[1:])


def compressors(codec: Codec) -> tuple[BloscCodec | ZstdCodec | Crc32cCodec, ...]:
    """zarr v3 bytes-to-bytes chain for a codec kind (images/masks fast, depth dense, small zstd),
    each followed by a CRC-32C checksum of the compressed chunk."""
    if codec == "fast":
        first: BloscCodec | ZstdCodec = BloscCodec(
            cname="lz4", clevel=5, shuffle=BloscShuffle.shuffle
        )
    elif codec == "dense":
        first = ZstdCodec(level=5)
    else:
        first = ZstdCodec(level=3)
    return (first, Crc32cCodec())


def has_checksums(codecs: tuple[object, ...]) -> bool:
    """True when an array's codec chain (``array.metadata.codecs``) ends chunks with a CRC-32C
    (stores written before checksums have none)."""
    return any(isinstance(c, Crc32cCodec) for c in codecs)


def array_spec(name: str) -> ArraySpec:
    """The spec of ``name``; ValueError listing the schema's arrays for an unknown name."""
    if name not in ARRAYS:
        raise ValueError(f"unknown store array {name!r}; schema {SCHEMA} has {sorted(ARRAYS)}")
    return ARRAYS[name]


def numpy_dtype(name: str) -> np.dtype:
    """numpy dtype of array ``name``."""
    return np.dtype(array_spec(name).dtype)


def pass_done(name: str, computed: dict[str, object]) -> bool:
    """Whether array ``name`` must have every chunk: not a pass array (or its ``_written_``
    record) unless the store's ``computed`` attribute says that pass finished."""
    base = name.removeprefix(RECORD_PREFIX)
    return base not in PASS_ARRAYS or computed.get(base) is True

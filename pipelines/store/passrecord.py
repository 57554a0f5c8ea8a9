"""Which settings wrote each chunk of a pass array (``seg``, ``hint_depth``, ...).

A pass (:mod:`pipelines.passes.store_pass`) records what it computes with in a store attribute
(its *tag*: ``attrs["masks"]``, ``attrs["hints"]``) and, per frame chunk of each array it fills,
the id of the tag that wrote the chunk, in a bookkeeping array ``_written_<array>``: uint32
``(n_chunks,)``, one zarr chunk per element (concurrent workers never write one object),
dimension name ``frame_chunk``. Values:

* :data:`NOT_WRITTEN` (0): the chunk holds the fill value;
* :func:`tag_id` of the store's current tag: written with the current settings;
* anything else (:data:`INVALIDATED`, or the id of an older tag): old values. ``--overwrite``
  marks every written chunk :data:`INVALIDATED` after recording the new tag and before writing,
  so a killed ``--overwrite`` leaves a store whose mix of old and new chunks is visible:
  :func:`check_pass_records` (``info --verify``) reports it, :func:`pass_refusal` (training)
  refuses it naming the pass, and the pass itself recomputes exactly the chunks not current.

Stores filled before the record existed have no ``_written_*`` array; the helpers then fall
back on the values (a chunk holding only the fill value is not computed).

:func:`hint_deviations` reads the hints pass's record against depth-hints' own (for the
training header of runs with hints).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr

from pipelines.store.reader import Store
from pipelines.store.schema import ARRAYS, PASS_ARRAYS, RECORD_PREFIX, compressors

RECORD_DIMS = ("frame_chunk",)
NOT_WRITTEN = 0
INVALIDATED = 0xFFFFFFFF
#: The store attribute holding the tag of the pass that fills each pass array.
PASS_ATTRS = {"seg": "masks", "hint_depth": "hints", "hint_depth_flipped": "hints"}
#: What each pass array holds, in words.
PASS_WORDS = {
    "seg": "masks",
    "hint_depth": "depth hints",
    "hint_depth_flipped": "depth hints of flipped samples",
}
#: The command that (re)fills each pass array, for messages.
PASS_COMMANDS = {
    "masks": "cli.py masks STORE",
    "hints": "cli.py hints STORE --kitti-root ROOT",
}


def tag_id(tag: Mapping[str, Any]) -> int:
    """A uint32 id of a pass tag (CRC-32 of its canonical JSON), never 0 nor INVALIDATED."""
    text = json.dumps(tag, sort_keys=True, separators=(",", ":"), default=str)
    value = zlib.crc32(text.encode())
    return 1 if value in (NOT_WRITTEN, INVALIDATED) else value


def record_name(name: str) -> str:
    """The bookkeeping array of pass array ``name``: ``_written_<name>``."""
    return f"{RECORD_PREFIX}{name}"


def ensure_record(group: zarr.Group, name: str, n_chunks: int) -> zarr.Array:
    """The record of ``name`` in ``group`` (created all NOT_WRITTEN when absent)."""
    found = group.get(record_name(name))
    if found is not None:
        if found.shape != (n_chunks,):
            raise ValueError(f"{record_name(name)}: {found.shape[0]} chunks, expected {n_chunks}")
        return found
    return group.create_array(
        record_name(name), shape=(n_chunks,), chunks=(1,), dtype="uint32",
        fill_value=NOT_WRITTEN, compressors=compressors("small"), dimension_names=RECORD_DIMS,
    )  # fmt: skip


def read_record(store: Store, name: str) -> np.ndarray | None:
    """uint32 ``(n_chunks,)`` ids of the tags that wrote each chunk of ``name``, or None for a
    store without a record (filled before records existed, or never)."""
    found = store.group.get(record_name(name))
    return None if found is None else np.asarray(found[...], dtype=np.uint32)


def current_tag(store: Store, name: str) -> dict[str, Any] | None:
    """The tag the store records for the pass that fills ``name`` (None when none)."""
    tag = store.attrs.get(PASS_ATTRS[name])
    return dict(tag) if isinstance(tag, Mapping) else None


@dataclass(frozen=True)
class RecordStatus:
    """Chunks of one pass array by state (bool ``(n_chunks,)`` each) and their frame counts."""

    name: str
    current: np.ndarray  # written with the store's current tag
    stale: np.ndarray  # written with other (older) settings, or invalidated by --overwrite
    frames: np.ndarray  # int (n_chunks,) frames in each chunk

    @property
    def pass_name(self) -> str:
        return PASS_ATTRS[self.name]

    @property
    def pending_frames(self) -> int:
        """Frames of chunks not written with the current settings."""
        return int(self.frames[~self.current].sum())

    @property
    def stale_frames(self) -> int:
        return int(self.frames[self.stale].sum())


def record_status(store: Store, name: str) -> RecordStatus | None:
    """The chunks of pass array ``name`` by state, from its record (None without one)."""
    record = read_record(store, name)
    if record is None:
        return None
    tag = current_tag(store, name)
    wanted = -1 if tag is None else tag_id(tag)
    starts = np.arange(len(record)) * store.chunk
    frames = np.minimum(starts + store.chunk, store.n_frames) - starts
    current = record == wanted
    return RecordStatus(name, current, ~current & (record != NOT_WRITTEN), frames)


def pending_frames(store: Store, name: str) -> int:
    """Frames whose ``name`` (a pass array) is not computed with the store's current settings:
    every frame when the array is absent; from the record when there is one; else 0 when the
    pass finished (``attrs["computed"][name]``), or the count of frames holding only the fill
    value (the array is read)."""
    if name not in PASS_ARRAYS:
        raise ValueError(f"{name!r} is not filled by a pass; pass arrays are {PASS_ARRAYS}")
    if not store.has(name):
        return store.n_frames
    status = record_status(store, name)
    if status is not None:
        return status.pending_frames
    if store.attrs.get("computed", {}).get(name) is True:
        return 0
    import dask.array as da

    x = da.from_zarr(store[name])
    fill = ARRAYS[name].fill_value
    empty = da.isnan(x) if isinstance(fill, float) and np.isnan(fill) else x == fill
    return int(empty.all(axis=tuple(range(1, x.ndim))).sum().compute())


def pass_refusal(store: Store, name: str, needed_by: str) -> str | None:
    """One line saying why training must not read ``name`` yet (None when it may): absent,
    being rewritten (old and new values mixed), or not computed for every frame."""
    attr = PASS_ATTRS[name]
    how = f"run `{PASS_COMMANDS[attr]}`"
    if not store.has(name):
        return f"{store.path}: {needed_by} needs {name}, which the store lacks; {how} first"
    status = record_status(store, name)
    if status is not None and status.stale.any():
        return (
            f"{store.path}: the {attr} pass is rewriting {name} ({status.stale_frames} of "
            f"{store.n_frames} frames still hold values of other settings than "
            f"attrs['{attr}']); finish it ({how}) before training"
        )
    pending = pending_frames(store, name)
    if pending:
        return (
            f"{store.path}: {pending} of {store.n_frames} frames have no {PASS_WORDS[name]} yet "
            f"(the {attr} pass was interrupted); {how} to finish it"
        )
    return None


def check_pass_records(store: Store) -> list[str]:
    """``info --verify`` problems of the pass records: chunks written with other settings than
    the store's tag (a killed ``--overwrite``), a pass marked finished whose chunks are not all
    current, a record without its tag."""
    problems = []
    computed = store.attrs.get("computed", {})
    for name in PASS_ARRAYS:
        status = record_status(store, name) if store.has(name) else None
        if status is None:
            continue
        attr = status.pass_name
        if current_tag(store, name) is None:
            problems.append(f"{name}: chunk records without the '{attr}' attribute")
            continue
        if status.stale.any():
            problems.append(
                f"{name}: {int(status.stale.sum())} of {len(status.stale)} chunks hold values "
                f"of other settings than attrs['{attr}'] (an interrupted --overwrite: old and "
                f"new values mixed); finish with `{PASS_COMMANDS[attr]}`"
            )
        elif computed.get(name) is True and not status.current.all():
            problems.append(
                f"{name}: marked computed but {int((~status.current).sum())} chunk(s) were "
                f"never written; run `{PASS_COMMANDS[attr]}`"
            )
    return problems


REFERENCE_HINT_SIZE = [320, 1024]


def hint_deviations(store: Store) -> list[str]:
    """How the store's depth hints differ from what depth-hints trains on (one line each; for
    the training header of a run with ``hints``): its loader resizes the 320x1024 hint of the
    ``.jpg`` pair with ``cv2.INTER_NEAREST``, a flipped sample's after flipping it."""
    tag = store.attrs.get("hints") or {}
    if not store.has("hint_depth") or not isinstance(tag, dict):
        return []
    out = []
    if tag.get("resize") is None:
        out.append(
            "hints resized by nearest pixel centres and flipped after the resize (reference: "
            "cv2.INTER_NEAREST, a flipped sample's hint flipped before it; `cli.py hints STORE "
            "--kitti-root ROOT --overwrite`)"
        )
    elif not store.has("hint_depth_flipped"):
        out.append("flipped samples get the flipped resized hint (reference: flip, then resize)")
    size = tag.get("hint_size")
    if size is not None and list(size) != REFERENCE_HINT_SIZE:
        out.append(f"hints matched at {size[0]}x{size[1]} (reference: 320x1024)")
    images = tag.get("images")
    if images not in (None, "jpg"):
        out.append(f"hints from {images} files (reference: the .jpg files)")
    return out

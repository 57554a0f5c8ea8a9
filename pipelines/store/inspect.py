"""Human-readable description and consistency checks of a schema v1 store (``cli.py info``)."""

from __future__ import annotations

import json

import numpy as np
import zarr

from pipelines.store import passrecord
from pipelines.store.integrity import chunk_problems
from pipelines.store.reader import Store
from pipelines.store.schema import (
    ARRAYS,
    DATASETS,
    DONE_ARRAY,
    DONE_DIMS,
    REQUIRED_ARRAYS,
    REQUIRED_ATTRS,
    SCHEMA,
    SEG_CLASSES,
    SEG_NOT_COMPUTED,
    has_checksums,
    pass_done,
)


def describe(store: Store) -> str:
    """Multi-line summary: dataset, split, sizes, sequences, samples, completeness, provenance."""
    seqs = store.sequences
    shown = ", ".join(seqs[:8]) + (f", ... ({len(seqs)} in all)" if len(seqs) > 8 else "")
    lines = [
        f"store      {store.path}",
        f"schema     {store.attrs.get('schema')}",
        f"dataset    {store.dataset}   split {store.split}",
        f"frames     {store.n_frames} x {store.views} view(s) at {store.image_size[0]}x"
        f"{store.image_size[1]}, {store.chunk} frames per chunk",
        f"samples    {store.n_samples}",
        f"sequences  {len(seqs)}: {shown}",
        f"complete   {'yes' if store.complete else 'NO'}",
    ]
    truth = ground_truth_line(store)
    if truth:
        lines.append(f"truth      {truth}")
    if store.legacy or not all(has_checksums(a.metadata.codecs) for a in store.arrays.values()):
        lines.append("checksums  no (written before checksums: damage cannot be detected)")
    lines.append("arrays")
    for name, arr in store.arrays.items():
        size = f"{arr.nbytes_stored() / 2**20:.2f} MiB stored" if _local(store) else ""
        lines.append(f"  {name:<18}{arr.dtype!s:<8} {tuple(arr.shape)!s:<26} {size}")
    for attr in ("masks", "hints", "computed"):
        if attr in store.attrs:
            lines.append(f"{attr:<11}{json.dumps(store.attrs[attr])}")
    for key, value in store.source.items():
        lines.append(f"source     {key}: {value}")
    return "\n".join(lines)


def ground_truth_line(store: Store) -> str:
    """Which ground truth a store holds (``gt_depth``), in words; empty when it has none."""
    gt = store.attrs.get("ground_truth")
    if not store.has("gt_depth") and not gt:
        return ""
    if not isinstance(gt, dict):
        return "gt_depth (origin not recorded)"
    kind, protocol = gt.get("kind", "?"), gt.get("protocol", "?")
    words = {
        "velodyne": "velodyne scans projected to camera 02 (vel_depth=True, as monodepth2's "
        "export_gt_depth.py for the Eigen split)",
        "improved": "KITTI's improved (annotated depth) maps",
        "nyu-labeled": "the labeled set's in-painted depths",
    }
    return f"{words.get(kind, kind)}; protocol {protocol}"


def verify(
    store: Store, *, deep: bool = True, require_complete: bool = True, chunks: bool | None = None
) -> list[str]:
    """Problems found in ``store`` (empty when consistent), one line each.

    Checks attributes, array shapes, dtypes and dimension names against the schema (every
    array, ``_done`` included, must name its dimensions), the consolidated metadata of a
    complete store (present, and listing the arrays as they are), the frame index, done
    markers, that every chunk exists (``chunks``, default: for a complete store; arrays a pass
    has not finished excepted), sample rows (indices in range, neighbours in the center's
    sequence) and, when ``deep``, reads every chunk (a damaged one, checksum or codec, is a
    line naming the array and the chunk) and checks array contents: no NaN / negative /
    infinite depth, ``gt_size`` within ``gt_depth``, seg in 0..20 or 255, ``hint_depth``
    (two-view KITTI, with its ``hints`` record) finite, >= 0 and computed for every frame (NaN =
    not computed), ``sequence`` indices in range. ``require_complete`` reports a store not
    marked complete.
    """
    problems = _check_attrs(store, require_complete) + _check_arrays(store)
    problems += _check_metadata(store)
    whole = store.complete if chunks is None else chunks
    found, damaged, lost = chunk_problems(_chunked_arrays(store, whole), read=deep, missing=whole)
    problems += found
    # arrays that cannot be read (a missing chunk reads as fill values until the store is complete)
    bad = damaged | (lost if store.complete else set())
    problems += _check_index(store, bad)
    done = store.done_blocks
    if done is not None and not done.all():
        problems.append(f"{int((~done).sum())} of {done.size} blocks not written")
    if store.has("sequence") and store.has("samples") and not {"sequence", "samples"} & bad:
        problems += _check_samples(store)
    problems += _check_hints(store) + passrecord.check_pass_records(store)
    if deep:
        problems += _check_values(store, bad)
    return problems


def _chunked_arrays(store: Store, whole: bool) -> dict[str, zarr.Array]:
    """The arrays (on-disk names) whose chunks are checked: all but ``_done``; with ``whole``
    (every chunk must exist) not the pass arrays a pass has not finished either."""
    computed = store.attrs.get("computed", {})
    on_disk = {name: arr for name, arr in store.group.arrays() if name != DONE_ARRAY}
    return {name: arr for name, arr in on_disk.items() if not whole or pass_done(name, computed)}


def _check_index(store: Store, bad: set[str]) -> list[str]:
    """The global frame index (``frame``) is 0..N-1 (stores written before it have none)."""
    if store.legacy or "frame" in bad:
        return []
    index = store.group.get("frame")
    if index is None:
        return ["array 'frame' (the frame index) missing"]
    values = np.asarray(index[...])
    if values.shape != (store.n_frames,) or (values != np.arange(store.n_frames)).any():
        return [f"frame: the frame index is not 0..{store.n_frames - 1}"]
    return []


def is_fill(values: np.ndarray, name: str) -> bool:
    """True when every value equals the fill value of array ``name`` (NaN-aware): for the pass
    arrays (``seg``, ``hint_depth``) a frame or chunk not computed yet."""
    fill = ARRAYS[name].fill_value
    if isinstance(fill, float) and np.isnan(fill):
        return bool(np.isnan(values).all())
    return bool((values == fill).all())


def pending_frames(store: Store, name: str) -> int:
    """Frames whose ``name`` (a pass array: ``seg``, ``hint_depth``) is not computed yet with the
    store's current settings (see :func:`pipelines.store.passrecord.pending_frames`)."""
    return passrecord.pending_frames(store, name)


def _check_hints(store: Store) -> list[str]:
    """``hint_depth`` belongs to two-view KITTI stores and comes with its ``hints`` record;
    ``hint_depth_flipped`` comes with ``hint_depth``."""
    if store.has("hint_depth_flipped") and not store.has("hint_depth"):
        return ["hint_depth_flipped without hint_depth"]
    if not store.has("hint_depth"):
        return []
    problems = []
    if store.dataset != "kitti-raw" or store.views != 2:
        problems.append(f"hint_depth in a {store.dataset} store with {store.views} view(s)")
    if "hints" not in store.attrs:
        problems.append("hint_depth without the 'hints' attribute (what computed it)")
    return problems


def _check_attrs(store: Store, require_complete: bool) -> list[str]:
    problems = [f"attribute {a!r} missing" for a in REQUIRED_ATTRS if a not in store.attrs]
    if store.attrs.get("schema") != SCHEMA:
        problems.append(f"schema is {store.attrs.get('schema')!r}, expected {SCHEMA!r}")
    if store.attrs.get("dataset") not in DATASETS:
        problems.append(f"dataset {store.attrs.get('dataset')!r} is not one of {DATASETS}")
    if require_complete and not store.complete:
        problems.append("store is not complete (interrupted or still being written)")
    return problems


def _check_arrays(store: Store) -> list[str]:
    problems = [f"array {n!r} missing" for n in REQUIRED_ARRAYS if not store.has(n)]
    layout = store.layout
    chunk = store.chunk
    for name, arr in store.arrays.items():
        spec = ARRAYS[name]
        if arr.dtype != np.dtype(spec.dtype):
            problems.append(f"{name}: dtype {arr.dtype}, expected {spec.dtype}")
        expected = layout.shape(name)
        if tuple(arr.shape) != expected:
            problems.append(f"{name}: shape {tuple(arr.shape)}, expected {expected}")
        if spec.per_frame and arr.chunks[0] != chunk:
            problems.append(f"{name}: {arr.chunks[0]} frames per chunk, expected {chunk}")
    return problems


def _check_metadata(store: Store) -> list[str]:
    """Dimension names of every array; consolidated metadata of a complete store."""
    problems = []
    found = dict(store.group.arrays())
    known = {**{name: spec.dims for name, spec in ARRAYS.items()}, DONE_ARRAY: DONE_DIMS}
    for name, arr in sorted(found.items()):
        dims = getattr(arr.metadata, "dimension_names", None)
        expected = known.get(name)
        if not dims or None in dims:
            problems.append(f"{name}: no dimension names (xarray cannot open the store)")
        elif expected is not None and tuple(dims) != expected:
            problems.append(f"{name}: dimension names {tuple(dims)}, expected {expected}")
    if store.complete:
        problems += _check_consolidated(store.group, found)
    return problems


def _check_consolidated(group: zarr.Group, found: dict[str, zarr.Array]) -> list[str]:
    try:
        listed = zarr.open_group(
            store=group.store, path=group.path, mode="r", use_consolidated=True
        ).metadata.consolidated_metadata
    except ValueError:
        listed = None
    if listed is None:
        return ["consolidated metadata missing (a complete store has it)"]
    have = {k: v for k, v in listed.metadata.items() if v.node_type == "array" and "/" not in k}
    stale = sorted(set(found) ^ set(have))
    stale += sorted(
        n for n in set(found) & set(have) if have[n].to_dict() != found[n].metadata.to_dict()
    )
    return [f"consolidated metadata is stale for {stale}"] if stale else []


def _check_samples(store: Store) -> list[str]:
    samples = store.samples
    n, views = store.n_frames, store.views
    problems: list[str] = []
    center, view = samples[:, 0], samples[:, 3]
    bad_center = (center < 0) | (center >= n)
    if bad_center.any():
        problems.append(_rows(f"sample center outside 0..{n - 1}", bad_center))
    bad = (view < 0) | (view >= views)
    if bad.any():
        problems.append(_rows(f"sample view outside 0..{views - 1}", bad))
    sequence = np.asarray(store["sequence"][...])
    safe_center = np.clip(center, 0, max(n - 1, 0))
    for col, what in ((1, "previous"), (2, "next")):
        idx = samples[:, col]
        bad = (idx < -1) | (idx >= n)
        if bad.any():
            problems.append(_rows(f"sample {what} outside -1..{n - 1}", bad))
        present = (idx >= 0) & (idx < n) & ~bad_center
        if n:
            other = present & (sequence[np.where(present, idx, 0)] != sequence[safe_center])
            if other.any():
                problems.append(_rows(f"sample {what} frame in another sequence", other))
    return problems


def _check_values(store: Store, bad: set[str] | None = None) -> list[str]:
    """Value checks of the arrays without bad chunks (``bad``: their on-disk names)."""
    import dask
    import dask.array as da

    skip = bad or set()
    lazy = {name: x for name, x in store.to_dask().items() if store[name].path not in skip}
    checks: dict[str, da.Array] = {}
    for name in ("depth", "gt_depth"):
        if name in lazy:
            x = lazy[name]
            checks[f"{name}: NaN values"] = da.isnan(x).sum()
            checks[f"{name}: infinite values"] = da.isinf(x).sum()
            checks[f"{name}: negative values"] = (x < 0).sum()
    for name in ("hint_depth", "hint_depth_flipped"):
        if name not in lazy:
            continue
        x = lazy[name]
        nan = da.isnan(x)
        frame_nan = nan.all(axis=(1, 2, 3))
        # a chunk the hints pass has not written yet reads as NaN
        pending = f"{name}: frames not computed, finish with `hints STORE --kitti-root ROOT`"
        checks[pending] = frame_nan.sum()
        checks[f"{name}: NaN values in computed frames"] = (
            nan.sum(axis=(1, 2, 3)) * ~frame_nan
        ).sum()
        checks[f"{name}: infinite values"] = da.isinf(x).sum()
        checks[f"{name}: negative values"] = (x < 0).sum()
    if "seg" in lazy:
        s = lazy["seg"]
        checks[f"seg: values outside 0..{SEG_CLASSES - 1} and {SEG_NOT_COMPUTED}"] = (
            (s >= SEG_CLASSES) & (s != SEG_NOT_COMPUTED)
        ).sum()
    if "sequence" in lazy:
        q = lazy["sequence"]
        checks[f"sequence: index outside 0..{len(store.sequences) - 1}"] = (
            (q < 0) | (q >= len(store.sequences))
        ).sum()
    if "gt_size" in lazy and "gt_depth" in lazy:
        g, (hg, wg) = lazy["gt_size"], store["gt_depth"].shape[1:]
        checks[f"gt_size: outside 0..{hg} x 0..{wg}"] = (
            (g[:, 0] < 0) | (g[:, 0] > hg) | (g[:, 1] < 0) | (g[:, 1] > wg)
        ).sum()
    counts = dask.compute(*checks.values())
    return [f"{what} ({int(c)})" for what, c in zip(checks, counts, strict=True) if c]


def _rows(what: str, mask: np.ndarray) -> str:
    rows = np.flatnonzero(mask)
    shown = ", ".join(map(str, rows[:5])) + (" ..." if rows.size > 5 else "")
    return f"{what}: {rows.size} row(s), e.g. {shown}"


def _local(store: Store) -> bool:
    return "://" not in store.path


def info_report(path_or_url: str, check: bool, quick: bool = False) -> tuple[str, int]:
    """Text of ``cli.py info`` and its problem count: description, then (``check``) the
    problems found by :func:`verify` and one line saying how many, or ``ok``. ``quick`` reads
    no chunk (metadata, chunk files present, samples only).
    """
    from pipelines.store.reader import open_store

    store = open_store(path_or_url)
    text = describe(store)
    if not check:
        return text, 0
    problems = verify(store, deep=not quick)
    lines = [f"problem: {p}" for p in problems]
    lines.append(f"{len(problems)} problem(s) found" if problems else "ok")
    return text + "\n" + "\n".join(lines), len(problems)

"""Damaged and missing chunks: reads that fail with the array and the chunk named.

Every array of a store ends each chunk with a CRC-32C (:func:`pipelines.store.schema.compressors`),
so a flipped or cut byte fails the checksum instead of decoding to other values. Readers get
:class:`CheckedArray` s (what :func:`pipelines.store.open_store` hands out): a read that fails,
through zarr, dask or a DataLoader worker, raises :class:`StoreDataError`, one line naming the
store, the array, the chunk key and its frames.

A complete store has every chunk of its arrays (the writer writes empty chunks too), so a missing
chunk file is data lost, not fill values: :class:`CheckedStore` wraps the zarr store of a complete
store and raises :class:`MissingChunkError` when a chunk of a checksummed array is absent (arrays a
pass has not finished are exempt: their missing chunks mean "not computed yet"). Stores written
before checksums keep zarr's behaviour (fill values); ``info --verify`` lists missing chunks of
every store (:func:`chunk_problems`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import zarr
from zarr.abc.store import ByteRequest
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import WrapperStore

from pipelines.store.schema import ARRAYS

SHOWN_PER_ARRAY = 20  # problem lines per array in chunk_problems, then a count


class StoreDataError(ValueError):
    """A chunk cannot be read: damaged (checksum mismatch, undecodable) or missing.

    Raised again in the main process when a DataLoader worker raised it: torch then passes its
    whole traceback as the message, which is cut back to the one line (plus the worker).
    """

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


class MissingChunkError(StoreDataError):
    """A chunk file of a complete store is missing."""


def _one_line(message: str) -> str:
    head, _, rest = message.partition("\n")
    if not (head.startswith("Caught ") and rest.startswith("Original Traceback")):
        return message
    last = [line for line in rest.splitlines() if line.strip()][-1]
    text = last.partition(": ")[2] or last
    worker = head.split(" ", 2)[-1].rstrip(".")  # "in DataLoader worker process 0"
    return f"{text} ({worker})"


class CheckedStore(WrapperStore[Any]):
    """A zarr store that refuses to read a missing chunk of the arrays in ``strict``.

    ``location`` names the store in messages; ``strict`` holds array paths (e.g. ``"image"``)
    and is filled once the store's metadata is read (:func:`pipelines.store.reader.read_store`).
    """

    def __init__(self, store: Any, location: str = "", strict: Iterable[str] = ()) -> None:
        super().__init__(store)
        self.location = location
        self.strict = set(strict)

    def _with_store(self, store: Any) -> CheckedStore:
        return type(self)(store, self.location, self.strict)

    def _refuse(self, key: str) -> None:
        array, sep, _ = key.rpartition("/c/")
        if sep and array in self.strict:
            raise MissingChunkError(f"{self.location}: array {array!r} chunk {key} is missing")

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        value = await self._store.get(key, prototype, byte_range)
        if value is None and self.strict:
            self._refuse(key)
        return value


class CheckedArray(zarr.Array):
    """A zarr array whose failed reads raise :class:`StoreDataError` naming the chunk.

    On a failure the selection is read again chunk by chunk along the first axis to find the
    chunk at fault; an error no chunk reproduces (a bad selection) propagates unchanged.
    """

    def __getitem__(self, selection: Any) -> Any:
        try:
            return super().__getitem__(selection)
        except StoreDataError as e:
            located = self._locate(selection)
            raise (located or e) from None
        except (ValueError, RuntimeError, OSError, TypeError) as e:
            located = self._locate(selection)
            if located is None:
                raise
            raise located from e

    def read_chunk(self, index: int) -> StoreDataError | None:
        """Read chunk ``index`` along the first axis; the error it raises, or None when fine."""
        rows = self._chunk_rows(index)
        try:
            super().__getitem__(slice(rows.start, rows.stop))
        except (StoreDataError, ValueError, RuntimeError, OSError, TypeError) as e:
            return self.describe(index, e)
        return None

    def describe(self, index: int, error: BaseException) -> StoreDataError:
        """The one-line error of chunk ``index`` failing with ``error``."""
        rows = self._chunk_rows(index)
        name = self.path.rpartition("/")[2]
        spec = ARRAYS.get(name)
        unit = "frames" if spec is None or spec.per_frame else "rows"
        key = self.path + "/" + self.metadata.encode_chunk_key(self._chunk_coords(index))
        span = f"{unit} {rows.start}..{rows.stop - 1}"
        where = f"{_location(self)}: array {name!r} chunk {key} ({span})"
        fix = "restore the store from a copy or write it again"
        if isinstance(error, MissingChunkError):
            return MissingChunkError(f"{where} is missing from a complete store; {fix}")
        if "checksum" in str(error).lower():
            reason = "checksum mismatch"
        else:
            reason = f"{type(error).__name__}: {' '.join(str(error).split())[:160]}"
        return StoreDataError(f"{where} is damaged ({reason}); {fix}")

    def _chunk_rows(self, index: int) -> range:
        size = self.chunks[0]
        return range(index * size, min((index + 1) * size, self.shape[0]))

    def _chunk_coords(self, index: int) -> tuple[int, ...]:
        return (index,) + (0,) * (len(self.shape) - 1)

    def _locate(self, selection: Any) -> StoreDataError | None:
        if not self.shape:
            return None
        rows = _first_axis(selection, self.shape[0])
        size = self.chunks[0]
        for index in sorted({r // size for r in rows}):
            error = self.read_chunk(index)
            if error is not None:
                return error
        return None


def checked(array: zarr.Array) -> CheckedArray:
    """``array`` as a :class:`CheckedArray` (same metadata, store and configuration)."""
    return array if isinstance(array, CheckedArray) else CheckedArray(array.async_array)


def _location(array: zarr.Array) -> str:
    store = array.store_path.store
    return str(getattr(store, "location", "") or array.store_path)


def _first_axis(selection: Any, n: int) -> range:
    """The rows of the first axis a basic selection touches (all of them when unclear)."""
    first = selection[0] if isinstance(selection, tuple) and selection else selection
    if isinstance(first, slice):
        start, stop, _ = first.indices(n)
        return range(start, max(start, stop))
    if isinstance(first, int) or hasattr(first, "__index__"):
        i = int(first)
        i = i + n if i < 0 else i
        return range(i, i + 1) if 0 <= i < n else range(0)
    return range(n)


def stored_keys(array: zarr.Array) -> set[str]:
    """The chunk keys of ``array`` present in its store (relative to the array)."""
    from zarr.core.sync import sync  # zarr's own bridge from its async store API

    store, prefix = array.store_path.store, array.store_path.path + "/"

    async def listing() -> set[str]:
        return {key[len(prefix) :] async for key in store.list_prefix(prefix)}

    return sync(listing())


def missing_chunks(array: zarr.Array) -> list[int]:
    """First-axis indices of the chunks of ``array`` with no file in the store."""
    have = stored_keys(array)
    n = array.cdata_shape[0] if array.shape else 0
    tail = (0,) * (len(array.shape) - 1)
    return [i for i in range(n) if array.metadata.encode_chunk_key((i, *tail)) not in have]


def chunk_problems(
    arrays: dict[str, zarr.Array], *, read: bool, missing: bool = True, workers: int | None = None
) -> tuple[list[str], set[str], set[str]]:
    """Problem lines of the chunks of ``arrays`` (name -> array), the names of the arrays with
    a damaged chunk and those with a missing one: with ``missing`` every chunk must exist; with
    ``read`` every chunk present must decode (checksum included).

    At most :data:`SHOWN_PER_ARRAY` lines per array, then one with the count of the rest.
    Chunks are read on ``workers`` threads (default: all cores).
    """
    problems: list[str] = []
    damaged: set[str] = set()
    lost: set[str] = set()
    for name, array in arrays.items():
        view = checked(array)
        absent = missing_chunks(array) if missing else []
        found = [str(view.describe(i, MissingChunkError(""))) for i in absent]
        lost.update([name] if absent else [])
        if read:
            errors = _read_all(view, workers, exclude=set(absent))
            damaged.update([name] if errors else [])
            found += errors
        if found:
            problems += [_short(p) for p in found[:SHOWN_PER_ARRAY]]
            if len(found) > SHOWN_PER_ARRAY:
                problems.append(f"{name}: ... and {len(found) - SHOWN_PER_ARRAY} more bad chunks")
    return problems, damaged, lost


def _read_all(array: CheckedArray, workers: int | None, exclude: set[int]) -> list[str]:
    """Problem lines of the chunks of ``array`` that fail to read (``exclude``: skipped)."""
    n = array.cdata_shape[0] if array.shape else 0
    todo = [i for i in range(n) if i not in exclude]
    with ThreadPoolExecutor(max(1, workers or os.cpu_count() or 1)) as pool:
        return [str(e) for e in pool.map(array.read_chunk, todo) if e is not None]


def _short(problem: str) -> str:
    """A problem line without the store location (``info`` names the store once)."""
    text = str(problem)
    _, sep, rest = text.partition(": array ")
    return f"array {rest}" if sep else text


__all__ = [
    "CheckedArray",
    "CheckedStore",
    "MissingChunkError",
    "StoreDataError",
    "checked",
    "chunk_problems",
    "missing_chunks",
    "stored_keys",
]

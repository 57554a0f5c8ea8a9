"""What the streaming loader hands to the trainer: :class:`Sample` and :class:`Batch` of tensors.

Images stay uint8 on the CPU side. They are shaped ``(..., 3, H, W)`` (CHW) but laid out in memory
as HWC (``torch.channels_last``), because the store holds HWC pixels and a permuted view costs
nothing; the float conversion, resizing and augmentation happen on the training device
(:mod:`pipelines.loader.augment`).

Absent things follow two rules: a field the loader was not asked for (or the store does not have)
is ``None``; a temporal neighbour that a sample lacks (``-1`` in the store's ``samples`` table)
is an all-zero image with ``has_prev`` / ``has_next`` False for that sample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import TypeVar

import torch
from torch import Tensor

IMAGE_FIELDS = ("target", "prev", "next", "stereo")

T = TypeVar("T", "Sample", "Batch")


@dataclass
class Sample:
    """One training or test sample (one row of the store's ``samples`` table).

    Attributes:
        index: sample row in ``samples``.
        row: frame row of the centre (target) frame.
        side: view of the target (0 = left camera 02, 1 = right camera 03; 0 for NYU).
        target: uint8 ``(3, H, W)`` RGB of the target frame (HWC memory).
        K: float32 ``(3, 3)`` pixel intrinsics of the target's view at the store image size.
        baseline: float32 ``()`` stereo baseline in metres (0 for NYU).
        prev, next: uint8 ``(3, H, W)`` temporal neighbours of the same view, or None when not
            requested; zeros when the sample has no such neighbour.
        has_prev, has_next: bool ``()``, False where the neighbour is absent (None when the
            frame was not requested).
        stereo: uint8 ``(3, H, W)`` the other view at the same frame (KITTI), or None.
        seg: uint8 ``(H, W)`` DeepLabv3 class of the target's view (255 = not computed), or None.
        depth: float16 ``(H, W)`` metric depth of the target's view (NYU raw), 0 = none, or None.
        hint_depth: float16 ``(H, W)`` Depth Hints' fused-SGM hint of the target's view (KITTI,
            training units of the 0.1 stereo baseline), 0 = none, or None.
        hint_depth_flipped: float16 ``(H, W)`` the hint depth-hints' loader gives the target
            when it is flipped (flip, then resize; stored flipped back), or None when the store
            lacks it (hints computed before it existed) or hints were not asked for.
        gt_depth: float32 ``(Hg, Wg)`` native ground truth (zero padded), or None.
        gt_size: int32 ``(2,)`` valid (height, width) inside ``gt_depth``, or None.
    """

    index: Tensor
    row: Tensor
    side: Tensor
    target: Tensor
    K: Tensor
    baseline: Tensor
    prev: Tensor | None = None
    next: Tensor | None = None
    has_prev: Tensor | None = None
    has_next: Tensor | None = None
    stereo: Tensor | None = None
    seg: Tensor | None = None
    depth: Tensor | None = None
    hint_depth: Tensor | None = None
    hint_depth_flipped: Tensor | None = None
    gt_depth: Tensor | None = None
    gt_size: Tensor | None = None


@dataclass
class Batch(Sample):
    """B samples stacked: every :class:`Sample` field with a leading batch axis.

    ``index``, ``row``, ``side`` are int64 ``(B,)``; images uint8 ``(B, 3, H, W)`` (HWC memory);
    ``K`` float32 ``(B, 3, 3)``; ``baseline`` float32 ``(B,)``; ``has_prev`` / ``has_next`` bool
    ``(B,)``; ``seg`` uint8 ``(B, H, W)``; ``depth``, ``hint_depth`` and ``hint_depth_flipped``
    float16 ``(B, H, W)``; ``gt_depth`` float32 ``(B, Hg, Wg)``; ``gt_size`` int32 ``(B, 2)``.

    ``pin_memory()`` makes ``DataLoader(pin_memory=True)`` work; ``to(device)`` moves every tensor.
    """

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = True) -> Batch:
        """A copy on ``device`` (images keep their HWC memory layout)."""
        return _map(self, lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self, device: torch.device | str | None = None) -> Batch:
        """A copy in page-locked memory (called by the DataLoader's pin-memory thread)."""
        if device is None:
            return _map(self, lambda t: t.pin_memory())
        return _map(self, lambda t: t.pin_memory(device))  # older torch signature

    def head(self, n: int) -> Batch:
        """The first ``n`` samples (views, no copy)."""
        out = _map(self, lambda t: t[:n])
        if getattr(self, "_buffer", None) is not None:
            out._buffer, out._lease = self._buffer, self._lease  # still one shared buffer
        return out

    def __reduce__(self) -> tuple:
        """Pickle as one shared buffer plus a view layout when built in a recycled buffer
        (DataLoader workers, see :mod:`pipelines.loader.shm`); field by field otherwise."""
        buffer = getattr(self, "_buffer", None)
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        if buffer is None:
            return (_batch_from_fields, (values,))
        from pipelines.loader.shm import pack

        return (_batch_from_buffer, (buffer, pack(buffer, values), self._lease))

    def sample(self, i: int) -> Sample:
        """Sample ``i`` of the batch (views, no copy)."""
        values = {f.name: getattr(self, f.name) for f in fields(Sample)}
        return Sample(**{k: None if v is None else v[i] for k, v in values.items()})


def _batch_from_fields(values: dict) -> Batch:
    return Batch(**values)


def _batch_from_buffer(buffer: Tensor, layout: list, lease: tuple | None) -> Batch:
    from pipelines.loader.shm import unpack

    return Batch(**unpack(buffer, layout, lease))


def _map(data: T, fn: Callable[[Tensor], Tensor]) -> T:
    """Apply ``fn`` to every tensor field; images go through their contiguous HWC view."""
    out = {}
    for f in fields(data):
        value = getattr(data, f.name)
        if value is None:
            out[f.name] = None
        elif f.name in IMAGE_FIELDS:
            out[f.name] = fn(value.movedim(-3, -1)).movedim(-1, -3)
        else:
            out[f.name] = fn(value)
    return replace(data, **out)


def image_tensor(shape: Sequence[int], shared: bool) -> Tensor:
    """Empty uint8 ``(*shape[:-3], 3, H, W)`` with HWC memory, given ``shape = (..., H, W, 3)``.

    ``shared`` allocates in shared memory (inside DataLoader workers), so sending the tensor to
    the main process costs no copy.
    """
    return empty_tensor(shape, torch.uint8, shared).movedim(-1, -3)


def empty_tensor(shape: Sequence[int], dtype: torch.dtype, shared: bool) -> Tensor:
    """Empty contiguous tensor, in shared memory when ``shared``."""
    if not shared:
        return torch.empty(tuple(shape), dtype=dtype)
    numel = 1
    for s in shape:
        numel *= int(s)
    storage = torch.empty(0, dtype=dtype)._typed_storage()._new_shared(numel)
    return torch.empty(0, dtype=dtype).set_(storage).view(tuple(shape))


def collate(samples: Sequence[Sample]) -> Batch:
    """Stack samples into a :class:`Batch` (in shared memory inside DataLoader workers).

    Every sample must have the same fields set (the loader guarantees it).
    """
    if not samples:
        raise ValueError("collate: no samples")
    shared = torch.utils.data.get_worker_info() is not None
    out = {}
    for f in fields(Sample):
        values = [getattr(s, f.name) for s in samples]
        if values[0] is None:
            out[f.name] = None
            continue
        first = values[0]
        if f.name in IMAGE_FIELDS:
            h, w = first.shape[-2:]
            stacked = image_tensor((len(values), h, w, 3), shared)
        else:
            stacked = empty_tensor((len(values), *first.shape), first.dtype, shared)
        for i, v in enumerate(values):
            stacked[i] = v
        out[f.name] = stacked
    return Batch(**out)

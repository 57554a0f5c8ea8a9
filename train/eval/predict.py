"""Depth maps of images, folders of images and videos (``cli.py predict``).

One model does everything: :class:`~train.eval.depth_model.DepthModel` wraps the method's
:class:`~train.methods.Predictor` (``method.predictor(nets)``) and applies its fixed scale factor
(``Scaling(median=False)``: depth x factor, e.g. x5.4 for monodepth2 stereo units), so its output
is metres where the method knows the scale; a median-scaled (mono) method's output is relative
depth, left as the network gives it. ``export`` writes this same module.

Per input the picture is resized (bilinear, antialiased when shrinking; PIL LANCZOS where the
method's predictor asks for it, ``Predictor.input_resize``: Lite-Mono's) to the network size
(``--height/--width``, default the checkpoint's training size), batched on the device, predicted
(optionally flip post-processed: :func:`train.eval.metrics.post_process_disparity` on
disparities, as evaluation does) and resized back to the input's resolution in disparity
(bilinear, as evaluation resizes to the ground truth). Written per image ``NAME``:

* ``NAME_depth.npy``: float32 (H, W) depth, input resolution (metres or relative units);
* ``NAME_depth.png``: 16-bit PNG, depth = value x ``png16_scale`` (in ``NAME_depth.json``):
  metric depth in millimetres (scale 0.001, clipped to 65535, the KITTI/NYU convention);
  relative depth scaled to the map's own range (its largest depth = 65535, so a map keeps about
  16 bits whatever its units: :func:`png16_scale`);
* ``NAME_colour.png``: magma picture of the disparity (bright = near); ``value_range``
  (``"MIN:MAX"`` in metres) fixes its scale so that video frames are comparable: refused for a
  relative-depth model, whose units are not metres (its pictures would be one flat colour);
* ``NAME_depth.json``: units, scaling rule, the PNG scale, sizes, checkpoint.

Images given directly are written to ``out/``; images of a folder ``F`` to ``out/F/``; frames of a
video ``V.mp4`` to ``out/V/NNNNNN_*`` with one ``out/V_depth.json`` (``png16_scale`` then lists
one scale per frame for relative depth). Inputs are checked before anything is written (missing,
unknown kind, unreadable image header, video that cannot be opened, two inputs with one output
name); every file is written atomically (:func:`train.eval.files.atomic_bytes`), and an input's
``NAME_depth.json`` only after all of its maps, so an image that fails to decode mid-run stops
the run with one line after writing the maps of the images before it, and a full disk is one
line naming the file: no companion without its maps, no temporary file left behind.

Two-frame models (ManyDepth, :class:`~train.eval.depth_model.PairDepthModel`) predict each
picture from it and the one before: a video's frames, a folder's images (sorted) and the images
given directly (in the order given) are sequences; the first of each has no previous frame and
gets a black one, as the reference's evaluation does (counted in the summary). Intrinsics come
from ``--intrinsics`` (:mod:`train.eval.intrinsics`) or the model's fixed training camera.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import Tensor

from pipelines.loader import resize_bilinear
from train.eval.depth_maps import Writer, png16_note
from train.eval.depth_model import DepthModel, PairDepthModel, depth_model
from train.eval.files import check_output_path
from train.eval.inputs import flip_arguments
from train.eval.intrinsics import Camera, parse_intrinsics
from train.eval.media import (
    Item,
    UnreadableInput,
    collect_inputs,
    frame_count,
    frames,
)
from train.eval.metrics import post_process_disparity


def check_network_size(height: int, width: int) -> tuple[int, int]:
    """``(height, width)`` when both are multiples of 32 and at least 64 (ValueError otherwise)."""
    if height % 32 or width % 32 or min(height, width) < 64:
        raise ValueError(
            f"size {height}x{width}: height and width must be multiples of 32 and at least 64"
        )
    return height, width


def parse_range(text: str | None) -> tuple[float, float] | None:
    """``"MIN:MAX"`` (metres, 0 < MIN < MAX) -> ``(MIN, MAX)``; None stays None."""
    if text is None:
        return None
    low, sep, high = text.partition(":")
    try:
        lo, hi = float(low), float(high)
    except ValueError:
        lo = hi = float("nan")
    if not sep or not 0 < lo < hi:
        raise ValueError(f"--range {text!r}: expected MIN:MAX with 0 < MIN < MAX, e.g. 1:80")
    return lo, hi


@dataclass
class PredictSummary:
    """What :func:`predict_files` wrote."""

    out: str
    inputs: int
    maps: int
    units: str
    network_size: tuple[int, int]
    seconds: float
    post_process: bool = False
    written: list[str] = field(default_factory=list)
    missing_previous: int | None = None

    def __str__(self) -> str:
        rate = self.maps / max(self.seconds, 1e-9)
        post = ", flip post-processed" if self.post_process else ""
        if self.missing_previous is not None:
            post += f", {self.missing_previous} first frame(s) with a black previous frame"
        h, w = self.network_size
        units = "metres" if self.units == "metres" else "relative depth (see NAME_depth.json)"
        return (
            f"{self.maps} depth maps from {self.inputs} inputs in {self.seconds:.1f} s "
            f"({rate:.1f} maps/s) at {h}x{w}{post}; {units}; written to {self.out}"
        )


@dataclass
class _Pending:
    item: Item
    frame: int | None
    rgb: np.ndarray
    previous: np.ndarray | None = None


def check_range_units(limits: tuple[float, float] | None, model: DepthModel) -> None:
    """Refuse ``--range`` (metres) for a model whose depth is relative (module docstring)."""
    if limits is not None and not model.metric:
        raise ValueError(
            f"--range {limits[0]:g}:{limits[1]:g} is in metres, but this model predicts relative "
            "depth (median-scaled, no unit; its pictures would be one flat colour): leave "
            "--range out (each picture coloured over its own range), or use a metric model "
            "(e.g. trained with the stereo camera)"
        )


@torch.no_grad()
def predict_files(
    checkpoint: str | Path,
    inputs: list[str | Path],
    out: str | Path,
    *,
    height: int | None = None,
    width: int | None = None,
    post_process: bool = False,
    value_range: str | None = None,
    device: str | None = None,
    batch_size: int = 8,
    progress: bool = True,
    echo: Callable[[str], object] | None = None,
    intrinsics: str | None = None,
    overrides: Sequence[str] = (),
) -> PredictSummary:
    """``cli.py predict``: depth maps of images, image folders and videos (module docstring).
    ``echo`` receives the notes (the CPU used because no CUDA device is available);
    ``intrinsics``: ``--intrinsics`` for two-frame models; ``overrides``: ``--set key=value``.

    Raises:
        ValueError: a bad input, checkpoint, size, range or device (one line, before writing);
            an input that cannot be decoded (after the maps of the inputs before it).
        OSError: a write failed (disk full: naming the file and the space it needed).
    """
    from train.eval.evaluate import load_checkpoint_method, pick_device

    start = time.perf_counter()
    items = collect_inputs(inputs)
    limits = parse_range(value_range)
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, not {batch_size}")
    camera = parse_intrinsics(intrinsics)
    out = check_output_path(out, "folder")
    dev = pick_device(device, echo)
    method, nets = load_checkpoint_method(checkpoint, dev, overrides)
    size = check_network_size(height or method.config.height, width or method.config.width)
    model = depth_model(method.predictor(nets))
    pair = isinstance(model, PairDepthModel)
    if pair and camera is None and model.predictor.fixed_intrinsics(*size) is None:
        raise ValueError("this model needs camera intrinsics: give --intrinsics")
    check_range_units(limits, model)
    out.mkdir(parents=True, exist_ok=True)
    writer = Writer(out, limits, model.metric)
    base = {
        "checkpoint": str(checkpoint),
        "method": method.config.method,
        "preset": method.config.preset,
        **model.describe(),
        "png16": png16_note(model.metric),
        "colour": "magma of 1 / depth, bright = near",
        "colour_range": list(limits) if limits else None,
        "network_size": list(size),
        "post_process": post_process,
    }
    if pair:
        base["previous_frame"] = "the frame before in its video / folder / argument list"
        base["intrinsics"] = camera.source if camera else "the model's training camera"
    total = sum(1 if i.kind == "image" else frame_count(i.path) for i in items)
    pending: list[_Pending] = []
    bar = Progress(
        TextColumn("predict"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not progress,
    )

    predict_batch = Flush(model, size, dev, post_process, writer, camera)

    def flush() -> int:
        done = predict_batch(pending)
        bar.advance(task, done)
        pending.clear()
        writer.companions()
        return done

    maps = missing = 0
    sequence, previous = None, None
    with bar:
        task = bar.add_task("predict", total=total or None)
        for item in items:
            count, input_size = 0, None
            key = str(item.path) if item.kind == "video" else item.subdir
            if key != sequence:
                sequence, previous = key, None
            try:
                for frame, rgb in frames(item):
                    pending.append(_Pending(item, frame, rgb, previous))
                    missing += int(previous is None)
                    previous = rgb if pair else None
                    count, input_size = count + 1, rgb.shape[:2]
                    if len(pending) == batch_size:
                        maps += flush()
            except UnreadableInput:
                flush()  # the maps and companions of the inputs before it
                raise
            info = {**base, "input": str(item.path), "input_size": list(input_size or ())}
            if item.kind == "video":
                info |= {"frames": count, "maps": f"{item.name}/NNNNNN_depth.npy"}
            writer.finished(item, info)
        maps += flush()
    return PredictSummary(
        out=str(out),
        inputs=len(items),
        maps=maps,
        units=str(model.describe()["units"]),
        network_size=size,
        seconds=time.perf_counter() - start,
        post_process=post_process,
        written=writer.written,
        missing_previous=missing if pair else None,
    )


@dataclass
class Flush:
    """Predicts one batch of pending pictures and writes their maps (``__call__`` returns how
    many)."""

    model: DepthModel
    size: tuple[int, int]
    device: torch.device
    post_process: bool
    writer: Writer
    camera: Camera | None = None

    def image(self, rgb: np.ndarray) -> Tensor:
        return network_image(rgb, self.size, self.device, self.model.predictor.input_resize)

    def arguments(self, pending: list[_Pending]) -> tuple[Tensor, ...]:
        x = torch.cat([self.image(p.rgb) for p in pending])
        if not isinstance(self.model, PairDepthModel):
            return (x,)
        black = torch.zeros_like(x[:1])
        prev = [black if p.previous is None else self.image(p.previous) for p in pending]
        if self.camera is None:
            K = self.model.predictor.fixed_intrinsics(*self.size).expand(len(pending), 4, 4)
        else:
            K = torch.stack([self.camera.at(p.rgb.shape[:2], self.size) for p in pending])
        return torch.cat(prev), x, K.to(self.device)

    def __call__(self, pending: list[_Pending]) -> int:
        if not pending:
            return 0
        arguments = self.arguments(pending)
        depth = self.model(*arguments)[:, 0].float().cpu().numpy()
        disp = 1.0 / depth
        if self.post_process:
            mirrored = flip_arguments(self.model.predictor, arguments)
            flipped = self.model(*mirrored)[:, 0].float().cpu().numpy()[..., ::-1]
            disp = post_process_disparity(disp, 1.0 / flipped).astype(np.float32)
        for p, d in zip(pending, disp, strict=True):
            h, w = p.rgb.shape[:2]
            full = cv2.resize(np.ascontiguousarray(d), (w, h), interpolation=cv2.INTER_LINEAR)
            self.writer.maps(p.item, p.frame, 1.0 / full, full)
        return len(pending)


def network_image(
    rgb: np.ndarray, size: tuple[int, int], device: torch.device, resize: str = "bilinear"
) -> Tensor:
    """uint8 ``(H, W, 3)`` RGB -> float ``(1, 3, *size)`` in [0, 1] on ``device``: resized
    bilinearly (antialiased), or with ``resize="lanczos"`` by PIL on the uint8 picture."""
    if resize == "lanczos" and tuple(rgb.shape[:2]) != tuple(size):
        rgb = np.array(Image.fromarray(rgb).resize(size[::-1], Image.Resampling.LANCZOS))
    x = torch.from_numpy(np.ascontiguousarray(rgb)).to(device).permute(2, 0, 1)[None]
    return resize_bilinear(x.float().div(255.0).contiguous(), size)

"""Depth maps of images, folders of images and videos (``cli.py predict``).

One model does everything: :class:`~train.eval.depth_model.DepthModel` wraps the method's
:class:`~train.methods.Predictor` (``method.predictor(nets)``) and applies its fixed scale factor
(``Scaling(median=False)``: depth x factor, e.g. x5.4 for monodepth2 stereo units), so its output
is metres where the method knows the scale; a median-scaled (mono) method's output is relative
depth, left as the network gives it. ``export`` writes this same module.

Per input the picture is resized (bilinear, antialiased when shrinking) to the network size
(``--height/--width``, default the checkpoint's training size), batched on the device, predicted
(optionally flip post-processed: :func:`train.eval.metrics.post_process_disparity` on
disparities, as evaluation does) and resized back to the input's resolution in disparity
(bilinear, as evaluation resizes to the ground truth). Written per image ``NAME``:

* ``NAME_depth.npy``: float32 (H, W) depth, input resolution (metres or relative units);
* ``NAME_depth.png``: 16-bit PNG, depth x 1000 (millimetres when metric), clipped to 65535;
* ``NAME_colour.png``: magma picture of the disparity (bright = near); ``value_range``
  (``"MIN:MAX"`` in depth units) fixes its scale so that video frames are comparable;
* ``NAME_depth.json``: units, scaling rule, sizes, checkpoint.

Images given directly are written to ``out/``; images of a folder ``F`` to ``out/F/``; frames of a
video ``V.mp4`` to ``out/V/NNNNNN_*`` with one ``out/V_depth.json``.

Two-frame models (ManyDepth, :class:`~train.eval.depth_model.PairDepthModel`) predict each
picture from it and the one before: a video's frames, a folder's images (sorted) and the images
given directly (in the order given) are sequences; the first of each has no previous frame and
gets a black one, as the reference's evaluation does (counted in the summary). Intrinsics come
from ``--intrinsics`` (:mod:`train.eval.intrinsics`) or the model's fixed training camera.

Inputs are checked before anything is written (missing, unknown kind, unreadable image header,
video that cannot be opened, two inputs with one output name); files are written atomically
(temporary name, then rename), so an image that fails to decode mid-run stops the run with one
line and leaves the maps already written intact.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import Tensor

from pipelines.loader import resize_bilinear, resolve_device
from train.eval.colormap import colorize
from train.eval.depth_model import DepthModel, PairDepthModel, depth_model
from train.eval.inputs import flip_arguments
from train.eval.intrinsics import Camera, parse_intrinsics
from train.eval.metrics import post_process_disparity

__all__ = ["DepthModel", "PairDepthModel", "check_network_size", "predict_files"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
PNG_SCALE = 1000.0  # 16-bit PNG: depth x 1000 (millimetres for metric depth)


def check_network_size(height: int, width: int) -> tuple[int, int]:
    """``(height, width)`` when both are multiples of 32 and at least 64 (ValueError otherwise)."""
    if height % 32 or width % 32 or min(height, width) < 64:
        raise ValueError(
            f"size {height}x{width}: height and width must be multiples of 32 and at least 64"
        )
    return height, width


def parse_range(text: str | None) -> tuple[float, float] | None:
    """``"MIN:MAX"`` (depth units, 0 < MIN < MAX) -> ``(MIN, MAX)``; None stays None."""
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


@dataclass(frozen=True)
class Item:
    """One input: an image or a video, and where its outputs go (``out/subdir/name...``)."""

    path: Path
    kind: str  # "image" or "video"
    subdir: str
    name: str

    def json_path(self, out: Path) -> Path:
        return out / self.subdir / f"{self.name}_depth.json"

    def map_stem(self, out: Path, frame: int | None) -> Path:
        if self.kind == "video":
            return out / self.name / f"{frame:06d}"
        return out / self.subdir / self.name


def collect_inputs(paths: list[str | Path]) -> list[Item]:
    """Images, the images of folders (sorted, not recursive) and videos, checked before any
    output is written (ValueError naming the first bad input)."""
    items: list[Item] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise ValueError(f"{path}: folder holds no PNG or JPEG images")
            items += [_image(p, path.name) for p in images]
        elif not path.is_file():
            raise ValueError(f"{path}: no such file or folder")
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            items.append(_image(path, ""))
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            if _frame_count(path) is None:
                raise ValueError(f"{path}: cannot open this video")
            items.append(Item(path, "video", "", path.stem))
        else:
            kinds = ", ".join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)
            raise ValueError(f"{path}: not an image or a video ({kinds})")
    if not items:
        raise ValueError("no inputs given")
    seen: dict[Path, Path] = {}
    for item in items:
        key = item.json_path(Path("."))
        if key in seen:
            raise ValueError(f"{seen[key]} and {item.path} would both write {key}: rename one")
        seen[key] = item.path
    return items


def _image(path: Path, subdir: str) -> Item:
    if not cv2.haveImageReader(str(path)):
        raise ValueError(f"{path}: unreadable image (not a PNG or JPEG file)")
    return Item(path, "image", subdir, path.stem)


def _frame_count(path: Path) -> int | None:
    """Frames a video claims to have (0 when unknown); None when it cannot be opened."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return None
        return max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
    finally:
        capture.release()


def frames(item: Item) -> Iterator[tuple[int | None, np.ndarray]]:
    """``(frame number or None, RGB uint8 (H, W, 3))`` of an image or of every video frame."""
    if item.kind == "image":
        bgr = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{item.path}: unreadable image (cannot be decoded)")
        yield None, np.ascontiguousarray(bgr[:, :, ::-1])
        return
    capture = cv2.VideoCapture(str(item.path))
    try:
        index = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            yield index, np.ascontiguousarray(bgr[:, :, ::-1])
            index += 1
        if index == 0:
            raise ValueError(f"{item.path}: video has no readable frames")
    finally:
        capture.release()


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
        return (
            f"{self.maps} depth maps from {self.inputs} inputs in {self.seconds:.1f} s "
            f"({rate:.1f} maps/s) at {h}x{w}{post}; depth in {self.units}; written to {self.out}"
        )


@dataclass
class _Pending:
    item: Item
    frame: int | None
    rgb: np.ndarray
    previous: np.ndarray | None = None  # two-frame models: the frame before (None: black)


class Writer:
    """Writes the outputs of one prediction run (see the module docstring)."""

    def __init__(self, out: Path, value_range: tuple[float, float] | None) -> None:
        self.out = out
        self.value_range = value_range
        self.written: list[str] = []

    def maps(self, stem: Path, depth: np.ndarray, disp: np.ndarray) -> None:
        stem.parent.mkdir(parents=True, exist_ok=True)
        npy = stem.with_name(stem.name + "_depth.npy")
        buffer = io.BytesIO()
        np.save(buffer, depth.astype(np.float32), allow_pickle=False)
        _atomic_bytes(npy, buffer.getvalue())
        png16 = np.clip(np.round(depth * PNG_SCALE), 0, 65535).astype(np.uint16)
        _atomic_bytes(stem.with_name(stem.name + "_depth.png"), _encode_png(png16))
        if self.value_range is None:
            picture = colorize(disp)
        else:
            lo, hi = self.value_range
            picture = colorize(disp, valid=np.isfinite(disp), vmin=1.0 / hi, vmax=1.0 / lo)
        _atomic_bytes(stem.with_name(stem.name + "_colour.png"), _encode_png(picture[:, :, ::-1]))
        self.written.append(str(npy))

    def companion(self, item: Item, info: dict[str, object]) -> None:
        path = item.json_path(self.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_bytes(path, (json.dumps(info, indent=2) + "\n").encode())


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
    intrinsics: str | None = None,
    overrides: Sequence[str] = (),
) -> PredictSummary:
    """``cli.py predict``: depth maps of images, image folders and videos (module docstring);
    ``intrinsics``: ``--intrinsics`` for two-frame models; ``overrides``: ``--set key=value``.

    Raises:
        ValueError: a bad input, checkpoint, size, range or device (one line, before writing).
    """
    from train.eval.evaluate import load_checkpoint_method

    start = time.perf_counter()
    items = collect_inputs(inputs)
    limits = parse_range(value_range)
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, not {batch_size}")
    camera = parse_intrinsics(intrinsics)
    dev = resolve_device(device)
    method, nets = load_checkpoint_method(checkpoint, dev, overrides)
    size = check_network_size(height or method.config.height, width or method.config.width)
    model = depth_model(method.predictor(nets))
    pair = isinstance(model, PairDepthModel)
    if pair and camera is None and model.predictor.fixed_intrinsics(*size) is None:
        raise ValueError("this model needs camera intrinsics: give --intrinsics")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    writer = Writer(out, limits)
    base = {
        "checkpoint": str(checkpoint),
        "method": method.config.method,
        "preset": method.config.preset,
        **model.describe(),
        "png16": f"depth x {PNG_SCALE:g} as uint16 (millimetres when metric), clipped to 65535",
        "colour": "magma of 1 / depth, bright = near",
        "colour_range": list(limits) if limits else None,
        "network_size": list(size),
        "post_process": post_process,
    }
    if pair:
        base["previous_frame"] = "the frame before in its video / folder / argument list"
        base["intrinsics"] = camera.source if camera else "the model's training camera"
    total = sum(1 if i.kind == "image" else (_frame_count(i.path) or 0) for i in items)
    pending: list[_Pending] = []
    maps = missing = 0
    sequence, previous = None, None
    flush = Flush(model, size, dev, post_process, writer, camera)
    bar = Progress(
        TextColumn("predict"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not progress,
    )
    with bar:
        task = bar.add_task("predict", total=total or None)
        for item in items:
            count, input_size = 0, None
            key = str(item.path) if item.kind == "video" else item.subdir
            if key != sequence:
                sequence, previous = key, None
            for frame, rgb in frames(item):
                pending.append(_Pending(item, frame, rgb, previous))
                missing += int(previous is None)
                previous = rgb if pair else None
                count, input_size = count + 1, rgb.shape[:2]
                if len(pending) == batch_size:
                    maps += flush(pending)
                    bar.advance(task, len(pending))
                    pending.clear()
            info = {**base, "input": str(item.path), "input_size": list(input_size or ())}
            if item.kind == "video":
                info |= {"frames": count, "maps": f"{item.name}/NNNNNN_depth.npy"}
            writer.companion(item, info)
        maps += flush(pending)
        bar.advance(task, len(pending))
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

    def arguments(self, pending: list[_Pending]) -> tuple[Tensor, ...]:
        x = torch.cat([network_image(p.rgb, self.size, self.device) for p in pending])
        if not isinstance(self.model, PairDepthModel):
            return (x,)
        black = torch.zeros_like(x[:1])
        prev = [
            black if p.previous is None else network_image(p.previous, self.size, self.device)
            for p in pending
        ]
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
            self.writer.maps(p.item.map_stem(self.writer.out, p.frame), 1.0 / full, full)
        return len(pending)


def network_image(rgb: np.ndarray, size: tuple[int, int], device: torch.device) -> Tensor:
    """uint8 ``(H, W, 3)`` RGB -> float ``(1, 3, *size)`` in [0, 1] on ``device``."""
    x = torch.from_numpy(rgb).to(device).permute(2, 0, 1)[None].float().div(255.0)
    return resize_bilinear(x.contiguous(), size)


def _encode_png(array: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", array)
    if not ok:
        raise ValueError("could not encode a PNG")
    return data.tobytes()


def _atomic_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)

"""The inputs of ``cli.py predict``: images, folders of images and videos, checked before any
output is written (:func:`collect_inputs`), and their pictures decoded one by one
(:func:`frames`), with the media libraries' own stderr kept off the terminal."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from train.eval.files import quiet_stderr

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


class UnreadableInput(ValueError):
    """An input that passed the checks before the run but cannot be decoded."""


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
            frame_count(path)  # raises when the video cannot be opened
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


def frame_count(path: Path) -> int:
    """Frames a video claims to have (0 when unknown).

    Raises:
        ValueError: OpenCV cannot open it (naming the file and FFmpeg's reason, whose own
            stderr lines are kept off the terminal).
    """
    with quiet_stderr() as said:
        capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            reason = said.last_line()
            raise ValueError(f"{path}: cannot open this video" + (f" ({reason})" if reason else ""))
        return max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
    finally:
        capture.release()


def frames(item: Item) -> Iterator[tuple[int | None, np.ndarray]]:
    """``(frame number or None, RGB uint8 (H, W, 3))`` of an image or of every video frame
    (the video decoder's stderr is kept off the terminal: a bad video is one error line)."""
    if item.kind == "image":
        with quiet_stderr():  # libpng / libjpeg warnings: the error below says it
            bgr = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise UnreadableInput(f"{item.path}: unreadable image (cannot be decoded)")
        yield None, np.ascontiguousarray(bgr[:, :, ::-1])
        return
    sink = tempfile.TemporaryFile(mode="w+b")
    with quiet_stderr(sink) as said:
        capture = cv2.VideoCapture(str(item.path))
    try:
        index = 0
        while True:
            with quiet_stderr(sink) as said:
                ok, bgr = capture.read()
            if not ok:
                break
            yield index, np.ascontiguousarray(bgr[:, :, ::-1])
            index += 1
        if index == 0:
            reason = said.last_line()
            detail = f" ({reason})" if reason else ""
            raise UnreadableInput(f"{item.path}: video has no readable frames{detail}")
    finally:
        capture.release()
        sink.close()

"""Which file holds each KITTI colour image: ``<frame>.png`` or ``<frame>.jpg``.

monodepth2's README converts every KITTI PNG to JPEG (quality 92, 4:2:0 chroma) and deletes the
PNGs, so most users' trees hold only JPEGs; monodepth2 and FeatDepth train and evaluate on them.
``prepare-kitti`` reads either, per file: ``--image-ext auto`` (the default) takes the PNG when
there is one and the JPEG otherwise; ``png`` / ``jpg`` accept only that extension (a frame in the
other one counts as missing). Nothing here reads pixels: the choice comes from one directory
listing per image folder, and the plan keeps it per stored frame and view (:data:`EXTENSIONS`
codes), so the block function opens exactly the files the split check saw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import kitti

EXTENSIONS = (".png", ".jpg")  # codes 0 and 1 of the plan's extension table
IMAGE_EXT_OPTIONS = ("auto", "png", "jpg")


def check_image_ext(option: str) -> None:
    """ValueError unless ``option`` (``--image-ext``) is one of :data:`IMAGE_EXT_OPTIONS`."""
    if option not in IMAGE_EXT_OPTIONS:
        raise ValueError(f"--image-ext {option!r} must be one of {', '.join(IMAGE_EXT_OPTIONS)}")


class ImageFinder:
    """The extension of each colour image, from the names listed in its folder.

    Args:
        names: folder (str) -> the file names in it (empty when the folder is missing).
        option: ``auto``, ``png`` or ``jpg`` (see the module docstring).
    """

    def __init__(self, names: Callable[[str], frozenset[str]], option: str = "auto") -> None:
        check_image_ext(option)
        self._names = names
        self._codes = (0, 1) if option == "auto" else (EXTENSIONS.index(f".{option}"),)
        self._majority: dict[str, int] = {}

    def code(self, folder: str, frame: int) -> int:
        """Index into :data:`EXTENSIONS` of the file holding ``frame``, or -1 when none does."""
        names = self._names(folder)
        for code in self._codes:
            if kitti.frame_file(frame, EXTENSIONS[code]) in names:
                return code
        return -1

    def name(self, folder: str, frame: int) -> str:
        """The file name of ``frame``: the one found, else the name a missing file is reported
        by (the extension most of the folder's images have, PNG in an empty folder)."""
        code = self.code(folder, frame)
        if code < 0:
            code = self._codes[0] if len(self._codes) == 1 else self._folder_majority(folder)
        return kitti.frame_file(frame, EXTENSIONS[code])

    def _folder_majority(self, folder: str) -> int:
        found = self._majority.get(folder)
        if found is None:
            names = self._names(folder)
            counts = [sum(n.endswith(ext) for n in names) for ext in EXTENSIONS]
            found = self._majority[folder] = int(np.argmax(counts))
        return found


@dataclass(frozen=True)
class ImageSummary:
    """The image files a store is made from: how many of each extension, and the drives that
    hold both kinds (a tree half converted to JPEG: each frame is read as it is)."""

    counts: dict[str, int]
    mixed_drives: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """``png``, ``jpg`` or ``mixed``."""
        used = [ext.lstrip(".") for ext, n in self.counts.items() if n]
        return used[0] if len(used) == 1 else "mixed"

    def __str__(self) -> str:
        text = ", ".join(f"{n:,} {ext}" for ext, n in self.counts.items() if n)
        if self.mixed_drives:
            shown = ", ".join(self.mixed_drives[:3])
            more = len(self.mixed_drives) - 3
            text += (
                f" (both kinds in {len(self.mixed_drives)} drive(s): {shown}"
                + (f" and {more} more" if more > 0 else "")
                + "; each frame read as it is)"
            )
        return f"images: {text}"

    def attrs(self) -> dict[str, Any]:
        """The store's ``source.images`` provenance entry."""
        return {
            "ext": self.kind,
            "files": {ext: int(n) for ext, n in self.counts.items() if n},
            "mixed_drives": list(self.mixed_drives),
        }


def summarize(sequences: Sequence[str], sequence: np.ndarray, codes: np.ndarray) -> ImageSummary:
    """:class:`ImageSummary` of a plan's extension table ``codes`` (int (N, V)) whose rows
    belong to drives ``sequences[sequence[row]]``."""
    counts = {ext: int(np.count_nonzero(codes == c)) for c, ext in enumerate(EXTENSIONS)}
    mixed = []
    for s, folder in enumerate(sequences):
        kinds = np.unique(codes[sequence == s])
        if len(kinds) > 1:
            mixed.append(folder)
    return ImageSummary(counts, tuple(mixed))

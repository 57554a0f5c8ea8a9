"""Raw scenes as folders or zip archives (spec nyuv2.md 1.1), read without extracting.

A scene is one recording folder (``bedroom_0001/``) holding ``d-*.pgm``, ``r-*.ppm``, ``a-*.dump``
and ``INDEX.txt``; the official archives are zips whose members are ``<scene>/<file>`` and may
hold several scenes.
"""

from __future__ import annotations

import fnmatch
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nyutools.readers import NyuFormatError, read_accel_dump, read_depth_pgm, read_rgb_ppm


@dataclass
class Scene:
    """One raw scene: a folder, or a ``member_prefix/`` inside a zip archive.

    Attributes:
        name: scene name (the folder name, e.g. ``bedroom_0001``).
        path: the folder or the zip archive.
        member_prefix: for zips, the member folder with a trailing ``/`` (e.g. ``bedroom_0001/``);
            ``None`` for folders.
    """

    name: str
    path: Path
    member_prefix: str | None = None
    _zip: zipfile.ZipFile | None = field(default=None, repr=False, compare=False)

    @property
    def scene_type(self) -> str:
        """Scene category: the name up to the ``_`` before the first digit run (spec 1.1)."""
        return scene_type(self.name)

    def files(self) -> list[str]:
        """Bare file names of the scene, sorted (byte order)."""
        if self.member_prefix is None:
            return sorted(p.name for p in self.path.iterdir() if p.is_file())
        prefix = self.member_prefix
        names = (
            n[len(prefix) :]
            for n in self._archive().namelist()
            if n.startswith(prefix) and not n.endswith("/")
        )
        return sorted(n for n in names if n and "/" not in n)

    def label(self, file_name: str) -> str:
        """Human-readable location of a member, for error messages."""
        if self.member_prefix is None:
            return str(self.path / file_name)
        return f"{self.path}:{self.member_prefix}{file_name}"

    def read_bytes(self, file_name: str) -> bytes:
        """Bytes of one file of the scene (:class:`NyuFormatError` naming it if unreadable)."""
        try:
            if self.member_prefix is None:
                return (self.path / file_name).read_bytes()
            return self._archive().read(self.member_prefix + file_name)
        except (OSError, KeyError, zipfile.BadZipFile) as err:
            raise NyuFormatError(f"{self.label(file_name)}: cannot read ({err})") from err

    def read_depth(self, file_name: str) -> np.ndarray:
        """uint16 (480, 640) raw depth of ``d-*.pgm`` member ``file_name``."""
        return read_depth_pgm(self.read_bytes(file_name), name=self.label(file_name))

    def read_rgb(self, file_name: str) -> np.ndarray:
        """uint8 (480, 640, 3) distorted RGB of ``r-*.ppm`` member ``file_name``."""
        return read_rgb_ppm(self.read_bytes(file_name), name=self.label(file_name))

    def read_accel(self, file_name: str) -> np.ndarray:
        """float64 (4,) accelerometer record of ``a-*.dump`` member ``file_name``."""
        return read_accel_dump(self.read_bytes(file_name), name=self.label(file_name))

    def close(self) -> None:
        """Close the zip archive if one is open (reopened on demand)."""
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def __enter__(self) -> Scene:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, object]:
        # Open archives do not pickle; the copy reopens on demand (e.g. in a dask worker).
        return {**self.__dict__, "_zip": None}

    def _archive(self) -> zipfile.ZipFile:
        if self._zip is None:
            self._zip = _open_zip(self.path)
        return self._zip


def scene_type(name: str) -> str:
    """``living_room_0012`` -> ``living_room`` (the part before ``_<digits>``)."""
    parts = name.split("_")
    for i, part in enumerate(parts):
        if part[:1].isdigit():
            return "_".join(parts[:i])
    return name


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as err:
        raise NyuFormatError(f"{path}: not a readable zip archive ({err})") from err


def zip_scene_names(path: str | os.PathLike[str]) -> list[str]:
    """Names of the scene folders inside a zip archive (members ``<scene>/<file>``), sorted."""
    with _open_zip(Path(path)) as zf:
        names = {n.split("/", 1)[0] for n in zf.namelist() if "/" in n.strip("/")}
    return sorted(names)


def open_scene(path: str | os.PathLike[str], member_prefix: str | None = None) -> Scene:
    """Open a scene folder, or a scene inside a zip archive.

    Args:
        path: a scene folder, or a ``.zip`` archive.
        member_prefix: for a zip, the scene folder inside it (``"bedroom_0001"``, with or
            without the trailing ``/``); may be omitted when the archive holds exactly one scene.

    Raises:
        NyuFormatError: missing path, unreadable zip, or an ambiguous/absent scene in a zip.
    """
    path = Path(path)
    if path.is_dir():
        return Scene(path.name, path)
    if not path.is_file():
        raise NyuFormatError(f"{path}: no such scene folder or zip archive")
    names = zip_scene_names(path)
    if member_prefix is None:
        if len(names) != 1:
            raise NyuFormatError(
                f"{path}: holds {len(names)} scenes; pass member_prefix (one of {names[:5]}...)"
            )
        member_prefix = names[0]
    name = member_prefix.strip("/")
    if name not in names:
        raise NyuFormatError(f"{path}: no scene {name!r} inside the archive")
    return Scene(name, path, name + "/")


def list_scenes(root: str | os.PathLike[str], glob: str | None = None) -> list[Scene]:
    """All scenes under ``root``: scene folders and the scenes inside ``*.zip`` archives.

    A folder counts as a scene when it directly contains ``d-*.pgm`` files. Scenes are returned
    sorted by name (then path); ``glob`` (e.g. ``"bedroom_*"``) filters scene names.

    Raises:
        NyuFormatError: if ``root`` is not a folder, or a zip under it is unreadable.
    """
    root = Path(root)
    if not root.is_dir():
        raise NyuFormatError(f"{root}: raw root is not a folder")
    scenes: list[Scene] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        if any(f.startswith("d-") and f.endswith(".pgm") for f in filenames):
            scenes.append(Scene(here.name, here))
        for f in sorted(filenames):
            if f.lower().endswith(".zip"):
                zpath = here / f
                scenes.extend(Scene(n, zpath, n + "/") for n in zip_scene_names(zpath))
    if glob is not None:
        scenes = [s for s in scenes if fnmatch.fnmatchcase(s.name, glob)]
    return sorted(scenes, key=lambda s: (s.name, str(s.path)))

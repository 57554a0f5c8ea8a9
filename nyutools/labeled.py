"""The labeled subset ``nyu_depth_v2_labeled.mat`` and ``splits.mat`` (spec nyuv2.md 6).

The ``.mat`` is MATLAB v7.3, i.e. HDF5 behind a 512-byte user block; h5py reads it with every axis
reversed relative to MATLAB, so a plain transpose restores (row, column) order. (Rotating by -90
degrees, as some ports do, mirrors the image left-right.) Strings are cells of HDF5 object
references to uint16 character arrays.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from nyutools.readers import NyuFormatError

Index = int | slice


class LabeledSet:
    """Lazy reader of ``nyu_depth_v2_labeled.mat`` (1449 frames in the real file).

    Frames are read on demand; the file is opened on first use (and reopened after pickling, so
    the object can be shipped to worker processes). Use as a context manager or call
    :meth:`close`.

    Per-frame accessors take a 0-based index and return numpy arrays in (row, column) order:
    ``image`` uint8 (480, 640, 3); ``depth`` / ``raw_depth`` float32 (480, 640) metres
    (in-painted / projected with 0 = missing); ``label`` uint16 (480, 640), class id 1..894,
    0 = unlabeled; ``instance`` uint8 (480, 640); ``accel`` float32 (4,). Batched variants
    (``images``, ``depths``, ``raw_depths``, ``labels``, ``instances``) take a slice and add a
    leading frame axis.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: Any = None
        self._names: list[str] | None = None
        self._open()  # fail early, naming the file

    # ------------------------------------------------------------------ file handling
    def _open(self) -> Any:
        if self._file is None:
            import h5py

            try:
                self._file = h5py.File(self.path, "r")
            except (OSError, ValueError) as err:
                raise NyuFormatError(
                    f"{self.path}: not a readable MATLAB v7.3 (HDF5) labeled file ({err})"
                ) from err
            if "images" not in self._file:
                self._file.close()
                self._file = None
                raise NyuFormatError(f"{self.path}: no 'images' dataset; not the NYU labeled set")
        return self._file

    def _dataset(self, name: str) -> Any:
        f = self._open()
        if name not in f:
            raise NyuFormatError(f"{self.path}: no '{name}' dataset")
        return f[name]

    def close(self) -> None:
        """Close the HDF5 file (it is reopened if the object is used again)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> LabeledSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_file": None, "_names": self._names}

    def __len__(self) -> int:
        return int(self._dataset("images").shape[0])

    # ------------------------------------------------------------------ images and maps
    def image(self, i: int) -> np.ndarray:
        """uint8 (480, 640, 3) RGB of frame ``i``."""
        return np.ascontiguousarray(self._dataset("images")[i].transpose(2, 1, 0))

    def images(self, index: slice) -> np.ndarray:
        """uint8 (n, 480, 640, 3) RGB of the frames in ``index``."""
        return np.ascontiguousarray(self._dataset("images")[index].transpose(0, 3, 2, 1))

    def _map(self, name: str, i: int) -> np.ndarray:
        return np.ascontiguousarray(self._dataset(name)[i].T)

    def _maps(self, name: str, index: slice) -> np.ndarray:
        return np.ascontiguousarray(self._dataset(name)[index].transpose(0, 2, 1))

    def depth(self, i: int) -> np.ndarray:
        """float32 (480, 640) in-painted depth in metres."""
        return self._map("depths", i)

    def depths(self, index: slice) -> np.ndarray:
        """float32 (n, 480, 640) in-painted depths in metres."""
        return self._maps("depths", index)

    def raw_depth(self, i: int) -> np.ndarray:
        """float32 (480, 640) projected raw depth in metres, 0 = missing."""
        return self._map("rawDepths", i)

    def raw_depths(self, index: slice) -> np.ndarray:
        """float32 (n, 480, 640) projected raw depths in metres."""
        return self._maps("rawDepths", index)

    def label(self, i: int) -> np.ndarray:
        """uint16 (480, 640) class ids (1-based into :attr:`names`), 0 = unlabeled."""
        return self._map("labels", i)

    def labels(self, index: slice) -> np.ndarray:
        """uint16 (n, 480, 640) class ids."""
        return self._maps("labels", index)

    def instance(self, i: int) -> np.ndarray:
        """uint8 (480, 640) instance number within its class."""
        return self._map("instances", i)

    def instances(self, index: slice) -> np.ndarray:
        """uint8 (n, 480, 640) instance numbers."""
        return self._maps("instances", index)

    def accel(self, i: int) -> np.ndarray:
        """float32 (4,) accelerometer values of frame ``i`` (roll, yaw, pitch, tilt per NYU)."""
        return np.asarray(self._dataset("accelData")[:, i], dtype=np.float32)

    def accels(self) -> np.ndarray:
        """float32 (N, 4) accelerometer values of all frames."""
        return np.ascontiguousarray(self._dataset("accelData")[()].T, dtype=np.float32)

    # ------------------------------------------------------------------ strings
    @property
    def names(self) -> list[str]:
        """Class names; ``names[k - 1]`` is the name of class id ``k`` (894 in the real file)."""
        if self._names is None:
            self._names = [self._string(ref) for ref in self._refs("names")]
        return self._names

    def names_to_ids(self) -> dict[str, int]:
        """``{name: class id}`` (MATLAB's ``namesToIds`` map, rebuilt from :attr:`names`)."""
        return {name: k for k, name in enumerate(self.names, start=1)}

    def scene(self, i: int) -> str:
        """Scene folder of frame ``i``, e.g. ``bedroom_0001``."""
        return self._string(self._refs("scenes")[i])

    def scene_type(self, i: int) -> str:
        """Scene category of frame ``i``, e.g. ``living_room``."""
        return self._string(self._refs("sceneTypes")[i])

    def raw_rgb_filename(self, i: int) -> str:
        """``scene/r-....ppm`` of frame ``i``, relative to the raw root."""
        return self._string(self._refs("rawRgbFilenames")[i])

    def raw_depth_filename(self, i: int) -> str:
        """``scene/d-....pgm`` of frame ``i``, relative to the raw root."""
        return self._string(self._refs("rawDepthFilenames")[i])

    def _refs(self, name: str) -> np.ndarray:
        # Cells are (1, N) (or (N, 1)) arrays of object references.
        return np.asarray(self._dataset(name)[()]).ravel()

    def _string(self, ref: Any) -> str:
        obj = self._open()[ref]
        if obj.attrs.get("MATLAB_empty", 0):
            return ""
        chars = np.asarray(obj[()]).ravel()
        return "".join(chr(int(c)) for c in chars)


def read_splits(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read the official ``splits.mat`` (MATLAB v5, spec 6.5).

    Returns:
        (train_idx, test_idx): int64 0-based frame indices (795 and 654 in the real file).

    Raises:
        NyuFormatError: unreadable file or missing ``trainNdxs`` / ``testNdxs``.
    """
    import scipy.io

    path = Path(path)
    try:
        mat = scipy.io.loadmat(path)
    except (OSError, ValueError, NotImplementedError, TypeError, IndexError) as err:
        # scipy raises IndexError (among others) on files that are not MAT files at all.
        raise NyuFormatError(f"{path}: not a readable MATLAB v5 splits file ({err})") from err
    missing = [k for k in ("trainNdxs", "testNdxs") if k not in mat]
    if missing:
        raise NyuFormatError(f"{path}: missing {', '.join(missing)}")
    train, test = (
        np.asarray(mat[k]).ravel().astype(np.int64) - 1 for k in ("trainNdxs", "testNdxs")
    )
    return train, test

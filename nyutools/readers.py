"""Readers of the raw Kinect dump files (spec nyuv2.md 1.3-1.6).

Every reader takes a path or the file's bytes (``name`` then labels error messages) and checks the
exact size and header before decoding; a short or malformed file raises :class:`NyuFormatError`
naming the file, so callers can treat it as a missing frame.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from nyutools import camera

DEPTH_HEADER = b"P5 640 480 65535\n"
RGB_HEADER = b"P6 640 480 255\n"
DEPTH_FILE_SIZE = len(DEPTH_HEADER) + camera.HEIGHT * camera.WIDTH * 2  # 614,417
RGB_FILE_SIZE = len(RGB_HEADER) + camera.HEIGHT * camera.WIDTH * 3  # 921,615
ACCEL_STRUCT = struct.Struct("<hhhbxi")  # freenect_raw_tilt_state, x86 little-endian
ACCEL_FILE_SIZE = ACCEL_STRUCT.size  # 12

Source = str | os.PathLike[str] | bytes | bytearray | memoryview


class NyuFormatError(ValueError):
    """A raw NYU file is truncated, has the wrong size or header, or cannot be read."""


def _load(source: Source, name: str | None) -> tuple[bytes, str]:
    """Bytes of ``source`` (a path or bytes) and the name to use in messages."""
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), name or "<bytes>"
    path = Path(source)
    try:
        return path.read_bytes(), name or str(path)
    except OSError as err:
        raise NyuFormatError(f"{name or path}: cannot read ({err.strerror or err})") from err


def _check(data: bytes, name: str, header: bytes, size: int, kind: str) -> None:
    if not data.startswith(header):
        got = data[: len(header)]
        raise NyuFormatError(f"{name}: not a NYU {kind} file (header {got!r}, expected {header!r})")
    if len(data) != size:
        state = "truncated" if len(data) < size else "too long"
        raise NyuFormatError(f"{name}: {state} {kind} file ({len(data)} bytes, expected {size})")


def read_depth_pgm(source: Source, name: str | None = None) -> np.ndarray:
    """Read a raw Kinect depth frame ``d-*.pgm``.

    The samples are little-endian although PGM says big-endian (the toolbox's ``swapbytes``).

    Args:
        source: path, or the file's bytes.
        name: label for error messages when ``source`` is bytes.

    Returns:
        uint16 (480, 640) raw Kinect values 0..2047 (2047 = no measurement).
    """
    data, label = _load(source, name)
    _check(data, label, DEPTH_HEADER, DEPTH_FILE_SIZE, "depth .pgm")
    samples = np.frombuffer(data, dtype="<u2", offset=len(DEPTH_HEADER))
    return samples.reshape(camera.HEIGHT, camera.WIDTH).astype(np.uint16)


def read_rgb_ppm(source: Source, name: str | None = None) -> np.ndarray:
    """Read a raw (distorted) Kinect RGB frame ``r-*.ppm``.

    Returns:
        uint8 (480, 640, 3), R, G, B.
    """
    data, label = _load(source, name)
    _check(data, label, RGB_HEADER, RGB_FILE_SIZE, "RGB .ppm")
    pixels = np.frombuffer(data, dtype=np.uint8, offset=len(RGB_HEADER))
    return pixels.reshape(camera.HEIGHT, camera.WIDTH, 3).copy()


def read_accel_dump(source: Source, name: str | None = None) -> np.ndarray:
    """Read an accelerometer dump ``a-*.dump`` (``get_accel_data``).

    Returns:
        float64 (4,): ``[accel_x, accel_y, accel_z, tilt_angle]`` in raw counts (819 counts per g;
        tilt in half-degrees). The tilt status field is dropped.
    """
    data, label = _load(source, name)
    if len(data) != ACCEL_FILE_SIZE:
        raise NyuFormatError(
            f"{label}: accelerometer dump has {len(data)} bytes, expected {ACCEL_FILE_SIZE}"
        )
    ax, ay, az, tilt, _status = ACCEL_STRUCT.unpack(data)
    return np.array([ax, ay, az, tilt], dtype=np.float64)


def parse_frame_name(name: str) -> tuple[str, float, int]:
    """Split a dump file name ``<type>-<hosttime>-<devstamp>.<ext>`` (spec 1.2).

    Args:
        name: bare file name or a path (only the last component is parsed).

    Returns:
        (kind, host_time_s, device_stamp): kind is ``"d"``, ``"r"`` or ``"a"``.

    Raises:
        NyuFormatError: if the name does not follow the pattern.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    fields = base[2:].split("-")
    try:
        if base[1:2] != "-" or len(fields) != 2:
            raise ValueError
        return base[0], float(fields[0]), int(fields[1].split(".", 1)[0])
    except ValueError:
        raise NyuFormatError(
            f"{name}: not a NYU dump file name (<type>-<time>-<stamp>.<ext>)"
        ) from None


def frame_time(name: str) -> float:
    """Host time in seconds of a dump file name, as the toolbox parses it (spec 2 step 3)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    try:
        return float(base[2:].split("-")[0])
    except ValueError:
        raise NyuFormatError(f"{name}: no host time in this dump file name") from None

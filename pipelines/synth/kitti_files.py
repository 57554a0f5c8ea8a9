"""Text files of a synthetic KITTI drive: timestamp lines and oxts records."""

from __future__ import annotations

import datetime as dt

import numpy as np

SPEED = 8.0  # m/s: 0.8 m between frames


OXTS_FIELDS = (
    "lat lon alt roll pitch yaw vn ve vf vl vu ax ay az af al au wx wy wz wf wl wu "
    "pos_accuracy vel_accuracy navstat numsats posmode velmode orimode"
).split()


def stamp(t: float) -> str:
    """KITTI timestamp line ``YYYY-MM-DD HH:MM:SS.fffffffff``."""
    base = dt.datetime(2011, 9, 26, 13, 2, 25)
    whole = base + dt.timedelta(seconds=int(t))
    return f"{whole:%Y-%m-%d %H:%M:%S}.{int(round((t % 1) * 1e9)):09d}"


def oxts_line(rot: np.ndarray, centre: np.ndarray, rng: np.random.Generator) -> str:
    yaw = float(np.arctan2(rot[0, 2], rot[2, 2]))
    vals = [
        49.015 + centre[2] / 111_320,
        8.434 + centre[0] / 73_000,
        116.4 - centre[1],
        0.0357,
        0.009,
        yaw,
        0.0,
        SPEED,
        SPEED,
        0.0,
        0.0,
    ]
    vals += list(rng.normal(0, 0.05, 12)) + [0.02, 0.02]
    body = " ".join(f"{v:.12g}" for v in vals)
    return body + " 4 10 5 5 6"

"""Frame synchronisation: the toolbox's ``get_synched_frames`` (spec nyuv2.md 2).

Depth is primary: every depth frame gets the RGB and accelerometer frames nearest in host time,
found by two greedy pointers that never move back (ties advance, i.e. the later frame wins).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nyutools.readers import frame_time
from nyutools.scenes import Scene


@dataclass(frozen=True)
class SyncedFrame:
    """One synchronised record; names are bare file names of the scene, times in seconds."""

    depth: str
    rgb: str | None
    accel: str | None
    t_depth: float
    t_rgb: float | None
    t_accel: float | None


def _base(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def greedy_match(t_query: Sequence[float], t_ref: Sequence[float]) -> list[int]:
    """Toolbox matching of each query time to a reference index (spec 2 step 4).

    One pointer starts at reference 0 and, for each query in the given order, moves forward while
    the next reference is not farther (``cand > best`` stops it, so ties advance). It never moves
    back, even when a later query is closer to an earlier reference.

    Returns:
        For each query, the index of its reference (empty list when ``t_ref`` is empty).
    """
    if not t_ref:
        return []
    j = 0
    out = []
    for t in t_query:
        best = abs(t - t_ref[j])
        while j + 1 < len(t_ref):
            cand = abs(t - t_ref[j + 1])
            if cand > best:
                break
            best = cand
            j += 1
        out.append(j)
    return out


def sync_frames(scene: Scene | Iterable[str]) -> list[SyncedFrame]:
    """Synchronise a scene's depth, RGB and accelerometer frames like ``get_synched_frames``.

    Args:
        scene: a :class:`~nyutools.scenes.Scene`, or the file names of ONE scene (bare names or
            paths; classified by the first letter of the base name, ``d``, ``r`` or ``a``;
            anything else, e.g. ``INDEX.txt``, is ignored). Names are returned as given.

    Returns:
        One :class:`SyncedFrame` per depth file, in time order; ``rgb``/``accel`` (and their
        times) are ``None`` when the scene has no file of that stream.

    Raises:
        NyuFormatError: if a depth/RGB/accel name carries no parsable host time.
    """
    names = scene.files() if isinstance(scene, Scene) else list(scene)
    names = sorted(n for n in names if n)
    depth = [n for n in names if _base(n).startswith("d")]
    rgb = [n for n in names if _base(n).startswith("r")]
    accel = [n for n in names if _base(n).startswith("a")]
    t_rgb = [frame_time(n) for n in rgb]
    t_accel = [frame_time(n) for n in accel]
    t_depth = [frame_time(n) for n in depth]
    rgb_idx = greedy_match(t_depth, t_rgb) if rgb else [None] * len(depth)
    accel_idx = greedy_match(t_depth, t_accel) if accel else [None] * len(depth)
    return [
        SyncedFrame(
            depth=name,
            rgb=None if j is None else rgb[j],
            accel=None if k is None else accel[k],
            t_depth=t,
            t_rgb=None if j is None else t_rgb[j],
            t_accel=None if k is None else t_accel[k],
        )
        for name, t, j, k in zip(depth, t_depth, rgb_idx, accel_idx, strict=True)
    ]

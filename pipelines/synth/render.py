"""A tiny numpy ray caster for the synthetic worlds: textured planes and axis-aligned boxes.

World frame: metres, x right, y down, z forward (the camera convention of both datasets).
Surfaces carry a procedural texture (multi-octave noise with stripes, sampled with a crude
mip level chosen from the pixel footprint) so photometric losses have signal at every scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter

TEX_SIZE = 256
TEX_LEVELS = 5
_SKY = np.array([0.62, 0.74, 0.90], dtype=np.float32)


@dataclass(frozen=True)
class Plane:
    """A plane through ``point`` spanned by unit ``u`` and ``v`` axes, optionally bounded.

    ``bounds`` = (u_min, u_max, v_min, v_max) in metres along the axes from ``point``.
    """

    point: tuple[float, float, float]
    u: tuple[float, float, float]
    v: tuple[float, float, float]
    texture: int
    color: tuple[float, float, float]
    label: int = 0
    bounds: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class Box:
    """An axis-aligned box ``lo``..``hi`` (metres)."""

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    texture: int
    color: tuple[float, float, float]
    label: int = 0


@dataclass
class Scene:
    """Planes, boxes and the texture atlas (T, TEX_LEVELS, S, S) float32 in [0, 1]."""

    planes: list[Plane]
    boxes: list[Box]
    textures: np.ndarray
    texel: float = 0.02  # metres per texel
    sky: bool = False  # rays that hit nothing show sky (else black)
    light: np.ndarray = field(default_factory=lambda: np.array([0.3, -0.8, -0.5], np.float32))


@dataclass
class Hit:
    """Per-ray result: distance ``t`` along the (not necessarily unit) direction, inf = miss."""

    t: np.ndarray  # (N,) float32
    point: np.ndarray  # (N, 3) float32 world
    color: np.ndarray  # (N, 3) float32 in [0, 1]
    label: np.ndarray  # (N,) int32, -1 = miss
    instance: np.ndarray  # (N,) int32 surface index, -1 = miss


def make_textures(rng: np.random.Generator, count: int = 8) -> np.ndarray:
    """Procedural textures with a blur pyramid: (count, TEX_LEVELS, S, S) float32 in [0, 1]."""
    s = TEX_SIZE
    out = np.empty((count, TEX_LEVELS, s, s), np.float32)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    for i in range(count):
        tex = np.zeros((s, s), np.float32)
        for sigma, weight in ((0.7, 0.35), (2.0, 0.6), (5.0, 0.8), (12.0, 1.0), (30.0, 0.8)):
            layer = gaussian_filter(
                rng.standard_normal((s, s)).astype(np.float32), sigma, mode="wrap"
            )
            tex += weight * layer / (layer.std() + 1e-6)
        period = s / rng.integers(4, 17)
        angle = rng.uniform(0, np.pi)
        phase = (xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi / period)
        tex += 1.2 * rng.uniform(0.3, 1.0) * np.sign(np.sin(phase))
        tex = (tex - tex.min()) / (tex.max() - tex.min())
        for level in range(TEX_LEVELS):
            sigma = 0.0 if level == 0 else 0.5 * 2**level
            out[i, level] = gaussian_filter(tex, sigma, mode="wrap") if sigma else tex
    return out


def _sample(scene: Scene, tex: np.ndarray, uv: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Bilinear, wrapped texture lookup. tex (N,) int, uv (N, 2) metres, level (N,) int -> (N,).

    Grouped by (texture, level) and sampled with ``cv2.remap`` (SIMD, wrap border).
    """
    coords = (uv / np.float32(scene.texel)).astype(np.float32)
    key = tex * TEX_LEVELS + level
    out = np.empty(len(key), np.float32)
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    for group in np.split(order, bounds):
        if group.size == 0:
            continue
        k = int(key[group[0]])
        m = group.size
        cols = 1024
        rows = -(-m // cols)
        maps = np.zeros((rows * cols, 2), np.float32)
        maps[:m] = coords[group]
        img = scene.textures[k // TEX_LEVELS, k % TEX_LEVELS]
        res = cv2.remap(
            img, maps.reshape(rows, cols, 2), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP
        )
        out[group] = res.reshape(-1)[:m]
    return out


def cast(scene: Scene, origin: np.ndarray, dirs: np.ndarray, focal: float) -> Hit:
    """Cast rays from ``origin`` (3,) along ``dirs`` (N, 3); ``focal`` (pixels) sets the mip level.

    Returns the nearest hit per ray; ``t`` is in units of the direction's length (pass
    directions with unit z in a camera frame to get z-depth directly).
    """
    origin = np.asarray(origin, np.float64)
    d = np.ascontiguousarray(dirs, dtype=np.float32)
    n = d.shape[0]
    best = np.full(n, np.inf, np.float32)
    surf = np.full(n, -1, np.int32)
    axis_of = np.zeros(n, np.int8)
    for i, p in enumerate(scene.planes):
        u, v = np.asarray(p.u, np.float64), np.asarray(p.v, np.float64)
        normal = np.cross(u, v)
        rel = np.asarray(p.point) - origin
        denom = d @ normal.astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.float32(rel @ normal) / denom
        ok = (t > 1e-3) & (t < best)
        if p.bounds is not None:
            idx = np.flatnonzero(ok)
            hit = d[idx] * t[idx, None] - rel.astype(np.float32)
            hu, hv = hit @ u.astype(np.float32), hit @ v.astype(np.float32)
            u0, u1, v0, v1 = p.bounds
            ok[idx[(hu < u0) | (hu > u1) | (hv < v0) | (hv > v1)]] = False
        best[ok] = t[ok]
        surf[ok] = i
    # Slab test per box on contiguous per-axis columns (axis reductions on (N, 3) are slow).
    with np.errstate(divide="ignore"):
        inv = [np.float32(1.0) / np.ascontiguousarray(d[:, k]) for k in range(3)]
    for j, b in enumerate(scene.boxes):
        lo = np.asarray(b.lo) - origin
        hi = np.asarray(b.hi) - origin
        near, far = [], []
        with np.errstate(invalid="ignore"):
            for k in range(3):
                t1 = np.float32(lo[k]) * inv[k]
                t2 = np.float32(hi[k]) * inv[k]
                near.append(np.minimum(t1, t2))
                far.append(np.maximum(t1, t2))
        t_in = np.maximum(np.maximum(near[0], near[1]), near[2])
        t_out = np.minimum(np.minimum(far[0], far[1]), far[2])
        ok = (t_in > 1e-3) & (t_in <= t_out) & (t_in < best)
        idx = np.flatnonzero(ok)
        best[idx] = t_in[idx]
        surf[idx] = len(scene.planes) + j
        axis_of[idx] = np.argmax(np.stack([near[0][idx], near[1][idx], near[2][idx]], 1), 1)
    return _shade(scene, origin, d, best, surf, axis_of, focal)


def _shade(
    scene: Scene,
    origin: np.ndarray,
    d: np.ndarray,
    t: np.ndarray,
    surf: np.ndarray,
    axis_of: np.ndarray,
    focal: float,
) -> Hit:
    """Texture, label and Lambert-shade the hits of :func:`cast` (table lookups, no loops)."""
    n = d.shape[0]
    color = np.broadcast_to(_SKY if scene.sky else np.zeros(3, np.float32), (n, 3)).copy()
    point = np.zeros((n, 3), np.float32)
    hit = np.flatnonzero(surf >= 0)
    if hit.size:
        s = surf[hit]
        dh = d[hit]
        ph = origin.astype(np.float32) + dh * t[hit, None]
        point[hit] = ph
        surfaces = [*scene.planes, *scene.boxes]
        n_planes = len(scene.planes)
        tex = np.array([p.texture for p in surfaces], np.int64)[s]
        base = np.array([p.color for p in surfaces], np.float32)[s]
        # Planes: uv along their axes.  Boxes: the two coordinates other than the face axis.
        origin_tab = np.array(
            [p.point for p in scene.planes] + [b.lo for b in scene.boxes], np.float32
        )
        u_tab = np.array([p.u for p in scene.planes] + [(0, 0, 0)] * len(scene.boxes), np.float32)
        v_tab = np.array([p.v for p in scene.planes] + [(0, 0, 0)] * len(scene.boxes), np.float32)
        n_tab = np.cross(u_tab, v_tab)
        rel = ph - origin_tab[s]
        is_box = s >= n_planes
        ax = axis_of[hit].astype(np.int64)
        other = np.array([[1, 2], [0, 2], [0, 1]])[ax]
        uv_box = np.take_along_axis(rel, other, axis=1) + 7.3 * ax[:, None]
        uv_plane = np.stack(
            [np.einsum("ij,ij->i", rel, u_tab[s]), np.einsum("ij,ij->i", rel, v_tab[s])], 1
        )
        uv = np.where(is_box[:, None], uv_box, uv_plane)
        normal = n_tab[s]
        box_normal = np.zeros_like(normal)
        box_normal[np.arange(hit.size), ax] = 1.0
        normal = np.where(is_box[:, None], box_normal, normal)
        dnorm = np.linalg.norm(dh, axis=1)
        cos = np.abs(np.einsum("ij,ij->i", dh, normal)) / dnorm
        footprint = t[hit] * dnorm / (focal * scene.texel) / np.maximum(cos, 0.25)
        level = np.clip(np.ceil(np.log2(np.maximum(footprint, 1.0))), 0, TEX_LEVELS - 1)
        lum = _sample(scene, tex, uv, level.astype(np.int64))
        light = scene.light / np.linalg.norm(scene.light)
        shade = 0.55 + 0.45 * np.abs(normal @ light)
        color[hit] = base * ((0.2 + 0.8 * lum) * shade)[:, None]
    labels = np.array([p.label for p in [*scene.planes, *scene.boxes]] + [-1], np.int32)
    return Hit(t=t, point=point, color=np.clip(color, 0, 1), label=labels[surf], instance=surf)


def rays_from_pixels(x: np.ndarray, y: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """World directions (N, 3) of camera rays with normalised coordinates (x, y, 1).

    ``rotation`` is camera-to-world (3, 3); the camera-frame z component of every direction is
    1, so hit distances are z-depths in that camera.
    """
    cam = np.stack([x.ravel(), y.ravel(), np.ones(x.size)], axis=1)
    return (cam @ np.asarray(rotation).T).astype(np.float32)


def look_rotation(yaw: float, pitch: float, roll: float = 0.0) -> np.ndarray:
    """Camera-to-world rotation: yaw about y, then pitch about x, then roll about z (radians)."""
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return ry @ rx @ rz


def undistort_points(xd: np.ndarray, yd: np.ndarray, dist: np.ndarray, iters: int = 30):
    """Invert the Brown-Conrady model ``[k1, k2, p1, p2, k3]`` by fixed-point iteration.

    xd, yd: distorted normalised coordinates (any shape). Returns undistorted (x, y).
    """
    k1, k2, p1, p2, k3 = (float(c) for c in dist)
    x, y = xd.astype(np.float64).copy(), yd.astype(np.float64).copy()
    for _ in range(iters):
        r2 = x * x + y * y
        radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
        dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        x = (xd - dx) / radial
        y = (yd - dy) / radial
    return x, y


def distort_points(x: np.ndarray, y: np.ndarray, dist: np.ndarray):
    """Apply the Brown-Conrady model ``[k1, k2, p1, p2, k3]`` to normalised coordinates."""
    k1, k2, p1, p2, k3 = (float(c) for c in dist)
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return xd, yd

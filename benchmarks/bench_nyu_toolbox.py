"""NYU toolbox ports: ``project_depth`` ms/frame and ``fill_depth`` s/frame, one core, 640x480.

Baselines are written here, plainly:

* projection: a direct numpy transcription of ``project_depth_map`` that recomputes the
  undistortion coordinates on every call, blends with fancy indexing and z-buffers with
  ``np.lexsort`` plus ordered writes;
* in-painting: the toolbox's per-pixel loop building the sparse matrix from Python lists (as the
  DenseDepth port does), then ``scipy.sparse.linalg.spsolve``.

Inputs are the reference frames of ``tests/data/vectors/nyu`` (a synthetic frame when absent).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import math  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import scipy.sparse.linalg as spla  # noqa: E402

from nyutools import camera, fill_depth, project_depth  # noqa: E402
from nyutools.fill import RGB2GRAY  # noqa: E402
from nyutools.undistort import DEPTH_CAMERA, RGB_CAMERA, CameraModel  # noqa: E402

TESTVECTORS = Path(__file__).resolve().parents[1] / "tests" / "data" / "vectors" / "nyu"


def _frames() -> list[tuple[np.ndarray, np.ndarray]]:
    path = TESTVECTORS / "project_inputs.npz"
    if path.is_file():
        data = np.load(path)
        return [(data[f"raw_depth_{k}"], data[f"rgb_{k}"]) for k in (0, 4, 8)]
    rng = np.random.default_rng(0)
    v, u = np.mgrid[0:480, 0:640]
    raw = (800 + 0.3 * u + 0.2 * v).astype(np.uint16)
    raw[rng.random(raw.shape) < 0.05] = 2047
    return [(raw, rng.integers(0, 256, (480, 640, 3)).astype(np.uint8))]


# ----------------------------------------------------------------------------- baselines
def _baseline_undistort(img: np.ndarray, cam: CameraModel, fill: float) -> tuple:
    h, w = img.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = (u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy
    k1, k2, p1, p2, k3 = cam.dist
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    sx, sy = cam.fx * xd + cam.cx, cam.fy * yd + cam.cy
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    ok = (x0 >= 0) & (x0 <= w - 2) & (y0 >= 0) & (y0 <= h - 2)
    out = np.full((h, w), float(fill))
    ax, ay, xv, yv = sx[ok] - x0[ok], sy[ok] - y0[ok], x0[ok], y0[ok]
    out[ok] = (
        (1 - ay) * (1 - ax) * img[yv, xv]
        + (1 - ay) * ax * img[yv, xv + 1]
        + ay * (1 - ax) * img[yv + 1, xv]
        + ay * ax * img[yv + 1, xv + 1]
    )
    return out, (ok, x0, y0, sx, sy)


def baseline_project(raw: np.ndarray, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Straight numpy transcription of ``project_depth_map``."""
    rgb_u = np.stack(
        [_baseline_undistort(rgb[..., c].astype(float), RGB_CAMERA, 255)[0] for c in range(3)], -1
    )
    rgb_u = np.clip(np.floor(rgb_u + 0.5), 0, 255).astype(np.uint8)
    noise = _baseline_undistort(255.0 * (raw == raw.max()), DEPTH_CAMERA, 255)[0] > 0
    _, (ok, x0, y0, sx, sy) = _baseline_undistort(raw.astype(float), DEPTH_CAMERA, 0)
    ax, ay, xv, yv = sx[ok] - x0[ok], sy[ok] - y0[ok], x0[ok], y0[ok]
    idx = [(yv, xv), (yv, xv + 1), (yv + 1, xv), (yv + 1, xv + 1)]
    wts = [(1 - ay) * (1 - ax), (1 - ay) * ax, ay * (1 - ax), ay * ax]
    wts = [wt * ~noise[i] for wt, i in zip(wts, idx, strict=True)]
    s = sum(wts)
    val = sum(wt * raw[i] for wt, i in zip(wts, idx, strict=True)) / np.where(s == 0, 1, s)
    d = np.zeros(raw.shape)
    d[ok] = np.where(s == 0, 0, val)
    d[(d < 600) | noise] = 2047
    z = camera.raw_to_metres(d)
    v1, u1 = np.mgrid[1:481, 1:641].astype(float)
    z, u1, v1 = z.T.ravel(), u1.T.ravel(), v1.T.ravel()
    pts = np.stack([(u1 - camera.CX_D) * z / camera.FX_D, (v1 - camera.CY_D) * z / camera.FY_D, z])
    pts = camera.R @ pts + camera.T[:, None]
    px = np.round(pts[0] * camera.FX_RGB / pts[2] + camera.CX_RGB)
    py = np.round(pts[1] * camera.FY_RGB / pts[2] + camera.CY_RGB)
    keep = (px > 0) & (px < 640) & (py > 0) & (py < 480) & (z > 0)
    order = np.lexsort((np.arange(keep.sum()), -z[keep]))  # farthest first, stable
    flat = (py[keep][order].astype(int) - 1) * 640 + px[keep][order].astype(int) - 1
    out = np.zeros(480 * 640)
    out[flat] = z[keep][order]  # 1-D writes in order: the later (nearer) point wins
    out = out.reshape(480, 640)
    return out, rgb_u


def baseline_fill(rgb: np.ndarray, depth: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """The toolbox's per-pixel loop with Python lists, then ``spsolve``."""
    h, w = depth.shape
    known = (depth != 0) & (depth != 10)
    scale = depth[known].max()
    d = np.minimum(depth / scale, 1.0)
    gray = (
        RGB2GRAY[0] * rgb[..., 0] + RGB2GRAY[1] * rgb[..., 1] + RGB2GRAY[2] * rgb[..., 2]
    ).tolist()
    rows, cols, vals = [], [], []
    for j in range(w):
        for i in range(h):
            p = j * h + i
            gv, nb = [], []
            for jj in range(max(0, j - 1), min(j + 2, w)):
                for ii in range(max(0, i - 1), min(i + 2, h)):
                    if ii != i or jj != j:
                        gv.append(gray[ii][jj])
                        nb.append(jj * h + ii)
            cur = gray[i][j]
            allv = gv + [cur]
            mean = sum(allv) / len(allv)
            csig = 0.6 * sum((g - mean) ** 2 for g in allv) / len(allv)
            mgv = min((g - cur) ** 2 for g in gv)
            csig = max(csig, mgv / math.log(100), 2e-6)
            wts = [math.exp(-((g - cur) ** 2) / csig) for g in gv]
            total = sum(wts)
            rows.extend([p] * (len(nb) + 1))
            cols.extend(nb + [p])
            vals.extend([-wt / total for wt in wts] + [1.0])
    n = h * w
    a = sp.csc_matrix((vals, (rows, cols)), shape=(n, n))
    g = sp.diags(alpha * known.T.ravel().astype(float))
    x = spla.spsolve((a + g).tocsc(), alpha * known.T.ravel() * d.T.ravel())
    return x.reshape(w, h).T * scale


# ----------------------------------------------------------------------------- timing
def _best(fn, *args, repeat: int) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    frames = _frames()
    project_depth(*frames[0])  # build the cached undistortion maps once
    ours = min(_best(project_depth, raw, rgb, repeat=10)[0] for raw, rgb in frames)
    base = min(_best(baseline_project, raw, rgb, repeat=3)[0] for raw, rgb in frames)
    print(f"project_depth  ours {ours * 1e3:7.1f} ms/frame   baseline {base * 1e3:7.1f} ms/frame")
    diff = np.abs(project_depth(*frames[0])[0] - baseline_project(*frames[0])[0])
    print(
        f"project_depth  speed-up x{base / ours:.1f} (target <= 20 ms/frame); "
        f"pixels differing from baseline by > 1e-9 m: {np.count_nonzero(diff > 1e-9)}"
    )

    depth, rgb_u = project_depth(*frames[0])
    rgb01 = rgb_u / 255.0
    ours_fill, filled = _best(fill_depth, rgb01, depth, repeat=3)
    base_fill, base_out = _best(baseline_fill, rgb01, depth, repeat=1)
    diff = float(np.abs(filled - base_out).max())
    print(f"fill_depth     ours {ours_fill:7.2f} s/frame    baseline {base_fill:7.2f} s/frame")
    print(
        f"fill_depth     speed-up x{base_fill / ours_fill:.1f}, max |ours - baseline| {diff:.1e} m"
    )

"""NYU Depth V2 Kinect camera constants (toolbox ``camera_params.m``, spec nyuv2.md section 3).

Pixel units for focal lengths and principal points; metres for the translation. Distortion
vectors are in Bouguet/OpenCV order ``[k1, k2, p1, p2, k3]``.
"""

from __future__ import annotations

import numpy as np

HEIGHT = 480
WIDTH = 640
MAX_DEPTH = 10.0  # metres

FX_RGB = 5.1885790117450188e02
FY_RGB = 5.1946961112127485e02
CX_RGB = 3.2558244941119034e02
CY_RGB = 2.5373616633400465e02
DIST_RGB = np.array(
    [
        2.0796615318809061e-01,
        -5.8613825163911781e-01,
        7.2231363135888329e-04,
        1.0479627195765181e-03,
        4.9856986684705107e-01,
    ]
)

FX_D = 5.8262448167737955e02
FY_D = 5.8269103270988637e02
CX_D = 3.1304475870804731e02
CY_D = 2.3844389626620386e02
DIST_D = np.array(
    [
        -9.9897236553084481e-02,
        3.9065324602765344e-01,
        1.9290592870229277e-03,
        -1.9422022475975055e-03,
        -5.1031725053400578e-01,
    ]
)

# The toolbox names these t_x, t_z, t_y and applies them in that order.
T_X = 2.5031875059141302e-02
T_Z = -2.9342312935846411e-04
T_Y = 6.6238747008330102e-04
T = np.array([T_X, T_Z, T_Y])

DEPTH_PARAM1 = 351.3
DEPTH_PARAM2 = 1092.5
RAW_NO_READING = 2047

_R_VALUES = np.array(
    [
        9.9997798940829263e-01,
        5.0518419386157446e-03,
        4.3011152014118693e-03,
        -5.0359919480810989e-03,
        9.9998051861143999e-01,
        -3.6879781309514218e-03,
        -4.3196624923060242e-03,
        3.6662365748484798e-03,
        9.9998394948385538e-01,
    ]
)


def _rotation() -> np.ndarray:
    """R exactly as ``camera_params.m`` builds it: negate, column-major reshape, inv(transpose)."""
    m = (-_R_VALUES).reshape(3, 3, order="F")
    return np.linalg.inv(m.T)


R = _rotation()
"""Depth-camera -> RGB-camera rotation (3x3, det = -1; see spec section 3)."""

K_RGB = np.array([[FX_RGB, 0.0, CX_RGB], [0.0, FY_RGB, CY_RGB], [0.0, 0.0, 1.0]])
K_D = np.array([[FX_D, 0.0, CX_D], [0.0, FY_D, CY_D], [0.0, 0.0, 1.0]])


def raw_to_metres(raw: np.ndarray) -> np.ndarray:
    """Kinect raw disparity units -> metres (``depth_rel2depth_abs``, spec 4.5, no thresholds).

    ``z = 351.3 / (1092.5 - d)``, clipped to [0, 10] (negative -> 0, > 10 or inf -> 10).
    """
    d = np.asarray(raw, dtype=np.float64)
    with np.errstate(divide="ignore"):
        z = DEPTH_PARAM1 / (DEPTH_PARAM2 - d)
    z[z > MAX_DEPTH] = MAX_DEPTH
    z[z < 0] = 0.0
    return z


def metres_to_raw(z: np.ndarray) -> np.ndarray:
    """Inverse of :func:`raw_to_metres`: metres -> Kinect raw value (float, not rounded).

    ``d = 1092.5 - 351.3 / z``; z <= 0 maps to 2047 (no reading).
    """
    z = np.asarray(z, dtype=np.float64)
    out = np.full(z.shape, float(RAW_NO_READING))
    ok = z > 0
    out[ok] = DEPTH_PARAM2 - DEPTH_PARAM1 / z[ok]
    return out

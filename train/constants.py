"""Dataset constants shared by methods and evaluation (one definition each; torch-free).

The evaluation caps of the KITTI Eigen protocol and the NYU protocols, and the stereo scale of
monodepth2-style stereo training (a 0.1 training baseline for KITTI's 0.54 m). The KITTI normalised
intrinsics live with the camera code in :mod:`train.geometry`; the NYU crop and camera in
:mod:`pipelines.store.constants` and :mod:`nyutools.camera`.
"""

from __future__ import annotations

KITTI_MIN_DEPTH = 1e-3  # metres: evaluation range of the Eigen protocol
KITTI_MAX_DEPTH = 80.0
STEREO_SCALE_FACTOR = 5.4  # 0.54 m real baseline / 0.1 training baseline (monodepth2)
KITTI_STEREO_BASELINE = 0.54  # metres, nominal; a method training at baseline b scales by 0.54 / b

NYU_MIN_DEPTH = 0.1  # metres: evaluation range of the NYU protocols
NYU_MAX_DEPTH = 10.0

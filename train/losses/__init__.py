"""Loss families, one per file, as plain typed functions (shapes and units in docstrings).

:mod:`photometric` (SSIM, SSIM + L1, minimum reprojection with auto-masking), :mod:`smoothness`
(edge-aware disparity smoothness), :mod:`monodepth2` (the multi-scale Monodepth2 loss).
"""

from train.losses.monodepth2 import (
    Monodepth2LossConfig,
    Monodepth2LossOutput,
    Views,
    monodepth2_loss,
)
from train.losses.photometric import (
    ReprojectionMin,
    min_reprojection_loss,
    photometric_error,
    ssim_loss,
)
from train.losses.smoothness import smoothness_loss

__all__ = [
    "Monodepth2LossConfig",
    "Monodepth2LossOutput",
    "ReprojectionMin",
    "Views",
    "min_reprojection_loss",
    "monodepth2_loss",
    "photometric_error",
    "smoothness_loss",
    "ssim_loss",
]

"""ManyDepth's two-frame predictor (modern_methods.md 2.6): previous frame, current frame and
pixel intrinsics -> depth, through the pose network and the multi-frame depth network."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from train.geometry import disp_to_depth, kitti_intrinsics, scale_intrinsics
from train.methods.base import Predictor, Scaling
from train.models import pose_input
from train.models.manydepth import ManyDepthNet

MATCHING_SCALE = 2  # the cost volume works at H/4 x W/4


def pinhole_inverse(K: Tensor) -> Tensor:
    """``(B, 4, 4)`` inverse of zero-skew pinhole intrinsics ``(B, 4, 4)``, in closed form (the
    same values as ``pinv`` for such matrices, and exportable to ONNX)."""
    fx, fy = K[:, 0, 0], K[:, 1, 1]
    cx, cy = K[:, 0, 2], K[:, 1, 2]
    inv = torch.zeros_like(K)
    inv[:, 0, 0], inv[:, 1, 1] = 1.0 / fx, 1.0 / fy
    inv[:, 0, 2], inv[:, 1, 2] = -cx / fx, -cy / fy
    inv[:, 2, 2] = inv[:, 3, 3] = 1.0
    return inv


def matching_intrinsics(K: Tensor) -> tuple[Tensor, Tensor]:
    """The cost volume's ``(K, inv_K)`` from ``(B, 4, 4)`` pixel intrinsics of the H x W input:
    rows 0 and 1 divided by 4 (Monodepth2's convention for the scale-2 matrix)."""
    factors = K.new_tensor([0.25, 0.25, 1.0, 1.0]).view(1, 4, 1)
    K2 = K * factors
    return K2, pinhole_inverse(K2)


class ManyDepthPredictor(Predictor):
    """``(previous, image, intrinsics)`` -> depth ``(B, 1, H, W)`` of the scale-0 disparity.

    The pose network sees ``(previous, image)`` (temporal order, inverted as in training); the
    matching uses the depth network's stored depth range. ``previous`` all black (a test image
    without one) is matched as it is, as the reference's evaluation does. ``static_camera``:
    the current image stands in for the previous one; ``zero_cost_volume``: the pose is zeroed
    (the reference's evaluation variants). ``fixed_K``: the normalised intrinsics the model was
    trained with (KITTI's, :data:`train.geometry.KITTI_NORMALISED_INTRINSICS`) or None.
    """

    inputs = ("previous", "image", "intrinsics")

    def __init__(
        self,
        depth: ManyDepthNet,
        pose: nn.Module,
        min_depth: float,
        max_depth: float,
        fixed_K: bool = True,
        static_camera: bool = False,
        zero_cost_volume: bool = False,
    ) -> None:
        super().__init__()
        self.depth, self.pose = depth, pose
        self.min_depth, self.max_depth = min_depth, max_depth
        self.fixed_K = fixed_K
        self.static_camera, self.zero_cost_volume = static_camera, zero_cost_volume
        self.scaling = Scaling()

    def fixed_intrinsics(self, height: int, width: int) -> Tensor | None:
        if not self.fixed_K:
            return None
        return scale_intrinsics(kitti_intrinsics(), height, width)

    def forward(self, previous: Tensor, image: Tensor, intrinsics: Tensor) -> Tensor:
        pose = self.pose(pose_input(image, previous, -1))
        T = pose.matrix(invert=True).float()
        if self.zero_cost_volume:
            T = T * 0
        if self.static_camera:
            previous = image
        K2, inv_K2 = matching_intrinsics(intrinsics.float().expand(image.shape[0], 4, 4))
        out = self.depth(image, previous.unsqueeze(1), T.unsqueeze(1), K2, inv_K2)
        return disp_to_depth(out.disps[0].float(), self.min_depth, self.max_depth)[1]

"""Monodepth2 pose decoder (training.md 1.4): relative camera motion from encoder features."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..geometry import transformation_from_parameters

POSE_SCALE = 0.01


@dataclass
class PoseOutput:
    """Pose predictions, ``n_pred`` per sample (separate-ResNet: 2, of which only index 0 is used).

    Attributes:
        axisangle: ``(B, n_pred, 1, 3)`` rotation vectors, radians.
        translation: ``(B, n_pred, 1, 3)`` translations, training units.
    """

    axisangle: Tensor
    translation: Tensor

    def matrix(self, invert: bool = False, index: int = 0) -> Tensor:
        """``(B, 4, 4)`` transform of prediction ``index`` (see
        :func:`train.geometry.transformation_from_parameters`; invert when the source frame
        precedes the target)."""
        return transformation_from_parameters(
            self.axisangle[:, index], self.translation[:, index], invert=invert
        )


class PoseDecoder(nn.Module):
    """Squeeze each input's deepest map, then three convolutions to ``6 * n_pred`` numbers.

    Per input: 1x1 conv (``num_ch_enc[-1] -> 256``) + ReLU (one conv shared by all inputs);
    concatenate; 3x3 conv (``256 * num_inputs -> 256``) + ReLU; 3x3 conv + ReLU; 1x1 conv to
    ``6 * num_predictions``; spatial mean; x0.01; first three = axis-angle, last three =
    translation.

    Args:
        num_ch_enc: encoder channels (only the last entry is used).
        num_inputs: encoder outputs given to ``forward`` (1 for separate-ResNet, 2 for shared).
        num_predictions: poses predicted (2 for separate-ResNet, with the second never used; it
            is kept so that monodepth2 weights load).
    """

    def __init__(
        self, num_ch_enc: Sequence[int], num_inputs: int = 1, num_predictions: int = 2
    ) -> None:
        super().__init__()
        self.num_inputs = num_inputs
        self.num_predictions = num_predictions
        self.squeeze = nn.Conv2d(num_ch_enc[-1], 256, 1)
        self.pose0 = nn.Conv2d(num_inputs * 256, 256, 3, stride=1, padding=1)
        self.pose1 = nn.Conv2d(256, 256, 3, stride=1, padding=1)
        self.pose2 = nn.Conv2d(256, 6 * num_predictions, 1)
        self.relu = nn.ReLU()

    def forward(self, last_features: Sequence[Tensor]) -> PoseOutput:
        """``last_features``: the deepest encoder map ``(B, C, h, w)`` of each input."""
        x = torch.cat([self.relu(self.squeeze(f)) for f in last_features], dim=1)
        x = self.relu(self.pose0(x))
        x = self.relu(self.pose1(x))
        x = self.pose2(x).mean(dim=(2, 3))
        x = POSE_SCALE * x.reshape(-1, self.num_predictions, 1, 6)
        return PoseOutput(axisangle=x[..., :3], translation=x[..., 3:])

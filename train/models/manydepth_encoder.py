"""ManyDepth's matching encoder ``ResnetEncoderMatching`` (modern_methods.md 2.2).

A torchvision ResNet split at H/4: the current image's ``layer0`` + ``layer1`` features are
matched against the lookup images' (a plane sweep over depth bins,
:mod:`train.models.cost_volume`), the confidence-masked cost volume is concatenated to them and
reduced by ``reduce_conv`` (3x3, ``C1 + D -> C1``, ReLU), and ``layer2..4`` continue on that.

Module names are the reference's, so its ``encoder.pth`` loads without renaming (but for the
entries :mod:`train.models.manydepth_weights` drops): ``layer0.{0,1}`` (conv1, bn1),
``layer1.1.*`` (index 0 is the max-pool), ``layer2..4.*``, ``reduce_conv.0.*``. The reference's
unused ``prematching_conv`` and its fixed-size back-projection grids are not built. The adaptive
depth range lives here as float64 buffers ``min_depth_bin`` / ``max_depth_bin`` (the trainer's
trackers), so checkpoints carry it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchvision.models import ResNet, resnet

from .cost_volume import (
    BINNINGS,
    CostVolume,
    confidence_mask,
    depth_bins,
    lowest_cost_disparity,
    match_features,
)
from .registry import register_network
from .resnet_encoder import IMAGE_MEAN, IMAGE_STD, encoder_channels
from .weights import WeightsArg, load_weights, resnet_weights_enum, resolve_weights

NUM_DEPTH_BINS = 96
TRACKER_START = (0.1, 10.0)  # the trainer's initial (min, max) depth range


@dataclass
class MatchingOutput:
    """What :class:`ResnetEncoderMatching` returns.

    Attributes:
        features: ``[f0, ..., f4]`` at H/2 .. H/32 (channels ``num_ch_enc``).
        lowest_cost: ``(B, H/4, W/4)`` disparity ``1 / depth`` of each pixel's cheapest bin.
        confidence: ``(B, H/4, W/4)`` 1 where every bin was observed, else 0.
    """

    features: list[Tensor]
    lowest_cost: Tensor
    confidence: Tensor


class ResnetEncoderMatching(nn.Module):
    """Multi-frame ResNet encoder with a cost volume at H/4.

    ``forward(current, lookups, poses, K, inv_K)``: ``current`` ``(B, 3, H, W)`` RGB in [0, 1]
    (H, W multiples of 32); ``lookups`` ``(B, F, 3, H, W)`` earlier (or later) frames; ``poses``
    ``(B, F, 4, 4)`` current camera -> lookup camera (a pose summing to 0 skips that frame);
    ``K``, ``inv_K`` ``(B, 4, 4)`` pixel intrinsics of the H/4 x W/4 feature map. Without
    lookups every frame counts as missing (a zero cost volume, confidence 0). The depth range
    is the buffers' unless ``min_depth_bin`` / ``max_depth_bin`` are given.

    Args:
        num_layers: ResNet depth (18, 34, 50, ...).
        num_depth_bins: bins of the sweep (96).
        depth_binning: ``linear`` or ``inverse`` spacing.
    """

    def __init__(
        self, num_layers: int = 18, num_depth_bins: int = NUM_DEPTH_BINS, depth_binning="linear"
    ) -> None:
        super().__init__()
        if depth_binning not in BINNINGS:
            raise ValueError(f"depth_binning must be one of {BINNINGS}, not {depth_binning!r}")
        self.num_ch_enc = encoder_channels(num_layers)
        self.num_layers = num_layers
        self.num_depth_bins = num_depth_bins
        self.depth_binning = depth_binning
        trunk: ResNet = getattr(resnet, f"resnet{num_layers}")(weights=None)
        self.layer0 = nn.Sequential(trunk.conv1, trunk.bn1, trunk.relu)
        self.layer1 = nn.Sequential(trunk.maxpool, trunk.layer1)
        self.layer2, self.layer3, self.layer4 = trunk.layer2, trunk.layer3, trunk.layer4
        c1 = self.num_ch_enc[1]
        self.reduce_conv = nn.Sequential(
            nn.Conv2d(c1 + num_depth_bins, c1, 3, stride=1, padding=1), nn.ReLU(inplace=True)
        )
        self.register_buffer("min_depth_bin", torch.tensor(TRACKER_START[0], dtype=torch.float64))
        self.register_buffer("max_depth_bin", torch.tensor(TRACKER_START[1], dtype=torch.float64))

    def load_imagenet(self, state: dict[str, Tensor]) -> None:
        """Conv and BatchNorm weights from a torchvision ImageNet ResNet state dict (``fc``
        ignored; ``reduce_conv`` keeps its initialisation).

        Raises:
            ValueError: the state dict is not a ResNet of this depth.
        """
        renamed = {}
        for key, value in state.items():
            head, _, rest = key.partition(".")
            if head in ("conv1", "bn1"):
                renamed[f"layer0.{0 if head == 'conv1' else 1}.{rest}"] = value
            elif head == "layer1":
                renamed[f"layer1.1.{rest}"] = value
            elif head in ("layer2", "layer3", "layer4"):
                renamed[key] = value
        missing, unexpected = self.load_state_dict(renamed, strict=False)
        own = ("min_depth_bin", "max_depth_bin")
        missing = [k for k in missing if not k.startswith("reduce_conv.") and k not in own]
        if missing or unexpected:
            raise ValueError(f"weights do not fit resnet{self.num_layers}: missing {missing[:3]}")

    def features_to_h4(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """``(f0, f1)``: the stem (H/2) and ``layer1`` (H/4) features of normalised ``image``."""
        f0 = self.layer0((image - IMAGE_MEAN) / IMAGE_STD)
        return f0, self.layer1(f0)

    def bins(
        self,
        min_depth_bin: Tensor | float | None = None,
        max_depth_bin: Tensor | float | None = None,
    ) -> Tensor:
        """float32 ``(D,)`` bin depths of the given range (default: the buffers')."""
        lo = self.min_depth_bin if min_depth_bin is None else min_depth_bin
        hi = self.max_depth_bin if max_depth_bin is None else max_depth_bin
        bins = depth_bins(lo, hi, self.num_depth_bins, self.depth_binning)
        return bins.to(self.min_depth_bin.device)

    def match(
        self, current: Tensor, lookups: Tensor, poses: Tensor, K: Tensor, inv_K: Tensor, bins
    ) -> CostVolume:
        """The cost volume of ``layer1`` features ``current`` ``(B, C, h, w)`` against the
        lookup images ``(B, F, 3, H, W)`` (their features computed here, without gradients)."""
        b, f = lookups.shape[:2]
        with torch.no_grad():
            _, lookup = self.features_to_h4(lookups.reshape(b * f, *lookups.shape[2:]))
        lookup = lookup.view(b, f, *lookup.shape[1:])
        return match_features(current.detach(), lookup, poses, K, inv_K, bins)

    def forward(
        self,
        current: Tensor,
        lookups: Tensor | None = None,
        poses: Tensor | None = None,
        K: Tensor | None = None,
        inv_K: Tensor | None = None,
        min_depth_bin: Tensor | float | None = None,
        max_depth_bin: Tensor | float | None = None,
    ) -> MatchingOutput:
        f0, f1 = self.features_to_h4(current)
        bins = self.bins(min_depth_bin, max_depth_bin)
        b, _, h, w = f1.shape
        if lookups is None or poses is None or K is None or inv_K is None:
            cost = f1.new_zeros(b, self.num_depth_bins, h, w, dtype=torch.float32)
            volume = CostVolume(cost, torch.ones_like(cost, dtype=torch.bool))
        else:
            volume = self.match(f1, lookups, poses, K, inv_K, bins)
        confidence = confidence_mask(volume.missing)
        lowest_cost = lowest_cost_disparity(volume.cost, bins)
        masked = (volume.cost * confidence.unsqueeze(1)).to(f1.dtype)
        x = self.reduce_conv(torch.cat([f1, masked], dim=1))
        f2 = self.layer2(x)
        f3 = self.layer3(f2)
        f4 = self.layer4(f3)
        return MatchingOutput([f0, f1, f2, f3, f4], lowest_cost, confidence)


@register_network(
    "manydepth_encoder", min_size=64, summary="ManyDepth matching ResNet encoder (cost volume)"
)
def matching_encoder(
    num_layers: int = 18,
    weights: WeightsArg = None,
    num_depth_bins: int = NUM_DEPTH_BINS,
    depth_binning: str = "linear",
) -> ResnetEncoderMatching:
    """A :class:`ResnetEncoderMatching`, randomly initialised (torchvision's ResNet init,
    PyTorch's default for ``reduce_conv``) or with ImageNet conv / BN weights (``weights``, see
    :data:`train.models.weights.WeightsArg`)."""
    model = ResnetEncoderMatching(num_layers, num_depth_bins, depth_binning)
    resolved = resolve_weights(weights, resnet_weights_enum(num_layers))
    if resolved is not None:
        try:
            model.load_imagenet(load_weights(resolved))
        except ValueError as exc:
            raise ValueError(f"{resolved}: {exc}") from exc
    return model

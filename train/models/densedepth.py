"""DenseDepth (training.md 8): DenseNet-169 encoder + the reference (Keras) decoder, and its depth
encoding.

The network regresses ``y = 1000 / depth_cm`` (1..100 over the valid 10..1000 cm) at H/2 from RGB
in [0, 1] (no mean/std normalisation). :func:`depth_to_target` and :func:`output_to_depth` convert
between metres and that encoding.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import DenseNet169_Weights, densenet169

from .registry import register_network
from .weights import Weights, weights_state_dict

ENCODER_CHANNELS = (64, 64, 128, 256, 1664)
MIN_DEPTH_CM = 10.0
MAX_DEPTH_CM = 1000.0
DEPTH_NORM = 1000.0  # y = DEPTH_NORM / depth_cm
LEAKY_SLOPE = 0.2

"""``None`` (random init), a torchvision enum member (or its name), a file, or a state dict."""

# torchvision's released DenseNet files name dense-layer modules "norm.1", "conv.2", ...
_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\.(?:weight|bias|running_mean|running_var))$"
)


def depth_to_target(depth: Tensor) -> Tensor:
    """Metric depth (metres) -> DenseDepth's target ``1000 / depth_cm``, depth clipped to
    10..1000 cm first (so the target lies in 1..100; 0 = no measurement maps to 100: mask it)."""
    return DEPTH_NORM / (depth * 100.0).clamp(MIN_DEPTH_CM, MAX_DEPTH_CM)


def output_to_depth(y: Tensor) -> Tensor:
    """Network output ``y`` -> metres: ``clip(1000 / y, 10, 1000) / 100`` (0.1..10 m; y <= 0
    gives 0.1 m and y = 0 gives 10 m, as numpy's clip of +-inf does)."""
    return (DEPTH_NORM / y).clamp(MIN_DEPTH_CM, MAX_DEPTH_CM) / 100.0


def fix_densenet_keys(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename the old ``denselayerN.norm.1.weight``-style keys of torchvision's released
    DenseNet files to the module names of today's ``DenseNet`` (``norm1.weight``)."""
    out = {}
    for key, value in state.items():
        match = _OLD_KEY.match(key)
        out[match[1] + match[2] if match else key] = value
    return out


class DenseNetEncoder(nn.Module):
    """torchvision DenseNet-169 ``features`` returning the decoder's five taps.

    ``(B, 3, H, W)`` -> ``[relu0 (64, H/2), pool0 (64, H/4), transition1 (128, H/8),
    transition2 (256, H/16), relu(norm5) (1664, H/32)]`` (Keras names: ``conv1/relu``,
    ``pool1``, ``pool2_pool``, ``pool3_pool``, ``relu``). State-dict keys are ``features.*``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = densenet169(weights=None).features
        self.num_ch_enc = ENCODER_CHANNELS

    def load_imagenet(self, state: Mapping[str, Tensor]) -> None:
        """Load a torchvision DenseNet-169 state dict (old key names accepted, classifier
        ignored).

        Raises:
            ValueError: keys or shapes do not fit.
        """
        kept = {k: v for k, v in fix_densenet_keys(state).items() if k.startswith("features.")}
        try:
            self.load_state_dict(kept)
        except RuntimeError as exc:
            raise ValueError(f"weights do not fit densenet169: {exc}") from exc

    def forward(self, x: Tensor) -> list[Tensor]:
        f = self.features
        x0 = f.relu0(f.norm0(f.conv0(x)))
        x1 = f.pool0(x0)
        x2 = f.transition1(f.denseblock1(x1))
        x3 = f.transition2(f.denseblock2(x2))
        x4 = f.denseblock4(f.transition3(f.denseblock3(x3)))
        return [x0, x1, x2, x3, F.relu(f.norm5(x4))]


class UpBlock(nn.Module):
    """Bilinear x2 (half-pixel, as TF2's ``tf.image.resize``), concatenate the skip, then
    twice 3x3 conv (zero pad 1, bias) + LeakyReLU(0.2).

    ``(B, in_channels, h, w)`` + skip ``(B, skip_channels, 2h, 2w)`` -> ``(B, out, 2h, 2w)``.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels + skip_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        x = F.leaky_relu(self.conv1(torch.cat([x, skip], dim=1)), LEAKY_SLOPE)
        return F.leaky_relu(self.conv2(x), LEAKY_SLOPE)


class DenseDepthDecoder(nn.Module):
    """Keras DenseDepth decoder: encoder taps -> ``(B, 1, H/2, W/2)``, linear.

    1x1 conv ``C4 -> C4 / 2`` (832), four :class:`UpBlock` halving the width each time (416, 208,
    104, 52) with skips f3, f2, f1, f0, then a 3x3 conv to one channel. Keras' default
    initialisation: Xavier-uniform weights, zero biases.
    """

    def __init__(self, num_ch_enc: tuple[int, ...] = ENCODER_CHANNELS) -> None:
        super().__init__()
        width = num_ch_enc[4] // 2
        self.squeeze = nn.Conv2d(num_ch_enc[4], width, 1)
        c_out = [width // 2 ** (k + 1) for k in range(4)]
        c_in = [width, *c_out[:-1]]
        c_skip = num_ch_enc[3::-1]
        self.blocks = nn.ModuleList(
            UpBlock(i, s, o) for i, s, o in zip(c_in, c_skip, c_out, strict=True)
        )
        self.head = nn.Conv2d(c_out[-1], 1, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, features: list[Tensor]) -> Tensor:
        x = self.squeeze(features[4])
        for block, skip in zip(self.blocks, features[3::-1], strict=True):
            x = block(x, skip)
        return self.head(x)


class DenseDepthNet(nn.Module):
    """RGB ``(B, 3, H, W)`` in [0, 1] -> ``y`` ``(B, 1, H/2, W/2)``, y = 1000 / depth_cm.

    The output is linear (unbounded); trained, it lies near 1..100 (convert it with
    :func:`output_to_depth`). H and W must be multiples of 32. Attributes ``encoder`` and
    ``decoder``.
    """

    def __init__(self, encoder: DenseNetEncoder, decoder: DenseDepthDecoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, image: Tensor) -> Tensor:
        h, w = image.shape[-2:]
        if h % 32 or w % 32:
            raise ValueError(f"input height and width must be multiples of 32, got {h}x{w}")
        return self.decoder(self.encoder(image))


@register_network(
    "densedepth_depth", min_size=32, summary="DenseDepth: DenseNet-169 + Keras decoder (H/2)"
)
def densedepth_net(weights: Weights = None) -> DenseDepthNet:
    """DenseDepth, randomly initialised or with an ImageNet DenseNet-169 encoder.

    Args:
        weights: encoder weights: ``None``, a member (or name) of ``DenseNet169_Weights``, a
            state-dict file, or a torchvision DenseNet-169 state dict (the reference used the
            Keras applications' ImageNet weights; these are torchvision's). The decoder always
            starts from Keras' default initialisation.

    Raises:
        MissingWeightsError: enum weights not in the local torch cache, or the file is absent.
        ValueError: weights that do not fit.
    """
    encoder = DenseNetEncoder()
    state = weights_state_dict(weights, DenseNet169_Weights)
    if state is not None:
        encoder.load_imagenet(state)
    return DenseDepthNet(encoder, DenseDepthDecoder(encoder.num_ch_enc))

"""The feature-metric term of FeatDepth's depth stage (training.md 5.2), shared by the ``featdepth``
method and Monodepth2 with ``feature_metric > 0`` (the seed study's combination).

* :class:`FrozenExtractor`: the stage-1 FeatureNet encoder, frozen (``requires_grad=False``, run
  without gradients), returning its level-0 map (64 channels at H/2) of raw [0, 1] RGB.
* :func:`load_extractor`: copy the encoder of a ``featdepth`` auto-encoder checkpoint into it,
  refusing a missing file, another method or stage, or another encoder depth with one line.
* :func:`feature_metric_term`: warp the sources' level-0 features into the target view with the
  predicted depth and poses through :func:`train.geometry.warp`, then
  :func:`train.losses.featdepth.feature_metric_loss` (per-pixel minimum over sources of the
  channel-mean robust L1), unweighted.

BatchNorm of the extractor: ``"eval"`` (default) uses the stage-1 running statistics, so the
features are a fixed function of the image. ``"train"`` is FeatDepth's own behaviour: the
extractor is a sub-module of its model, so it runs in train mode during depth training, with
batch statistics, and its running statistics drift (they are saved with the stage-2 run).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from train.checkpoint_file import load_payload
from train.geometry import disp_to_depth, invert_intrinsics, warp
from train.losses.featdepth import feature_metric_loss
from train.models import build_network

EXTRACTOR_BN = ("eval", "train")
# Stage 1 is the ``featdepth`` method's ``autoencoder`` stage; its network is called "featurenet".
AUTOENCODER_METHOD, AUTOENCODER_STAGE, AUTOENCODER_NET = "featdepth", "autoencoder", "featurenet"


class FrozenExtractor(nn.Module):
    """Frozen FeatureNet encoder: ``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, C0, H/2, W/2)``.

    Attribute ``encoder`` (a :class:`train.models.featurenet.RawResnetEncoder`, keys as in the
    auto-encoder's ``featurenet.encoder.*``). No gradient flows into or through it.
    """

    def __init__(self, num_layers: int) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.encoder = build_network("featdepth_featurenet", num_layers=num_layers).encoder
        self.encoder.requires_grad_(False)

    def forward(self, image: Tensor) -> Tensor:
        # Only the stem: FeatDepth runs the whole encoder and keeps level 0, which depends on
        # conv1 / bn1 alone (same output; in "train" BatchNorm mode the deeper, unused batch
        # norms' running statistics are not updated).
        with torch.no_grad():
            return self.encoder.first_level(image)


def check_extractor_bn(value: str) -> None:
    """ValueError unless ``value`` is ``"eval"`` or ``"train"``."""
    if value not in EXTRACTOR_BN:
        raise ValueError(f"extractor_bn must be one of {EXTRACTOR_BN}, not {value!r}")


def load_extractor(
    extractor: FrozenExtractor, path: str | None, owner: str, hint: str = ""
) -> None:
    """Copy the encoder of the ``featdepth`` auto-encoder checkpoint at ``path`` into
    ``extractor``.

    Args:
        owner: what needs it, for the messages (e.g. ``"featdepth stage depth"``).
        hint: appended to the message when no path is given.

    Raises:
        ValueError: no path given, file missing or unreadable, a checkpoint of another method or
            stage, or an encoder of another depth than ``extractor.num_layers``.
    """
    if path is None:
        raise ValueError(
            f"{owner} needs the stage-1 auto-encoder: --set extractor=RUN/checkpoints/last.pt "
            f"(a run of --preset featdepth-ae or featdepth-ae-nyu){hint}"
        )
    payload = load_payload(Path(path))
    config = payload["config"]
    params = config.get("params", {})
    if config["method"] != AUTOENCODER_METHOD or params.get("stage") != AUTOENCODER_STAGE:
        stage = f" stage {params['stage']!r}" if "stage" in params else ""
        raise ValueError(
            f"{path}: a {config['method']}{stage} checkpoint, not a {AUTOENCODER_METHOD} "
            f"{AUTOENCODER_STAGE} run (the extractor is the encoder of that stage)"
        )
    layers = params.get("feature_layers")
    if layers != extractor.num_layers:
        raise ValueError(
            f"{path}: its auto-encoder is ResNet-{layers}, this run's extractor is "
            f"ResNet-{extractor.num_layers} (--set feature_layers={layers})"
        )
    weights = payload["models"][AUTOENCODER_NET]  # FeatureNet: encoder.* and decoder.*
    state = {k.removeprefix("encoder."): v for k, v in weights.items() if k.startswith("encoder.")}
    extractor.encoder.load_state_dict(state)


def half_intrinsics(K: Tensor) -> tuple[Tensor, Tensor]:
    """``(B, 4, 4)`` pixel intrinsics of the H x W image -> those of the H/2 x W/2 feature map
    (rows 0 and 1 halved, as FeatDepth does) and their pseudo-inverse."""
    K_half = K.clone()
    K_half[:, :2] = K_half[:, :2] / 2
    return K_half, invert_intrinsics(K_half)


def feature_metric_term(
    extractor: nn.Module,
    disp0: Tensor,
    target: Tensor,
    sources: Sequence[Tensor],
    poses: Sequence[Tensor],
    K: Tensor,
    min_depth: float,
    max_depth: float,
) -> Tensor:
    """FeatDepth's feature-metric loss of one batch, before its weight.

    The scale-0 disparity is resized bilinearly (``align_corners=False``) to the level-0 feature
    size H/2 x W/2 and turned into depth; the sources' features are warped into the target view
    with the halved intrinsics (float32, autocast off) and compared with the target's features.

    Args:
        extractor: image -> level-0 features (:class:`FrozenExtractor`, possibly wrapped); it is
            called on the target and on each source separately (FeatDepth's batch statistics in
            ``"train"`` BatchNorm mode).
        disp0: ``(B, 1, h, w)`` sigmoid disparity of scale 0.
        target: ``(B, 3, H, W)`` plain target image; ``sources`` one plain image per source.
        poses: one ``cam_T_cam`` per source, ``(B, 4, 4)`` or broadcastable.
        K: ``(B, 4, 4)`` pixel intrinsics of the H x W images.
        min_depth, max_depth: bounds of :func:`train.geometry.disp_to_depth`.

    Returns:
        Scalar loss (float32).
    """
    target_f = extractor(target).float()
    source_f = [extractor(s).float() for s in sources]
    with torch.autocast(device_type=target.device.type, enabled=False):
        batch, n_src = target.shape[0], len(source_f)
        disp = F.interpolate(
            disp0.float(), target_f.shape[-2:], mode="bilinear", align_corners=False
        )
        _, depth = disp_to_depth(disp, min_depth, max_depth)
        K_half, inv_K_half = half_intrinsics(K.float().expand(batch, 4, 4))
        T = torch.cat([p.float().expand(batch, 4, 4) for p in poses], dim=0)
        warped = warp(torch.cat(source_f, dim=0), depth, K_half.repeat(n_src, 1, 1), inv_K_half, T)
        return feature_metric_loss(target_f, warped.chunk(n_src, dim=0))

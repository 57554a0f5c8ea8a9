"""The module ``predict`` runs and ``export`` writes: a method's
:class:`~train.methods.Predictor` times its fixed scale factor (1 for median-scaled methods, whose
depth stays relative), with the predictor's inputs as positional arguments.

* :class:`DepthModel`: RGB ``image`` ``(B, 3, H, W)`` in [0, 1] -> depth ``(B, 1, h, w)``;
* :class:`PairDepthModel` (two-frame predictors, ManyDepth): ``(previous, image, intrinsics)``
  with ``intrinsics`` ``(B, 4, 4)`` pixel intrinsics of the H x W input.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from train.geometry import kitti_intrinsics, scale_intrinsics
from train.methods import Predictor


class DepthModel(nn.Module):
    """RGB ``(B, 3, H, W)`` float in [0, 1] -> depth ``(B, 1, h, w)`` at network resolution: the
    method's predictor times its fixed scale factor (1 for median-scaled methods, whose depth
    stays relative). What ``predict`` runs and ``export`` writes."""

    def __init__(self, predictor: Predictor) -> None:
        super().__init__()
        self.predictor = predictor
        self.inputs: tuple[str, ...] = tuple(predictor.inputs)
        s = predictor.scaling
        self.metric = not s.median
        self.factor = float(s.factor) if self.metric else 1.0

    def forward(self, image: Tensor) -> Tensor:
        return self.predictor(image).float() * self.factor

    def describe(self) -> dict[str, object]:
        """Units and scaling rule of the output, for the companion JSON files."""
        if self.metric:
            rule = f"metric: the network's depth x {self.factor:g} (fixed scale, no median)"
        else:
            rule = (
                "relative: per-image median scaling; multiply by median(true depth) / "
                "median(predicted depth) for metres"
            )
        return {"units": "metres" if self.metric else "relative", "scaling": rule}


class PairDepthModel(DepthModel):
    """``(previous, image, intrinsics)`` -> depth: a two-frame predictor (module docstring)."""

    def forward(self, previous: Tensor, image: Tensor, intrinsics: Tensor) -> Tensor:  # type: ignore[override]
        return self.predictor(previous, image, intrinsics).float() * self.factor


PAIR_INPUTS = ("previous", "image", "intrinsics")


def depth_model(predictor: Predictor) -> DepthModel:
    """The :class:`DepthModel` (or :class:`PairDepthModel`) of ``predictor``, in eval mode.

    Raises:
        ValueError: a predictor with another set of inputs.
    """
    inputs = tuple(predictor.inputs)
    if inputs == ("image",):
        return DepthModel(predictor).eval()
    if inputs == PAIR_INPUTS:
        return PairDepthModel(predictor).eval()
    raise ValueError(f"no depth model for a predictor with inputs {inputs}")


def example_inputs(
    model: DepthModel, batch: int, size: tuple[int, int], device: torch.device
) -> tuple[Tensor, ...]:
    """Fixed example arguments of ``model`` (``torch.rand`` with seed 0; intrinsics: the
    model's fixed camera, else KITTI's normalised one at ``size``), for export and parity."""
    generator = torch.Generator().manual_seed(0)
    values = {}
    for name in model.inputs:
        if name == "intrinsics":
            K = model.predictor.fixed_intrinsics(*size)
            if K is None:
                K = scale_intrinsics(kitti_intrinsics(), *size)
            values[name] = K.expand(batch, 4, 4).contiguous()
        else:
            values[name] = torch.rand((batch, 3, *size), generator=generator)
    return tuple(values[name].to(device) for name in model.inputs)

"""Export a checkpoint's depth model (``cli.py export``): TorchScript, ONNX or TensorRT.

The exported module is :class:`train.eval.depth_model.DepthModel`, exactly what ``predict``
runs before it resizes to the input's resolution: float RGB ``(B, 3, H, W)`` in [0, 1] -> depth
``(B, 1, h, w)`` at the network's output resolution (``H x W`` for Monodepth2; two-frame
models, ManyDepth, take ``(previous, image, intrinsics)``:
:class:`~train.eval.depth_model.PairDepthModel`), with the method's fixed scale factor applied,
so metres for metric methods (Monodepth2 trained with stereo: x5.4) and relative depth for
median-scaled ones. ``OUT.json`` beside the file states the units, the scaling rule and the
inputs. No flip post-processing (a ``predict`` option). The model is exported for inference:
its parameters do not require gradients and a TorchScript file is frozen
(:func:`torch.jit.freeze`: weights inlined as constants), so its outputs never require grad.

Every export is checked before it replaces ``OUT``: the written file is loaded back and run on
fixed inputs (``torch.rand`` with seed 0, :func:`~train.eval.depth_model.example_inputs`)
against the eager model; the largest element-wise relative error must stay within
:data:`TOLERANCES` (TorchScript and ONNX through onnxruntime's CPU provider: 1e-4). TensorRT
needs CUDA and ``torch-tensorrt`` (``pip install 'depthkit[tensorrt]'``); it is compiled for
batch 1 at the given size, fp32 or fp16.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipelines.loader import resolve_device
from train.eval.depth_model import DepthModel, depth_model, example_inputs
from train.eval.files import check_output_path
from train.eval.predict import check_network_size

FORMATS = ("torchscript", "onnx", "tensorrt")
PRECISIONS = ("fp32", "fp16")
TOLERANCES = {
    ("torchscript", "fp32"): 1e-4,
    ("onnx", "fp32"): 1e-4,
    ("tensorrt", "fp32"): 1e-3,  # TensorRT may pick TF32 kernels
    ("tensorrt", "fp16"): 2e-2,
}
PARITY_BATCH = 2  # TorchScript / ONNX are checked at batch 2 (their batch axis is dynamic)


@dataclass
class ExportReport:
    """What :func:`export_checkpoint` wrote and how closely it matches the eager model."""

    path: str
    format: str
    precision: str
    size: tuple[int, int]
    units: str
    max_rel_error: float
    tolerance: float
    seconds: float

    def __str__(self) -> str:
        h, w = self.size
        return (
            f"exported {self.format} ({self.precision}) to {self.path}: RGB (B, 3, {h}, {w}) in "
            f"[0, 1] -> depth (B, 1, h, w) in {self.units}; parity against eager on a fixed "
            f"input: max relative error {self.max_rel_error:.2e} (tolerance {self.tolerance:g}) "
            f"in {self.seconds:.1f} s"
        )


def relative_error(output: torch.Tensor | np.ndarray, reference: torch.Tensor) -> float:
    """Largest element-wise ``|output - reference| / |reference|``."""
    out = torch.as_tensor(np.asarray(output) if isinstance(output, np.ndarray) else output)
    ref = reference.detach().float().cpu()
    out = out.detach().float().cpu()
    if out.shape != ref.shape:
        raise ValueError(f"exported output has shape {tuple(out.shape)}, eager {tuple(ref.shape)}")
    return float(((out - ref).abs() / ref.abs().clamp_min(1e-12)).max())


def check_export_options(fmt: str, precision: str, device: torch.device) -> None:
    """Refuse an unknown format or precision, fp16 outside TensorRT, and formats whose
    packages (or CUDA) are missing - before anything is loaded or written."""
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be fp32 or fp16, not {precision!r}")
    if precision == "fp16" and fmt != "tensorrt":
        raise ValueError("--precision fp16 is for --format tensorrt; TorchScript and ONNX are fp32")
    if fmt == "onnx":
        for package in ("onnx", "onnxruntime", "onnxscript"):
            _require(package, "pip install 'depthkit[export]'")
    if fmt == "tensorrt":
        if device.type != "cuda":
            raise ValueError("TensorRT export needs a CUDA device (none available or --device cpu)")
        _require("torch_tensorrt", "pip install 'depthkit[tensorrt]'")


def export_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    fmt: str = "torchscript",
    *,
    height: int | None = None,
    width: int | None = None,
    precision: str = "fp32",
    device: str | None = None,
    overrides: Sequence[str] = (),
) -> ExportReport:
    """``cli.py export``: write the checkpoint's :class:`DepthModel` as ``fmt`` to ``out`` (and
    ``out.json``), checked against eager (module docstring).

    Raises:
        ValueError: bad checkpoint, size not a multiple of 32, unknown format or precision,
            missing package or CUDA, or a parity check that fails (``out`` is then untouched).
    """
    from train.eval.evaluate import load_checkpoint_method

    start = time.perf_counter()
    wanted = device or ("cuda" if fmt == "tensorrt" and torch.cuda.is_available() else "cpu")
    dev = resolve_device(wanted)
    check_export_options(fmt, precision, dev)
    method, nets = load_checkpoint_method(checkpoint, dev, overrides)
    size = check_network_size(height or method.config.height, width or method.config.width)
    model = depth_model(method.predictor(nets)).eval().requires_grad_(False)
    out = check_output_path(out, "file")
    error = export_model(model, out, fmt, size, precision, dev)
    tolerance = TOLERANCES[(fmt, precision)]
    info = {
        "checkpoint": str(checkpoint),
        "method": method.config.method,
        "format": fmt,
        "precision": precision,
        "input": _input_text(model, size),
        "output": "depth (B, 1, h, w) at the network's output resolution",
        **model.describe(),
        "max_rel_error": error,
    }
    Path(f"{out}.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return ExportReport(
        path=str(out),
        format=fmt,
        precision=precision,
        size=size,
        units=str(model.describe()["units"]),
        max_rel_error=error,
        tolerance=tolerance,
        seconds=time.perf_counter() - start,
    )


@torch.no_grad()
def export_model(
    model: DepthModel,
    out: Path,
    fmt: str,
    size: tuple[int, int],
    precision: str = "fp32",
    device: torch.device | None = None,
) -> float:
    """Write ``model`` as ``fmt`` to ``out`` and return the parity error of the written file.

    The file is written under a temporary name, loaded back and checked; only a file within
    tolerance replaces ``out``.
    """
    device = device or torch.device("cpu")
    batch = 1 if fmt == "tensorrt" else PARITY_BATCH
    x = example_inputs(model, batch, size, device)
    reference = model(*x)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.stem}.tmp{out.suffix}")
    try:
        if fmt == "torchscript":
            error = _torchscript(model, x, reference, tmp)
        elif fmt == "onnx":
            error = _onnx(model, x, reference, tmp)
        else:
            error = _tensorrt(model, x, reference, tmp, precision)
        tolerance = TOLERANCES[(fmt, precision)]
        if not error <= tolerance:
            raise ValueError(
                f"{fmt} export does not match the eager model: max relative error {error:.2e} "
                f"> {tolerance:g} ({out} left as it was)"
            )
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return error


def _input_text(model: DepthModel, size: tuple[int, int]) -> str:
    """The exported module's inputs, for ``OUT.json``."""
    image = f"float32 RGB (B, 3, {size[0]}, {size[1]}) in [0, 1]"
    if model.inputs == ("image",):
        return image
    texts = {
        "previous": f"previous: the frame before ({image}; black when there is none)",
        "image": f"image: {image}",
        "intrinsics": f"intrinsics: float32 (B, 4, 4) pixel intrinsics of the {size[0]}x"
        f"{size[1]} input",
    }
    return "; ".join(texts[name] for name in model.inputs)


def _torchscript(
    model: DepthModel, x: tuple[torch.Tensor, ...], reference: torch.Tensor, path: Path
) -> float:
    with warnings.catch_warnings():
        # TorchScript is deprecated in favour of torch.export, and the networks' size checks
        # become constants of the trace (the size is fixed by the export): both are expected.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, x, check_trace=False)
        frozen = torch.jit.freeze(traced)  # weights as constants: outputs need no grad
        torch.jit.save(frozen, str(path))
        loaded = torch.jit.load(str(path), map_location=x[0].device)
    return relative_error(loaded(*x), reference)


def _onnx(
    model: DepthModel, x: tuple[torch.Tensor, ...], reference: torch.Tensor, path: Path
) -> float:
    import onnxruntime

    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.onnx.export(
        model,
        x,
        str(path),
        input_names=list(model.inputs),
        output_names=["depth"],
        dynamic_shapes={name: {0: batch} for name in model.inputs},
        dynamo=True,
        external_data=False,
        verbose=False,
    )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {name: value.cpu().numpy() for name, value in zip(model.inputs, x, strict=True)}
    (output,) = session.run(["depth"], feed)
    return relative_error(output, reference)


def _tensorrt(
    model: DepthModel,
    x: tuple[torch.Tensor, ...],
    reference: torch.Tensor,
    path: Path,
    precision: str,
) -> float:
    import torch_tensorrt

    dtype = torch.float16 if precision == "fp16" else torch.float32
    compiled = torch_tensorrt.compile(
        model,
        ir="dynamo",
        inputs=[torch_tensorrt.Input(tuple(v.shape), dtype=torch.float32) for v in x],
        enabled_precisions={dtype},
    )
    torch_tensorrt.save(compiled, str(path), inputs=list(x))
    loaded = torch.export.load(str(path)).module()
    return relative_error(loaded(*x), reference)


def _require(package: str, hint: str) -> None:
    import importlib.util

    if importlib.util.find_spec(package) is None:
        raise ValueError(f"{package} is not installed ({hint})")

"""export: TorchScript and ONNX parity with the eager DepthModel for every registered method (a
preset of each, picked up automatically), what the command prints, and its refusals. TensorRT
needs CUDA and torch-tensorrt: skipped here otherwise, with the reason shown."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import one_error_line, run_cli, tiny_checkpoint
from train.eval import export as export_module
from train.eval.depth_model import DepthModel, depth_model, example_inputs
from train.eval.evaluate import load_checkpoint_method
from train.eval.export import export_checkpoint, relative_error
from train.methods import depth_presets, methods

pytestmark = pytest.mark.slow  # every test exports (ONNX through the dynamo exporter)

HAS_CUDA = torch.cuda.is_available()
HAS_TRT = importlib.util.find_spec("torch_tensorrt") is not None


def _preset_of(method: str) -> str:
    return depth_presets(method)[0]


@pytest.fixture(scope="module")
def method_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export_ckpt")
    return {m: tiny_checkpoint(root / f"{m}.pt", _preset_of(m)) for m in sorted(methods())}


def _eager(checkpoint: Path) -> DepthModel:
    method, nets = load_checkpoint_method(checkpoint)
    return depth_model(method.predictor(nets))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
@pytest.mark.parametrize("method", sorted(methods()))
def test_export_matches_eager(method: str, fmt: str, method_checkpoints, tmp_path: Path) -> None:
    out = tmp_path / ("model.onnx" if fmt == "onnx" else "model.pt")
    report = export_checkpoint(method_checkpoints[method], out, fmt)
    print(f"{method} {fmt}: max relative error {report.max_rel_error:.3e}")
    assert report.max_rel_error <= 1e-4 and report.tolerance == 1e-4
    info = json.loads(Path(f"{out}.json").read_text())
    assert info["units"] in ("metres", "relative") and info["format"] == fmt
    # another batch size than the one exported with: the batch axis is dynamic
    eager = _eager(method_checkpoints[method])
    x = example_inputs(eager, 3, (64, 96), torch.device("cpu"))
    with torch.no_grad():
        reference = eager(*x)
        if fmt == "torchscript":
            output = torch.jit.load(str(out))(*x)
        else:
            import onnxruntime

            session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
            feed = {name: v.numpy() for name, v in zip(eager.inputs, x, strict=True)}
            output = session.run(None, feed)[0]
    assert relative_error(output, reference) <= 1e-4
    assert tuple(np.shape(output))[:2] == (3, 1)
    if fmt == "torchscript":  # frozen for inference: outside no_grad too, nothing needs grad
        assert not torch.jit.load(str(out))(*x).requires_grad


def test_cli_export_prints_the_tolerance_met(method_checkpoints, tmp_path: Path, capsys) -> None:
    ckpt = method_checkpoints["monodepth2"]
    out = tmp_path / "m.ts"
    assert run_cli(["export", str(ckpt), str(out), "--format", "torchscript"]) == 0
    printed = capsys.readouterr().out
    assert "max relative error" in printed and "tolerance 0.0001" in printed
    assert out.is_file()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--height", "70"], "multiples of 32"),
        (["--width", "100"], "multiples of 32"),
        (["--precision", "fp16"], "tensorrt"),
    ],
)
def test_bad_export_options_are_one_line(extra, needle, method_checkpoints, tmp_path, capsys):
    out = tmp_path / "m.pt"
    out.write_bytes(b"an earlier export")
    args = ["export", str(method_checkpoints["monodepth2"]), str(out), *extra]
    assert run_cli(args) == 1
    assert needle in one_error_line(capsys.readouterr().err)
    assert out.read_bytes() == b"an earlier export"


def test_failed_parity_leaves_the_earlier_file(method_checkpoints, tmp_path, monkeypatch) -> None:
    out = tmp_path / "m.pt"
    out.write_bytes(b"an earlier export")
    monkeypatch.setitem(export_module.TOLERANCES, ("torchscript", "fp32"), -1.0)
    with pytest.raises(ValueError, match="does not match the eager model"):
        export_checkpoint(method_checkpoints["monodepth2"], out, "torchscript")
    assert out.read_bytes() == b"an earlier export"
    assert not list(tmp_path.glob("*.tmp*"))


@pytest.mark.skipif(HAS_CUDA, reason="checks the refusal on a machine without CUDA")
def test_tensorrt_without_cuda_is_one_line(method_checkpoints, tmp_path, capsys) -> None:
    args = ["export", str(method_checkpoints["monodepth2"]), str(tmp_path / "m.ep")]
    assert run_cli([*args, "--format", "tensorrt"]) == 1
    assert "CUDA" in one_error_line(capsys.readouterr().err)


@pytest.mark.skipif(not HAS_TRT, reason="torch-tensorrt is not installed (depthkit[tensorrt])")
@pytest.mark.skipif(not HAS_CUDA, reason="TensorRT export needs CUDA (none on this machine)")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_matches_eager(precision: str, method_checkpoints, tmp_path: Path) -> None:
    report = export_checkpoint(
        method_checkpoints["monodepth2"], tmp_path / "m.ep", "tensorrt", precision=precision
    )
    print(f"tensorrt {precision}: max relative error {report.max_rel_error:.3e}")
    assert report.max_rel_error <= report.tolerance

"""benchmarks/bench_gpu.py: one line and exit 0 without CUDA; --cpu-smoke runs every part that
needs no GPU (training step, loader, masks, predict / TorchScript / ONNX latency) at tiny sizes."""

from __future__ import annotations

import pytest
import torch

from benchmarks import bench_gpu


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_without_cuda_one_line_and_success(capsys) -> None:
    assert bench_gpu.main([]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "no CUDA" in out[0]


@pytest.mark.slow
def test_cpu_smoke_prints_one_table(capsys) -> None:
    assert bench_gpu.main(["--cpu-smoke"]) == 0
    out = capsys.readouterr().out
    assert out.count("measurement") == 1 and "failed" not in out
    rows = ("train monodepth2-m 96x128 b2", "train featdepth-m 96x128 b2", "train monodepth2-fm-m")
    rows += (
        "train litemono-m 96x128 b2",
        "latency litemono-m TorchScript",
        "latency litemono-m ONNX",
        "train manydepth-m 96x128 b2",
    )
    for row in (*rows, "loader into the device", "DeepLabv3 masks"):
        assert row in out
    for row in ("latency predict (eager fp32)", "latency TorchScript", "latency ONNX"):
        assert row in out
    assert "n/a (needs CUDA)" in out  # TensorRT

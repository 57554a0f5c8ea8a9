"""The training header: run settings, departures from the reference, ``--exact`` and SyncBN."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import method_parts, run_cli
from train.engine.config import TrainConfig, apply_overrides
from train.engine.header import exact_warnings, header_lines, store_recipe
from train.engine.runtime import build_runtime
from train.methods import config_from_dict, preset

TINY = {"pretrained": False, "height": 64, "width": 96, "batch_size": 2, "device": "cpu"}


def fake_store(resize: str | None, images: str | None, size=(192, 640), split="eigen_zhou"):
    """What the header reads of a KITTI store (None: a store made before these were recorded)."""
    camera = {} if resize is None else {"resize_method": resize}
    source = {"split_file": f"/data/splits/{split}/train_files.txt"}
    if images is not None:
        source["images"] = {"ext": images}
    return SimpleNamespace(dataset="kitti-raw", camera=camera, source=source, image_size=size,
                           path="train.zarr", n_samples=39810)  # fmt: skip


def runtime_of(config: TrainConfig):
    method, nets, _ = method_parts(config)
    return build_runtime(config, method, nets, torch.device("cpu"))


def test_exact_is_float32_without_compile() -> None:
    config = apply_overrides(preset("monodepth2-m"), {"exact": True, "compile": True})
    assert config.exact and not config.amp and not config.compile
    assert config_from_dict(config.to_dict()) == config
    assert not apply_overrides(preset("monodepth2-m"), ["exact=false"]).exact
    assert preset("monodepth2-m").amp  # bf16 autocast stays the default


def test_store_recipe_of_old_and_new_stores() -> None:
    assert store_recipe(fake_store(None, None)) == {
        "resize": "area", "images": "png", "size": (192, 640), "split": "eigen_zhou"
    }  # fmt: skip
    assert store_recipe(fake_store("lanczos", "jpg"))["resize"] == "lanczos"


def test_exact_warns_with_the_reason() -> None:
    config = apply_overrides(preset("monodepth2-m"), {"exact": True})
    assert exact_warnings(config, fake_store("lanczos", "jpg")) == []
    assert exact_warnings(apply_overrides(config, {"exact": False}), fake_store(None, None)) == []
    old = exact_warnings(config, fake_store(None, None, size=(96, 320)))
    assert len(old) == 3 and all(w.startswith("warning: --exact: ") for w in old)
    assert "--resize lanczos" in old[0] and "INTER_AREA" in old[0]
    assert "png files" in old[1] and ".jpg" in old[1] and "quality 92" in old[1]
    assert "96x320" in old[2] and "--size 192x640" in old[2]
    mixed = exact_warnings(config, fake_store("lanczos", "mixed"))
    assert len(mixed) == 1 and "mixed files" in mixed[0]
    nyu = SimpleNamespace(**{**vars(fake_store("area", "png")), "dataset": "nyu-raw"})
    assert "no reference recipe for nyu-raw" in exact_warnings(config, nyu)[0]


def test_header_lists_departures_from_the_reference() -> None:
    config = apply_overrides(preset("monodepth2-s"), TINY | {"lr": 2e-4, "exact": True})
    lines = header_lines(config, fake_store(None, None), runtime_of(config))
    text = "\n".join(lines)
    assert lines[0].startswith("training monodepth2 (preset monodepth2-s) on train.zarr: 39,810")
    assert "--batch-size 2 per process, global batch 2; float32 (--exact" in lines[1]
    assert "differs from the reference setting of monodepth2-s:" in text
    for item in (
        "pretrained False (reference: True)",
        "height 64 (reference: 192)",
        "lr 0.0002 (reference: 0.0001)",
        "store resized with cv2.INTER_AREA",
        "store made from png files",
        "store images 192x640 resized to 64x96 on the device",
        "scales 1-3 made on the device",
        "trained on split eigen_zhou (reference for monodepth2-s: eigen_full)",
    ):
        assert f"  - {item}" in text, item
    assert "bf16" not in text and "torch.compile" not in text  # --exact, on the CPU
    assert lines[-3].startswith("warning: --exact:")


def test_header_under_ddp_and_a_matching_run() -> None:
    config = apply_overrides(preset("monodepth2-m"), {"device": "cpu", "pretrained": True})
    store = fake_store("lanczos", "jpg")
    rt = SimpleNamespace(amp=False, device=torch.device("cpu"),
                         augment=SimpleNamespace(config=SimpleNamespace(scales=1)))  # fmt: skip
    assert header_lines(config, store, rt)[-1] == (
        "matches the reference setting of monodepth2-m in every choice checked"
    )
    four = "\n".join(header_lines(config, store, rt, world_size=4))
    assert "--batch-size 12 per process, global batch 48" in four
    assert "global batch 48 = 12 per process x 4 (reference: 12 on one GPU; --batch-size 3" in four
    assert "batch norm statistics over 12 samples per process" in four and "--sync-bn" in four
    synced = apply_overrides(config, {"batch_size": 3, "sync_bn": True})
    text = "\n".join(header_lines(synced, store, rt, world_size=4))
    assert "SyncBN" in text and "global batch 12;" in text
    assert "batch norm statistics" not in text and "global batch 12 =" not in text
    amp = SimpleNamespace(**{**vars(rt), "amp": True})
    assert "bf16 autocast (reference: float32; --exact or --no-amp)" in "\n".join(
        header_lines(config, store, amp)
    )


def test_sync_bn_converts_batch_norm_and_needs_cuda(tmp_path: Path) -> None:
    config = apply_overrides(preset("monodepth2-m"), TINY | {"sync_bn": True})
    method, nets, _ = method_parts(config)
    with pytest.raises(ValueError, match="--sync-bn needs CUDA"):
        build_runtime(config, method, nets, torch.device("cpu"), distributed=True)
    # without DDP nothing is converted (one process: plain batch norm is the same)
    build_runtime(config, method, nets, torch.device("cpu"))
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in nets.named()["depth"].modules())
    depth = nets.named()["depth"]
    params = [id(p) for p in depth.parameters()]
    keys = list(depth.state_dict())
    converted = torch.nn.SyncBatchNorm.convert_sync_batchnorm(depth)
    assert converted is depth and [id(p) for p in depth.parameters()] == params
    assert list(depth.state_dict()) == keys
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in depth.modules())


def test_cli_train_prints_the_header(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "train.zarr"
    write_toy_store(store, ToySpec(n_sequences=1, frames_per_sequence=6, image_size=(64, 96),
                                   chunk=4))  # fmt: skip
    args = ["train", "--preset", "monodepth2-m", "--train", str(store), "--out",
            str(tmp_path / "run"), "--max-steps", "1", "--batch-size", "2", "--height", "64",
            "--width", "96", "--workers", "0", "--no-pretrained", "--device", "cpu",
            "--exact"]  # fmt: skip
    assert run_cli(args) == 0
    out = capsys.readouterr().out
    assert "training monodepth2 (preset monodepth2-m)" in out
    assert "global batch 2; float32 (--exact" in out
    assert "warning: --exact: the store was resized with area" in out
    assert run_cli(["train", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "Samples per step and process: under torchrun the global batch" in help_text
    assert "--batch-size is per process" in help_text and "--sync-bn" in help_text

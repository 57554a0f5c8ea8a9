"""import litemono: a release folder in Lite-Mono's own key layout (faked here with torch.save)
becomes a checkpoint that predict (equal to test_simple.py's preprocessing and output), eval,
export (ONNX / TorchScript within 1e-4 of eager) and train --init read; wrong folders are one
line."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.models import resnet18

from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import method_parts, one_error_line, run_cli
from train.engine.checkpoint import init_networks, read_checkpoint
from train.engine.config import apply_overrides
from train.eval.evaluate import load_checkpoint_method
from train.eval.export import export_checkpoint
from train.eval.release_litemono import import_litemono, release_preset
from train.methods import preset
from train.models import build_network
from train.models.litemono_encoder import VARIANTS
from train.models.litemono_weights import infer_variant

SIZE = (64, 192)  # (height, width) of the fake release


def informative(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Weights that make every branch matter (as spec 3.1 made the vectors): layer scales and
    temperatures of order 0.1-1, decoder convs at Kaiming scale, random BN statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf in ("gamma", "gamma_xca"):
                p.copy_(0.05 + 0.45 * torch.rand(p.shape, generator=g))
            elif leaf == "temperature":
                p.copy_(0.5 + 1.5 * torch.rand(p.shape, generator=g))
            elif name.startswith("decoder.") and p.dim() == 4:
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                p.copy_(torch.randn(p.shape, generator=g) * math.sqrt(2 / fan_in))
            elif name.startswith("decoder.") and leaf == "bias":
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.6 + 0.8 * torch.rand(m.running_var.shape, generator=g))
    return net


def write_release(
    folder: Path, variant: str = "lite-mono-tiny", pose: bool = True
) -> torch.nn.Module:
    """A Lite-Mono release folder (its own key layout, ``height``/``width`` in encoder.pth)."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(1)
    net = informative(
        build_network("litemono_depth", variant=variant, height=SIZE[0], width=SIZE[1])
    )
    encoder = {**net.encoder.state_dict(), "height": SIZE[0], "width": SIZE[1], "use_stereo": False}
    torch.save(encoder, folder / "encoder.pth")
    torch.save(net.decoder.state_dict(), folder / "depth.pth")
    if pose:
        resnet = {f"encoder.{k}": v for k, v in resnet18(weights=None).state_dict().items()}
        resnet["encoder.conv1.weight"] = torch.randn(64, 6, 7, 7)  # with the unused fc
        shapes = [(256, 512, 1, 1), (256, 256, 3, 3), (256, 256, 3, 3), (12, 256, 1, 1)]
        decoder = {f"net.{i}.weight": torch.randn(s) * 0.01 for i, s in enumerate(shapes)}
        decoder |= {f"net.{i}.bias": torch.zeros(s[0]) for i, s in enumerate(shapes)}
        torch.save(resnet, folder / "pose_encoder.pth")
        torch.save(decoder, folder / "pose.pth")
    return net.eval()


def reference_test_simple(net: torch.nn.Module, image_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Lite-Mono's test_simple.py on one image: PIL open + RGB, LANCZOS to the encoder size,
    to_tensor, forward, ``disp`` bilinearly to the original size; returns (scaled disparity at
    the network size, scaled disparity at the original size) (disp_to_depth(0.1, 100))."""
    picture = Image.open(image_path).convert("RGB")
    width, height = picture.size
    resized = picture.resize((SIZE[1], SIZE[0]), Image.LANCZOS)
    x = torch.from_numpy(np.asarray(resized).copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        disp = net.decoder(net.encoder(x)).disps[0]
        full = F.interpolate(disp, (height, width), mode="bilinear", align_corners=False)
    lo, hi = 1 / 100.0, 1 / 0.1
    return (lo + (hi - lo) * disp)[0, 0].numpy(), (lo + (hi - lo) * full)[0, 0].numpy()


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, torch.nn.Module]:
    root = tmp_path_factory.mktemp("litemono_release")
    net = write_release(root / "lite-mono-tiny_192x64")
    out = root / "imported.pt"
    report = import_litemono(root / "lite-mono-tiny_192x64", out)
    assert report.variant == "lite-mono-tiny" and report.networks == ["depth", "pose"]
    return root, out, net


def test_variants_are_inferred_from_the_weights() -> None:
    for variant in VARIANTS:
        state = build_network("litemono_encoder", variant=variant).state_dict()
        assert infer_variant(state) == variant
    assert release_preset("lite-mono-8m", 320, 1024) == "litemono-8m-1024-m"
    assert release_preset("lite-mono", 192, 640) == "litemono-m"
    assert release_preset("lite-mono-small", 96, 320) == "litemono-small-m"


def test_cli_import_writes_a_litemono_checkpoint(tmp_path: Path, capsys) -> None:
    write_release(tmp_path / "rel", pose=False)
    out = tmp_path / "c.pt"
    assert run_cli(["import", "litemono", str(tmp_path / "rel"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "preset litemono-tiny-m, lite-mono-tiny, 64x192, networks: depth" in printed
    assert "depth-only" in printed
    config = read_checkpoint(out)["config"]
    assert (config["height"], config["width"], config["params"]["variant"]) == (
        64,
        192,
        "lite-mono-tiny",
    )


def test_predict_equals_test_simple(imported, tmp_path: Path) -> None:
    _, out, net = imported
    rng = np.random.default_rng(0)
    picture = cv2.GaussianBlur(rng.integers(0, 256, (150, 410, 3), dtype=np.uint8), (0, 0), 3)
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), picture)
    assert run_cli(["predict", str(out), str(image), "--out", str(tmp_path / "pred")]) == 0
    ours = np.load(tmp_path / "pred" / "photo_depth.npy")
    small, full = reference_test_simple(net, image)
    assert ours.shape == full.shape == (150, 410)
    np.testing.assert_allclose(1.0 / ours, full, rtol=1e-5, atol=0)
    assert float(full.std()) > 0.05 * float(full.mean())  # a picture, not a constant
    # at the network size: the predictor's depth is 1 / test_simple's scaled disparity
    method, nets = load_checkpoint_method(out)
    from train.eval.predict import network_image

    x = network_image(
        cv2.cvtColor(picture, cv2.COLOR_BGR2RGB), SIZE, torch.device("cpu"), "lanczos"
    )
    with torch.no_grad():
        depth = method.predictor(nets).eval()(x)[0, 0].numpy()
    np.testing.assert_allclose(1.0 / depth, small, rtol=1e-6, atol=0)


@pytest.mark.slow
def test_eval_export_and_init_read_the_import(imported, tmp_path: Path, capsys) -> None:
    root, out, net = imported
    store = root / "test.zarr"
    if not store.exists():
        write_toy_store(store, ToySpec(n_sequences=1, frames_per_sequence=4, image_size=SIZE))
    assert run_cli(["eval", str(out), str(store), "--device", "cpu"]) == 0
    assert "abs_rel" in capsys.readouterr().out
    for fmt, name in (("torchscript", "m.pt"), ("onnx", "m.onnx")):
        report = export_checkpoint(out, tmp_path / name, fmt)
        assert report.max_rel_error <= 1e-4, (fmt, report.max_rel_error)
    config = apply_overrides(
        preset("litemono-tiny-m"), {"pretrained": False, "height": 64, "width": 192}
    )
    _, fresh, _ = method_parts(config)
    assert init_networks(out, fresh, "litemono") == []
    for key, value in net.state_dict().items():
        assert torch.equal(fresh["depth"].state_dict()[key], value), key


def test_train_init_from_the_import(imported, tmp_path: Path, capsys) -> None:
    root, out, _ = imported
    store = tmp_path / "train.zarr"
    write_toy_store(store, ToySpec(n_sequences=1, frames_per_sequence=4, image_size=SIZE))
    args = [
        "train",
        "--preset",
        "litemono-tiny-m",
        "--train",
        str(store),
        "--out",
        str(tmp_path / "r"),
    ]
    args += ["--init", str(out), "--no-pretrained", "--height", "64", "--width", "192"]
    args += ["--max-steps", "1", "--batch-size", "2", "--workers", "0", "--device", "cpu"]
    assert run_cli(args) == 0
    printed = capsys.readouterr().out
    assert f"networks from {out}: depth, pose" in printed and "trained 1 steps" in printed
    assert "parameters: depth 2,147,659 (encoder 1,955,192 + decoder 192,467)" in printed


@pytest.mark.parametrize(
    "case", ["no_folder", "no_depth", "not_litemono", "bad_variant", "wrong_variant"]
)
def test_wrong_release_is_one_line(case: str, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "rel"
    extra: list[str] = []
    if case != "no_folder":
        write_release(folder, pose=False)
    if case == "no_depth":
        (folder / "depth.pth").unlink()
    if case == "not_litemono":
        torch.save(
            {"encoder.conv1.weight": torch.zeros(1), "height": 64, "width": 192},
            folder / "encoder.pth",
        )
    if case == "bad_variant":
        extra = ["--variant", "lite-mono-xl"]
    if case == "wrong_variant":
        extra = ["--variant", "lite-mono-8m"]
    code = run_cli(["import", "litemono", str(folder), "--out", str(tmp_path / "c.pt"), *extra])
    assert code != 0
    line = one_error_line(capsys.readouterr().err)
    assert {
        "no_folder": "not a folder",
        "no_depth": "no depth.pth",
        "not_litemono": "not a Lite-Mono encoder",
        "bad_variant": "--variant must be one of",
        "wrong_variant": "does not fit",
    }[case] in line, line
    assert not (tmp_path / "c.pt").exists()

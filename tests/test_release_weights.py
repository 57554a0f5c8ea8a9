"""import monodepth2 / featdepth: published weights (faked here in their own key layouts) become
depthkit checkpoints that eval, predict, export and train --init read; wrong files are refused."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torchvision.models import resnet18, resnet50

from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import method_parts, one_error_line, run_cli, tiny_checkpoint
from tests.test_networks import _monodepth2_depth_decoder_state
from train.engine.checkpoint import init_networks, read_checkpoint
from train.engine.config import apply_overrides
from train.eval.evaluate import load_checkpoint_method
from train.methods import methods, preset
from train.models import build_network
from train.models.featdepth_weights import depth_layers, featdepth_depth_state
from train.models.monodepth2_weights import resnet_depth


def write_monodepth2_release(
    folder: Path, *, pose: bool = True, use_stereo: bool = False, size=(64, 96)
) -> dict[str, dict]:
    """A fake monodepth2 release folder (ResNet-18, random weights); returns its state dicts."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(3)
    resnet = {f"encoder.{k}": v for k, v in resnet18(weights=None).state_dict().items()}
    encoder = {**resnet, "height": size[0], "width": size[1], "use_stereo": use_stereo}
    depth = _monodepth2_depth_decoder_state((64, 64, 128, 256, 512))
    torch.save(encoder, folder / "encoder.pth")
    torch.save(depth, folder / "depth.pth")
    files = {"encoder": encoder, "depth": depth}
    if pose:
        pose_encoder = dict(resnet)
        pose_encoder["encoder.conv1.weight"] = torch.randn(64, 6, 7, 7)
        shapes = [(256, 512, 1, 1), (256, 256, 3, 3), (256, 256, 3, 3), (12, 256, 1, 1)]
        pose_decoder = {f"net.{i}.weight": torch.randn(s) * 0.01 for i, s in enumerate(shapes)}
        pose_decoder |= {f"net.{i}.bias": torch.zeros(s[0]) for i, s in enumerate(shapes)}
        torch.save(pose_encoder, folder / "pose_encoder.pth")
        torch.save(pose_decoder, folder / "pose.pth")
        files |= {"pose_encoder": pose_encoder, "pose": pose_decoder}
    return files


@pytest.fixture(scope="module")
def test_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("release_store") / "test.zarr"
    write_toy_store(path, ToySpec(n_sequences=1, frames_per_sequence=4, image_size=(64, 96)))
    return str(path)


def test_resnet_depth_from_block_counts() -> None:
    assert resnet_depth({f"encoder.{k}": v for k, v in resnet18().state_dict().items()}) == 18
    assert resnet_depth(resnet50().state_dict(), prefix="") == 50
    with pytest.raises(ValueError, match="not a ResNet"):
        resnet_depth({"encoder.conv1.weight": torch.zeros(1)})


def test_full_release_round_trip(tmp_path: Path, test_store: str, capsys) -> None:
    files = write_monodepth2_release(tmp_path / "mono_96x64")
    out = tmp_path / "imported.pt"
    assert run_cli(["import", "monodepth2", str(tmp_path / "mono_96x64"), "--out", str(out)]) == 0
    assert "networks: depth, pose" in capsys.readouterr().out
    payload = read_checkpoint(out)
    assert payload["config"]["height"] == 64 and payload["config"]["width"] == 96
    method, nets = load_checkpoint_method(out)
    enc = nets["depth"].encoder.encoder
    key = "encoder.layer3.1.conv2.weight"
    assert torch.equal(enc.layer3[1].conv2.weight, files["encoder"][key])
    assert torch.equal(nets["pose"].decoder.pose2.weight, files["pose"]["net.3.weight"])
    assert method.predictor(nets).scaling.median  # mono release: median scaling
    # eval, predict and export read it like a trained checkpoint
    assert run_cli(["eval", str(out), test_store, "--device", "cpu"]) == 0
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), np.full((64, 96, 3), 128, np.uint8))
    assert run_cli(["predict", str(out), str(image), "--out", str(tmp_path / "pred")]) == 0
    assert (tmp_path / "pred" / "x_depth.npy").is_file()
    assert run_cli(["export", str(out), str(tmp_path / "m.pt")]) == 0


def test_depth_only_release_and_fine_tuning(tmp_path: Path, capsys) -> None:
    files = write_monodepth2_release(tmp_path / "rel", pose=False)
    out = tmp_path / "depth_only.pt"
    assert run_cli(["import", "monodepth2", str(tmp_path / "rel"), "--out", str(out)]) == 0
    assert "depth-only" in capsys.readouterr().out
    assert set(read_checkpoint(out)["models"]) == {"depth"}
    _, nets = load_checkpoint_method(out)  # the predictor needs no pose network
    # train --init: depth from the release, pose keeps its initialisation
    config = apply_overrides(preset("monodepth2-m"), {"pretrained": False, "height": 64})
    _, fresh, _ = method_parts(apply_overrides(config, {"width": 96}))
    assert init_networks(out, fresh, "monodepth2") == ["pose"]
    key = "encoder.layer4.0.conv1.weight"
    assert torch.equal(fresh["depth"].encoder.encoder.layer4[0].conv1.weight, files["encoder"][key])


def test_train_init_runs_from_an_imported_checkpoint(tmp_path: Path, capsys) -> None:
    write_monodepth2_release(tmp_path / "rel", pose=False)
    ckpt = tmp_path / "c.pt"
    assert run_cli(["import", "monodepth2", str(tmp_path / "rel"), "--out", str(ckpt)]) == 0
    store = tmp_path / "train.zarr"
    write_toy_store(store, ToySpec(n_sequences=1, frames_per_sequence=4, image_size=(64, 96)))
    args = ["train", "--preset", "monodepth2-m", "--train", str(store)]
    args += ["--out", str(tmp_path / "r"), "--init", str(ckpt), "--no-pretrained"]
    args += ["--height", "64", "--width", "96"]
    args += ["--max-steps", "1", "--batch-size", "2", "--workers", "0", "--device", "cpu"]
    assert run_cli(args) == 0
    printed = capsys.readouterr().out
    assert f"networks from {ckpt}: depth; initialised afresh: pose" in printed
    assert "trained 1 steps" in printed


def test_init_with_weights_of_other_shapes_is_refused(tmp_path: Path) -> None:
    ckpt = tiny_checkpoint(tmp_path / "c.pt", "monodepth2-m", num_layers=34)
    _, nets, _ = method_parts(apply_overrides(preset("monodepth2-m"), {"pretrained": False}))
    with pytest.raises(ValueError, match="weights do not fit"):
        init_networks(ckpt, nets, "monodepth2")


@pytest.mark.parametrize("case", ["stereo mismatch", "no depth.pth", "a file", "not torch"])
def test_wrong_release_is_one_line(case: str, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "rel"
    write_monodepth2_release(folder, pose=False, use_stereo=case == "stereo mismatch")
    target = folder
    if case == "no depth.pth":
        (folder / "depth.pth").unlink()
    elif case == "a file":
        target = tiny_checkpoint(tmp_path / "ours.pt")
    elif case == "not torch":
        (folder / "encoder.pth").write_text("hello")
    out = tmp_path / "out.pt"
    assert run_cli(["import", "monodepth2", str(target), "--out", str(out)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert {"stereo mismatch": "use_stereo", "no depth.pth": "depth.pth"}.get(case, "") in line
    assert not out.exists()


def test_stereo_release_with_stereo_preset_is_metric(tmp_path: Path) -> None:
    write_monodepth2_release(tmp_path / "rel", pose=False, use_stereo=True)
    out = tmp_path / "s.pt"
    args = ["import", "monodepth2", str(tmp_path / "rel"), "--out", str(out)]
    assert run_cli([*args, "--preset", "monodepth2-s"]) == 0
    method, nets = load_checkpoint_method(out)
    assert method.predictor(nets).scaling.factor == 5.4


# --------------------------------------------------------------------------- FeatDepth
def _featdepth_key(ours: str) -> str:
    """Our featdepth_depth key -> FeatDepth's mono_fm key (with its prefixes)."""
    if ours.startswith("encoder."):
        return "DepthEncoder." + ours.removeprefix("encoder.")
    rest = ours.removeprefix("decoder.")
    if m := re.fullmatch(r"reduce\.(\d)\.weight", rest):
        return f"DepthDecoder.reduce{int(m[1]) + 1}.conv.weight"
    m = re.fullmatch(r"stages\.(\d)\.(\w+)\.(.+)", rest)
    assert m is not None, ours
    n, part, tail = int(m[1]) + 1, m[2], m[3]
    if part == "crp":
        i = int(tail.split(".")[1]) + 1
        return f"DepthDecoder.crp{n}.0.{i}_outvar_dimred.conv.weight"
    if part == "head":
        return f"DepthDecoder.disp{n}.0.{tail}"
    return f"DepthDecoder.{part}{n}.{tail}"


def fake_featdepth_state() -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    torch.manual_seed(5)
    net = build_network("featdepth_depth", num_layers=50)
    state = {_featdepth_key(k): v.clone() for k, v in net.state_dict().items()}
    state["DepthEncoder.encoder.fc.weight"] = torch.zeros(1000, 2048)
    state["PoseEncoder.encoder.conv1.weight"] = torch.zeros(64, 6, 7, 7)  # not the depth net
    return net, {f"module.{k}": v for k, v in state.items()}


def test_featdepth_keys_are_remapped() -> None:
    net, state = fake_featdepth_state()
    converted = featdepth_depth_state(state)
    fresh = build_network("featdepth_depth", num_layers=50)
    fresh.load_state_dict(converted)  # strict: every key, nothing more
    for key, value in net.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    assert depth_layers(converted) == 50
    with pytest.raises(ValueError, match="unexpected FeatDepth"):
        featdepth_depth_state({**state, "DepthDecoder.odd.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="not a FeatDepth"):
        featdepth_depth_state({"encoder.conv1.weight": torch.zeros(1)})


def test_cli_import_featdepth(tmp_path: Path, capsys) -> None:
    _, state = fake_featdepth_state()
    release = tmp_path / "featdepth.pth"
    torch.save({"meta": {"epoch": 40}, "state_dict": state}, release)
    out = tmp_path / "f.pt"
    code = run_cli(["import", "featdepth", str(release), "--out", str(out)])
    if "featdepth" not in methods():
        assert code == 1
        assert "no featdepth method" in one_error_line(capsys.readouterr().err)
        assert not out.exists()
        return
    assert code == 0
    assert read_checkpoint(out)["config"]["method"] == "featdepth"
    load_checkpoint_method(out)


@pytest.mark.skipif("featdepth" not in methods(), reason="needs the featdepth method")
def test_cli_import_featdepth_refuses_other_files(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": {"encoder.conv1.weight": torch.zeros(1)}}, bad)
    assert run_cli(["import", "featdepth", str(bad), "--out", str(tmp_path / "f.pt")]) == 1
    assert "bad.pth" in one_error_line(capsys.readouterr().err)

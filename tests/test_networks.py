"""Monodepth2 networks: shapes, pretrained-weight handling, gradients, memory formats."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models import ResNet18_Weights, resnet18

from train.models import (
    DepthNet,
    MissingWeightsError,
    PoseNet,
    cached_weights_path,
    depth_net,
    encoder_channels,
    load_monodepth2_depth,
    load_monodepth2_pose,
    pose_input,
    pose_net,
    predict_cam_T_cam,
    resnet18_encoder,
    resnet50_encoder,
    resolve_weights,
)


@pytest.fixture(scope="module")
def nets18() -> tuple[DepthNet, PoseNet]:
    torch.manual_seed(0)
    return depth_net(18), pose_net(18)


@pytest.fixture()
def imagenet_state(tmp_path: Path) -> tuple[dict[str, torch.Tensor], Path]:
    """A fake torchvision ResNet-18 ImageNet state dict, saved to a file."""
    torch.manual_seed(1)
    state = resnet18(weights=None).state_dict()
    path = tmp_path / "fake_resnet18.pth"
    torch.save(state, path)
    return state, path


@pytest.mark.parametrize("layers", [18, 50])
@pytest.mark.parametrize("size", [(64, 96), (192, 640)])
def test_depth_net_output_shapes(layers: int, size: tuple[int, int]) -> None:
    h, w = size
    if layers == 50 and size == (192, 640):
        # Keep the test fast: check the encoder maps at full size and the decoder on a crop.
        feats = resnet50_encoder().eval()(torch.rand(1, 3, h, w))
        assert [f.shape[1] for f in feats] == [64, 256, 512, 1024, 2048]
        assert [tuple(f.shape[-2:]) for f in feats] == [(h // 2**i, w // 2**i) for i in range(1, 6)]
        return
    net = depth_net(layers).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, h, w))
    assert [tuple(d.shape) for d in out.disps] == [(1, 1, h // 2**s, w // 2**s) for s in range(4)]
    assert all(((d > 0) & (d < 1)).all() for d in out.disps)
    assert net.encoder.num_ch_enc == encoder_channels(layers)


def test_pose_net_output_and_matrix(nets18: tuple[DepthNet, PoseNet]) -> None:
    _, pose = nets18
    out = pose(torch.rand(2, 6, 32, 64))
    assert out.axisangle.shape == (2, 2, 1, 3) and out.translation.shape == (2, 2, 1, 3)
    assert pose.decoder.pose2.out_channels == 12  # dead second prediction kept
    assert out.matrix().shape == (2, 4, 4)
    inv = out.matrix(invert=True)
    assert torch.allclose(out.matrix() @ inv, torch.eye(4).expand(2, 4, 4), atol=1e-5)


def test_pose_input_order_and_inversion(nets18: tuple[DepthNet, PoseNet]) -> None:
    _, pose = nets18
    pose.eval()
    target, source = torch.rand(1, 3, 32, 64), torch.rand(1, 3, 32, 64)
    assert torch.equal(pose_input(target, source, -1)[:, :3], source)
    assert torch.equal(pose_input(target, source, 1)[:, :3], target)
    with torch.no_grad():
        previous = predict_cam_T_cam(pose, target, source, -1)
        forward = pose(torch.cat([source, target], 1)).matrix()
    assert torch.allclose(previous, torch.linalg.inv(forward), atol=1e-5)
    pose.train()


def test_input_size_must_be_multiple_of_32(nets18: tuple[DepthNet, PoseNet]) -> None:
    with pytest.raises(ValueError, match="multiples of 32"):
        nets18[0](torch.rand(1, 3, 60, 96))


def test_encoder_normalises_input() -> None:
    enc = resnet18_encoder().eval()
    seen: list[torch.Tensor] = []
    enc.encoder.conv1.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    x = torch.rand(1, 3, 32, 32)
    enc(x)
    assert torch.allclose(seen[0], (x - 0.45) / 0.225)


def test_pretrained_pose_encoder_tiles_first_conv(imagenet_state) -> None:
    state, path = imagenet_state
    net = pose_net(18, encoder_weights=path)
    kernel = net.encoder.encoder.conv1.weight
    assert kernel.shape == (64, 6, 7, 7)
    expected = torch.cat([state["conv1.weight"]] * 2, dim=1) / 2
    assert torch.equal(kernel.detach(), expected)
    assert torch.equal(net.encoder.encoder.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])
    assert torch.equal(net.encoder.encoder.bn1.running_var, state["bn1.running_var"])
    # A stack of two identical frames sees the one-frame response.
    single = resnet18_encoder(weights=path).eval()
    net.encoder.eval()
    x = torch.rand(1, 3, 32, 64)
    with torch.no_grad():
        assert torch.allclose(net.encoder(torch.cat([x, x], 1))[4], single(x)[4], atol=1e-5)


def test_fresh_pose_encoder_init() -> None:
    torch.manual_seed(0)
    enc = pose_net(18).encoder.encoder
    std = enc.conv1.weight.std().item()
    assert abs(std - (2 / (64 * 49)) ** 0.5) < 0.003  # Kaiming normal, fan_out, relu
    assert torch.equal(enc.bn1.weight, torch.ones(64)) and torch.equal(
        enc.bn1.bias, torch.zeros(64)
    )


def test_weights_from_local_cache_only(monkeypatch, tmp_path: Path, imagenet_state) -> None:
    state, _ = imagenet_state
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    expected_file = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert cached_weights_path(ResNet18_Weights.IMAGENET1K_V1) == expected_file
    with pytest.raises(MissingWeightsError, match="resnet18-f37072fd.pth") as err:
        resnet18_encoder(weights=ResNet18_Weights.IMAGENET1K_V1)
    assert str(expected_file) in str(err.value)
    expected_file.parent.mkdir(parents=True)
    torch.save(state, expected_file)
    for spec in (ResNet18_Weights.IMAGENET1K_V1, "imagenet"):
        enc = resnet18_encoder(weights=spec)
        assert torch.equal(enc.encoder.conv1.weight, state["conv1.weight"])


def test_resolve_weights_strings() -> None:
    assert resolve_weights(None, ResNet18_Weights) is None
    assert resolve_weights("ResNet18_Weights.IMAGENET1K_V1", ResNet18_Weights) is (
        ResNet18_Weights.IMAGENET1K_V1
    )
    assert resolve_weights("some/file.pth", ResNet18_Weights) == Path("some/file.pth")


def test_bad_weight_files_raise_value_error(tmp_path: Path, imagenet_state) -> None:
    _, path = imagenet_state
    with pytest.raises(MissingWeightsError, match="missing.pth"):
        resnet18_encoder(weights=tmp_path / "missing.pth")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="truncated.pth"):
        resnet18_encoder(weights=truncated)
    with pytest.raises(ValueError, match="fake_resnet18.pth"):
        resnet50_encoder(weights=path)  # wrong depth


def test_gradient_reaches_every_parameter(nets18: tuple[DepthNet, PoseNet]) -> None:
    depth, pose = nets18
    depth.zero_grad(set_to_none=True)
    pose.zero_grad(set_to_none=True)
    out = depth(torch.rand(1, 3, 64, 64))
    p = pose(torch.rand(1, 6, 64, 64))
    loss = sum(d.mean() for d in out.disps) + p.axisangle.sum() + p.translation.sum()
    loss.backward()
    for net in (depth, pose):
        missing = [n for n, q in net.named_parameters() if q.grad is None or not q.grad.any()]
        assert not missing


def test_channels_last_matches_contiguous(nets18: tuple[DepthNet, PoseNet]) -> None:
    depth, pose = nets18
    x = torch.rand(1, 3, 64, 64)
    depth.eval()
    with torch.no_grad():
        ref = depth(x).disps
        depth.to(memory_format=torch.channels_last)
        out = depth(x.to(memory_format=torch.channels_last)).disps
        depth.to(memory_format=torch.contiguous_format)
    depth.train()
    for a, b in zip(ref, out, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_autocast_forward_cpu(nets18: tuple[DepthNet, PoseNet]) -> None:
    depth, _ = nets18
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = depth(torch.rand(1, 3, 64, 64))
    assert out.disps[0].shape == (1, 1, 64, 64) and torch.isfinite(out.disps[0].float()).all()


def _monodepth2_depth_decoder_state(num_ch_enc: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """Keys and shapes of a monodepth2 ``depth.pth``, written from the spec's channel table."""
    dec, state, n = (16, 32, 64, 128, 256), {}, 0
    for i in range(4, -1, -1):
        c_ins = (num_ch_enc[4] if i == 4 else dec[i + 1], dec[i] + (num_ch_enc[i - 1] if i else 0))
        for c_in in c_ins:
            state[f"decoder.{n}.conv.conv.weight"] = torch.randn(dec[i], c_in, 3, 3)
            state[f"decoder.{n}.conv.conv.bias"] = torch.randn(dec[i])
            n += 1
    for s in range(4):
        state[f"decoder.{n + s}.conv.weight"] = torch.randn(1, dec[s], 3, 3)
        state[f"decoder.{n + s}.conv.bias"] = torch.randn(1)
    return state


def test_load_monodepth2_release_files(tmp_path: Path, imagenet_state) -> None:
    state, _ = imagenet_state
    encoder = {f"encoder.{k}": v for k, v in state.items()}  # their encoder keeps fc
    torch.save({**encoder, "height": 192, "width": 640, "use_stereo": False}, tmp_path / "e.pth")
    decoder = _monodepth2_depth_decoder_state((64, 64, 128, 256, 512))
    torch.save(decoder, tmp_path / "d.pth")
    net = depth_net(18)
    meta = load_monodepth2_depth(net, tmp_path / "e.pth", tmp_path / "d.pth")
    assert meta == {"height": 192, "width": 640, "use_stereo": False}
    assert torch.equal(net.encoder.encoder.layer4[0].conv1.weight, state["layer4.0.conv1.weight"])
    assert torch.equal(
        net.decoder.upconv_in[4].conv.conv.weight, decoder["decoder.0.conv.conv.weight"]
    )
    assert torch.equal(
        net.decoder.upconv_out[0].conv.conv.bias, decoder["decoder.9.conv.conv.bias"]
    )
    assert torch.equal(net.decoder.disp_heads[3].conv.weight, decoder["decoder.13.conv.weight"])

    pose_encoder = dict(encoder)
    pose_encoder["encoder.conv1.weight"] = torch.randn(64, 6, 7, 7)
    torch.save(pose_encoder, tmp_path / "pe.pth")
    shapes = [(256, 512, 1, 1), (256, 256, 3, 3), (256, 256, 3, 3), (12, 256, 1, 1)]
    pose = {f"net.{i}.weight": torch.randn(s) for i, s in enumerate(shapes)}
    pose |= {f"net.{i}.bias": torch.randn(s[0]) for i, s in enumerate(shapes)}
    torch.save(pose, tmp_path / "p.pth")
    pnet = pose_net(18)
    load_monodepth2_pose(pnet, tmp_path / "pe.pth", tmp_path / "p.pth")
    assert torch.equal(pnet.decoder.pose2.weight, pose["net.3.weight"])
    assert torch.equal(pnet.encoder.encoder.conv1.weight, pose_encoder["encoder.conv1.weight"])
    with pytest.raises(ValueError, match="p.pth"):
        load_monodepth2_depth(net, tmp_path / "e.pth", tmp_path / "p.pth")

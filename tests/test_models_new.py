"""FeatDepth depth net, FeatureNet, SegDepth U-Net, DenseDepth: shapes, gradients, tracing, modes,
weights. Tiny inputs (96 x 128, batch 1-2); every network is randomly initialised."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torchvision.models import (
    DenseNet169_Weights,
    EfficientNet_B3_Weights,
    ResNet18_Weights,
    densenet169,
    efficientnet_b3,
    resnet18,
)
from torchvision.ops import StochasticDepth

from train.models import NETWORKS, MissingWeightsError, ResnetEncoder, build_network
from train.models.densedepth import (
    DenseDepthNet,
    densedepth_net,
    depth_to_target,
    fix_densenet_keys,
    output_to_depth,
)
from train.models.featdepth_depth import FeatDepthNet, featdepth_depth_net
from train.models.featurenet import FeatureNet, featurenet
from train.models.segdepth_unet import SegDepthUNet, segdepth_unet

H, W = 96, 128


def _flat(out: object) -> tuple[Tensor, ...]:
    """Every tensor a network returns, in a fixed order."""
    if isinstance(out, Tensor):
        return (out,)
    if hasattr(out, "disps"):
        return tuple(out.disps)
    return (*out.features, *out.reconstructions)


class _Flat(nn.Module):
    """A network whose output is a tuple of tensors (no pytree registration for the dataclasses)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return _flat(self.net(x))


# name -> (builder, input channels, expected output shapes for batch B at H x W)
NETS: dict[str, tuple[Callable[[], nn.Module], int, Callable[[int], list[tuple[int, ...]]]]] = {
    "featdepth_depth": (
        lambda: featdepth_depth_net(18),
        3,
        lambda b: [(b, 1, H // 2 ** (s + 1), W // 2 ** (s + 1)) for s in range(4)],
    ),
    "featurenet": (
        lambda: featurenet(18),
        3,
        lambda b: (
            [
                (b, c, H // 2 ** (i + 1), W // 2 ** (i + 1))
                for i, c in enumerate((64, 64, 128, 256, 512))
            ]
            + [(b, 3, H // 2**s, W // 2**s) for s in range(4)]
        ),
    ),
    "segdepth_unet": (segdepth_unet, 1, lambda b: [(b, 2, H, W)]),
    "densedepth": (densedepth_net, 3, lambda b: [(b, 1, H // 2, W // 2)]),
}


@functools.cache
def _net(name: str) -> nn.Module:
    """One randomly initialised network per name, shared by the tests (each sets its mode)."""
    torch.manual_seed(0)
    return NETS[name][0]()


@pytest.fixture(params=sorted(NETS))
def case(request: pytest.FixtureRequest) -> tuple[str, nn.Module, int]:
    return request.param, _net(request.param), NETS[request.param][1]


def test_output_shapes_and_ranges(case: tuple[str, nn.Module, int]) -> None:
    name, net, channels = case
    net.eval()
    with torch.no_grad():
        out = _flat(net(torch.rand(2, channels, H, W)))
    assert [tuple(t.shape) for t in out] == NETS[name][2](2)
    assert all(torch.isfinite(t).all() for t in out)
    bounded = {"featdepth_depth": out, "featurenet": out[5:], "segdepth_unet": out}
    for t in bounded.get(name, ()):
        assert ((t > 0) & (t < 1)).all()  # sigmoid outputs


def test_backward_reaches_every_parameter(case: tuple[str, nn.Module, int]) -> None:
    _, net, channels = case
    net.train()
    # Stochastic depth (EfficientNet) may skip a block's branch for the whole batch; keep it off.
    for m in net.modules():
        if isinstance(m, StochasticDepth):
            m.eval()
    net.zero_grad(set_to_none=True)
    loss = sum(t.mean() for t in _flat(net(torch.rand(2, channels, H, W))))
    loss.backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.slow
def test_export_matches_eager(case: tuple[str, nn.Module, int]) -> None:
    _, net, channels = case
    flat = _Flat(net).eval()
    program = torch.export.export(flat, (torch.rand(1, channels, H, W),))
    x = torch.rand(1, channels, H, W)
    with torch.no_grad():
        for a, b in zip(program.module()(x), flat(x), strict=True):
            assert a.shape == b.shape
            assert torch.allclose(a, b, rtol=0, atol=1e-5)


def test_train_and_eval_modes(case: tuple[str, nn.Module, int]) -> None:
    name, net, channels = case
    x = torch.rand(1, channels, H, W)
    bn = next(m for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    net.eval()
    with torch.no_grad():
        stats = bn.running_mean.clone()
        first, second = _flat(net(x)), _flat(net(x))
        assert torch.equal(bn.running_mean, stats)  # eval: running statistics untouched
        assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
        net.train()
        out = _flat(net(x))
        assert not torch.equal(bn.running_mean, stats)  # train: batch statistics
    assert [tuple(t.shape) for t in out] == NETS[name][2](1)
    net.eval()


def test_input_size_is_checked() -> None:
    for name in NETS:
        net, channels = _net(name), NETS[name][1]
        with pytest.raises(ValueError, match="multiples of 32"):
            net(torch.rand(1, channels, 96, 120))


# ---- FeatDepth depth network -------------------------------------------------------------------


def _refine_decoder_params(num_ch_enc: tuple[int, ...]) -> int:
    """Parameters of the spec's decoder (5.2), counted from its description."""
    conv3 = lambda c_in, c_out: c_in * c_out * 9 + c_out  # noqa: E731
    reduce = sum(num_ch_enc[i] * 256 for i in (1, 2, 3)) + num_ch_enc[4] * 512
    stage = lambda c_in: conv3(c_in, 256) + 4 * 256 * 256 + conv3(256, 256) + conv3(256, 1)  # noqa: E731
    return reduce + stage(512) + 3 * stage(513)


@pytest.mark.parametrize("layers", [18, 50])
def test_featdepth_architecture(layers: int) -> None:
    net = _net("featdepth_depth") if layers == 18 else featdepth_depth_net()
    assert isinstance(net, FeatDepthNet) and net.encoder.num_layers == layers
    enc = net.encoder.num_ch_enc
    assert sum(p.numel() for p in net.decoder.parameters()) == _refine_decoder_params(enc)
    assert all(c.bias is None for c in net.decoder.reduce)
    assert net.decoder.dropout.p == 0.5
    with pytest.raises(ValueError, match="num_layers"):
        featdepth_depth_net(101)


def test_featdepth_dropout_only_in_train_mode() -> None:
    net = _net("featdepth_depth")
    x = torch.rand(1, 3, H, W)
    feats = net.encoder.eval()(x)
    net.decoder.train()
    with torch.no_grad():
        a, b = net.decoder(feats).disps[0], net.decoder(feats).disps[0]
        assert not torch.equal(a, b)
        net.decoder.eval()
        assert torch.equal(net.decoder(feats).disps[0], net.decoder(feats).disps[0])


# ---- FeatureNet --------------------------------------------------------------------------------


def test_featurenet_default_and_encoder_alone() -> None:
    torch.manual_seed(0)
    net = featurenet().eval()  # ResNet-50
    assert isinstance(net, FeatureNet)
    x = torch.rand(1, 3, H, W)
    with torch.no_grad():
        out = net(x)
        alone = net.encoder(x)
    assert [f.shape[1] for f in out.features] == [64, 256, 512, 1024, 2048]
    assert all(torch.equal(a, b) for a, b in zip(alone, out.features, strict=True))
    heads = [h.conv.in_channels for h in net.decoder.heads]
    assert heads == [16, 32, 64, 128]


def test_featurenet_does_not_normalise() -> None:
    net = _net("featurenet").eval()
    normalising = ResnetEncoder(18).eval()
    normalising.load_state_dict(net.encoder.state_dict())
    x = torch.rand(1, 3, H, W)
    with torch.no_grad():
        raw = net.encoder(x)
        # the Monodepth2 encoder computes (x - 0.45) / 0.225 first: undo it
        same = normalising(x * 0.225 + 0.45)
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(raw, same, strict=True))


# ---- SegDepth U-Net ----------------------------------------------------------------------------


def test_segdepth_unet_layout_and_init() -> None:
    net = _net("segdepth_unet")
    assert isinstance(net, SegDepthUNet)
    assert (net.input_conv.in_channels, net.input_conv.out_channels) == (1, 3)
    with torch.no_grad():
        maps = net.encoder(torch.rand(1, 3, H, W))
    assert [tuple(m.shape[1:]) for m in maps] == [
        (c, H // 2 ** (i + 1), W // 2 ** (i + 1)) for i, c in enumerate((40, 32, 48, 136, 384))
    ]
    blocks = [(b.conv1[0].in_channels, b.conv1[0].out_channels) for b in net.decoder.blocks]
    assert blocks == [(384 + 136, 256), (256 + 48, 128), (128 + 32, 64), (64 + 40, 32), (32, 16)]
    convs = [m for m in net.decoder.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.bias is None for c in convs)
    assert torch.equal(net.head.bias, torch.zeros(2))
    # Kaiming-uniform fan_in: bound sqrt(6 / fan_in)
    bound = (6 / convs[0].weight[0].numel()) ** 0.5
    assert convs[0].weight.abs().max() <= bound and convs[0].weight.abs().max() > 0.9 * bound


# ---- DenseDepth --------------------------------------------------------------------------------


def test_densedepth_decoder_layout() -> None:
    net = _net("densedepth").eval()
    assert isinstance(net, DenseDepthNet)
    dec = net.decoder
    assert (dec.squeeze.in_channels, dec.squeeze.out_channels, dec.squeeze.kernel_size) == (
        1664,
        832,
        (1, 1),
    )
    blocks = [(b.conv1.in_channels, b.conv1.out_channels) for b in dec.blocks]
    assert blocks == [(832 + 256, 416), (416 + 128, 208), (208 + 64, 104), (104 + 64, 52)]
    assert (dec.head.in_channels, dec.head.out_channels) == (52, 1)
    with torch.no_grad():
        maps = net.encoder(torch.rand(1, 3, H, W))
    assert [m.shape[1] for m in maps] == [64, 64, 128, 256, 1664]
    assert (maps[4] >= 0).all()  # after ReLU(norm5)


def test_densedepth_depth_encoding() -> None:
    depth = torch.tensor([0.0, 0.05, 0.1, 1.0, 2.5, 10.0, 20.0])
    y = depth_to_target(depth)
    assert torch.allclose(y, torch.tensor([100.0, 100.0, 100.0, 10.0, 4.0, 1.0, 1.0]))
    assert torch.allclose(output_to_depth(y), depth.clamp(0.1, 10.0))
    y_hat = torch.tensor([-3.0, 0.0, 0.5, 50.0, 200.0])
    assert torch.allclose(output_to_depth(y_hat), torch.tensor([0.1, 10.0, 10.0, 0.2, 0.1]))


def test_densedepth_old_densenet_keys() -> None:
    state = {"features.denseblock1.denselayer1.norm.1.weight": torch.ones(1), "x.conv.1.weight": 1}
    fixed = fix_densenet_keys(state)
    assert set(fixed) == {"features.denseblock1.denselayer1.norm1.weight", "x.conv.1.weight"}


# ---- weights -----------------------------------------------------------------------------------


def _old_style(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A DenseNet state dict as torchvision's released files hold it: old key names, no
    ``num_batches_tracked``."""
    out = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        for part in ("norm", "relu", "conv"):
            for i in ("1", "2"):
                if ".denselayer" in key and f".{part}{i}." in key:
                    key = key.replace(f".{part}{i}.", f".{part}.{i}.")
        out[key] = value
    return out


@pytest.mark.parametrize("name", sorted(NETS))
def test_weights_from_state_dict(name: str) -> None:
    torch.manual_seed(1)
    if name == "featdepth_depth":
        state = resnet18(weights=None).state_dict()
        net = featdepth_depth_net(18, weights=state)
        got, want = net.encoder.encoder.conv1.weight, state["conv1.weight"]
    elif name == "featurenet":
        state = resnet18(weights=None).state_dict()
        net = featurenet(18, weights=state)
        got, want = net.encoder.encoder.layer4[1].conv2.weight, state["layer4.1.conv2.weight"]
    elif name == "segdepth_unet":
        state = efficientnet_b3(weights=None).state_dict()
        net = segdepth_unet(weights=state)
        got, want = (
            net.encoder.features[7][1].block[0][0].weight,
            state["features.7.1.block.0.0.weight"],
        )
    else:
        state = _old_style(densenet169(weights=None).state_dict())
        assert "features.denseblock1.denselayer1.conv.1.weight" in state
        net = densedepth_net(weights=state)
        got = net.encoder.features.denseblock1.denselayer1.conv1.weight
        want = state["features.denseblock1.denselayer1.conv.1.weight"]
    assert torch.equal(got, want)
    with pytest.raises(ValueError, match="do not fit"):
        _build(name, {"bogus": torch.zeros(1)})


def _build(name: str, weights: object) -> nn.Module:
    if name == "featdepth_depth":
        return featdepth_depth_net(18, weights=weights)
    if name == "featurenet":
        return featurenet(18, weights=weights)
    if name == "segdepth_unet":
        return segdepth_unet(weights=weights)
    return densedepth_net(weights=weights)


@pytest.mark.parametrize(
    ("name", "enum", "file"),
    [
        ("featdepth_depth", ResNet18_Weights.IMAGENET1K_V1, "resnet18-f37072fd.pth"),
        ("featurenet", ResNet18_Weights.IMAGENET1K_V1, "resnet18-f37072fd.pth"),
        ("segdepth_unet", EfficientNet_B3_Weights.IMAGENET1K_V1, "efficientnet_b3_rwightman"),
        ("densedepth", DenseNet169_Weights.IMAGENET1K_V1, "densenet169-b2777c0a.pth"),
    ],
)
def test_enum_weights_come_from_local_cache_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, enum: object, file: str
) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(MissingWeightsError, match=file):
        _build(name, enum)
    wrong = ResNet18_Weights.IMAGENET1K_V1 if name == "densedepth" else DenseNet169_Weights.DEFAULT
    with pytest.raises(ValueError, match="do not belong"):
        _build(name, wrong)


def test_registered() -> None:
    builders = {
        "featdepth_depth": featdepth_depth_net,
        "featdepth_featurenet": featurenet,
        "segdepth_unet": segdepth_unet,
        "densedepth_depth": densedepth_net,
    }
    for name, builder in builders.items():
        assert NETWORKS[name].builder is builder
    assert NETWORKS["segdepth_unet"].input_channels == 1
    net = build_network("featdepth_featurenet", num_layers=18)
    assert isinstance(net, FeatureNet) and net.encoder.num_layers == 18

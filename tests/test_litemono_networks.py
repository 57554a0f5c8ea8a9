"""Lite-Mono networks: parameter counts and key layouts of the four variants, dilations, and the
reference's own forward outputs (eval and train mode with drop path) within spec 3.4's bars."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.litemono_vectors import VARIANTS_WITH_VECTORS, litemono_net, vectors_root
from train.models import build_network
from train.models.litemono_blocks import DropPath
from train.models.litemono_encoder import VARIANTS, dilations, drop_path_rates, reference_size
from train.models.litemono_weights import infer_variant

__all__ = ["vectors_root"]  # the fixture, imported for pytest

# Spec 1.1: (encoder, decoder) parameters as constructed by the reference.
PARAMS = {
    "lite-mono": (2_848_120, 226_627),
    "lite-mono-small": (2_250_232, 226_627),
    "lite-mono-tiny": (1_955_192, 192_467),
    "lite-mono-8m": (8_139_960, 635_891),
}


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("variant", sorted(PARAMS))
def test_parameter_counts_equal_the_spec(variant: str) -> None:
    net = build_network("litemono_depth", variant=variant)
    assert (_count(net.encoder), _count(net.decoder)) == PARAMS[variant]
    assert net.encoder.num_ch_enc == VARIANTS[variant].channels
    assert net.decoder.num_ch_dec == tuple(c // 2 for c in VARIANTS[variant].channels)
    assert infer_variant(net.encoder.state_dict()) == variant


@pytest.mark.parametrize("variant", sorted(PARAMS))
def test_key_layout_is_the_references(variant: str, vectors_root: Path) -> None:
    keys = json.loads((vectors_root / "litemono" / "keys.json").read_text())[variant]
    net = build_network("litemono_depth", variant=variant)
    for part, module in (("encoder", net.encoder), ("depth", net.decoder)):
        ours = [(k, list(v.shape)) for k, v in module.state_dict().items()]
        assert ours == [(name, shape) for name, shape, _ in keys[part]]
    assert list(dilations(variant, 192, 640)) == keys["dilations_192x640"]
    assert (keys["encoder_params"], keys["depth_params"]) == PARAMS[variant]


def test_dilations_by_size() -> None:
    assert dilations("lite-mono", 320, 1024)[2] == [1, 2, 5, 1, 2, 5, 2, 4, 10]
    assert dilations("lite-mono-tiny", 320, 1024)[2] == [1, 2, 5, 2, 4, 10]
    assert dilations("lite-mono-8m", 320, 1024) == dilations("lite-mono-8m", 192, 640)
    # the reference defines no pattern at other sizes: 192x640's is used (and reported)
    assert reference_size("lite-mono", 96, 128) == (192, 640)
    assert dilations("lite-mono", 96, 128) == dilations("lite-mono", 192, 640)
    with pytest.raises(ValueError, match="unknown Lite-Mono variant"):
        dilations("lite-mono-xl", 192, 640)


def test_unused_norm_is_frozen_and_every_other_parameter_learns() -> None:
    net = build_network("litemono_depth", variant="lite-mono-tiny").train()
    sum(d.mean() for d in net(torch.rand(2, 3, 64, 96)).disps).backward()
    frozen = {n for n, p in net.named_parameters() if not p.requires_grad}
    assert frozen and all(".norm." in n and "stages." in n for n in frozen)
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_drop_path_keeps_and_scales_per_sample() -> None:
    layer = DropPath(0.5).train()
    torch.manual_seed(0)
    out = layer(torch.ones(4000, 1, 1, 1))
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert abs(float(out.mean()) - 1.0) < 0.05
    assert torch.equal(layer.eval()(torch.ones(3, 2)), torch.ones(3, 2))


def _features_within(got: torch.Tensor, ref: np.ndarray) -> None:
    ref32 = ref.astype(np.float32)  # stored float16: bar abs <= 1e-3 |ref| + 2e-3 (spec 3.4)
    excess = np.abs(got.numpy() - ref32) - (1e-3 * np.abs(ref32) + 2e-3)
    assert excess.max() <= 0, excess.max()


@pytest.mark.parametrize("variant", VARIANTS_WITH_VECTORS)
def test_forward_matches_the_reference(variant: str, vectors_root: Path) -> None:
    folder = vectors_root / "litemono"
    image = torch.from_numpy(np.load(folder / "forward_inputs.npz")["image"])
    expected = np.load(folder / f"forward_expected_{variant}.npz")
    net = litemono_net(vectors_root, variant).eval()
    with torch.no_grad():
        features = net.encoder(image)
        disps = net.decoder(features).disps
    for i in range(3):
        _features_within(features[i], expected[f"feature_{i}"])
        np.testing.assert_allclose(disps[i].numpy(), expected[f"disp_{i}"], rtol=0, atol=2e-5)


@pytest.mark.parametrize("variant", VARIANTS_WITH_VECTORS)
def test_train_mode_drop_path_matches_the_reference(variant: str, vectors_root: Path) -> None:
    folder = vectors_root / "litemono"
    image = torch.from_numpy(np.load(folder / "forward_inputs.npz")["image"])
    expected = np.load(folder / f"forward_expected_{variant}.npz")
    net = litemono_net(vectors_root, variant).train()
    spec = VARIANTS[variant]
    rates = drop_path_rates(spec.depths, 0.2)
    np.testing.assert_array_equal(np.array(rates), expected["train_droppath_rate"])
    layers = [m for m in net.encoder.modules() if isinstance(m, DropPath)]
    assert [m.drop_prob for m in layers] == rates
    # the same global-generator draws as timm's DropPath: the seed gives the recorded drops
    keeps: list[float] = []  # 1 kept, 0 dropped (a dropped branch is all zeros)
    for layer in layers:
        layer.register_forward_hook(lambda m, a, out: keeps.append(float(bool(out.any()))))
    torch.manual_seed(int(expected["train_torch_seed"]))
    with torch.no_grad():
        disp = net(image).disps[0]
    np.testing.assert_array_equal(np.array(keeps), expected["train_droppath_keep"])
    np.testing.assert_allclose(disp.numpy(), expected["train_disp_0"], rtol=0, atol=5e-5)


def test_num_ch_enc_depths_and_fp16_sizes_are_the_references(vectors_root: Path) -> None:
    keys = json.loads((vectors_root / "litemono" / "keys.json").read_text())
    for variant, spec in VARIANTS.items():
        entry = keys[variant]
        assert tuple(entry["num_ch_enc"]) == spec.channels
        assert tuple(entry["depth_per_stage"]) == spec.depths
        net = build_network("litemono_depth", variant=variant)  # float16 bytes of its parameters
        assert 2 * _count(net) == entry["fp16_bytes_encoder_plus_depth"]


def test_pose_keys_load_into_monodepth2s_pose_network(vectors_root: Path) -> None:
    from train.models.monodepth2_weights import (
        encoder_state_from_monodepth2,
        pose_decoder_state_from_monodepth2,
    )

    keys = json.loads((vectors_root / "litemono" / "keys.json").read_text())
    net = build_network("monodepth2_pose", num_layers=18)
    for part, module, convert in (
        ("pose_encoder", net.encoder, encoder_state_from_monodepth2),
        ("pose", net.decoder, pose_decoder_state_from_monodepth2),
    ):
        dtypes = {"float32": torch.float32, "int64": torch.int64}
        state = {
            name: torch.zeros(shape, dtype=dtypes[kind]) for name, shape, kind in keys[part]["keys"]
        }
        module.load_state_dict(convert(state))  # strict: every key but the unused fc is used
    fc = 512 * 1000 + 1000  # torchvision's classifier, kept by the reference, dropped here
    assert _count(net.encoder) + fc == keys["pose_encoder"]["params"]
    assert _count(net.decoder) == keys["pose"]["params"]


def test_every_vector_key_is_covered(vectors_root: Path) -> None:
    """The keys of every litemono/ file, against the tests that compare them (this module and
    tests/test_litemono_method.py): a new key in the folder must get a test."""
    covered = {
        "forward_inputs.npz": {"image"},
        "forward_expected_lite-mono.npz": {
            *(f"feature_{i}" for i in range(3)), *(f"disp_{i}" for i in range(3)),
            "train_disp_0", "train_droppath_rate", "train_droppath_keep", "train_torch_seed",
        },
        "loss_inputs.npz": {
            *(f"color_{f}_{s}" for f in (0, -1, 1) for s in range(3)),
            *(f"color_aug_{f}_0" for f in (0, -1, 1)), "K_0", "inv_K_0",
            *(f"disp_{s}" for s in range(3)), "axisangle", "translation",
            *(f"tiebreak_noise_{s}" for s in range(3)),
        },
        "loss_expected.npz": {
            "loss", *(f"loss_{s}" for s in range(3)), "cam_T_cam_-1", "cam_T_cam_1",
            "warped_-1_0", *(f"identity_selection_{s}" for s in range(3)), "loss_nonoise",
        },
        "recipe.npz": {
            "lr_depth_epoch", "lr_pose_epoch", "lr_depth_epoch_0_69", "lr_pose_epoch_0_69",
            "lr_after_construction", "lr_epoch0_after_steps_1_to_5", "weight_decay",
            "adamw_betas", "adamw_eps", "num_epochs", "batch_size", "scales", "frame_ids",
            "min_depth", "max_depth", "disparity_smoothness", "drop_path_rate", "height", "width",
            "default_num_epochs", "default_batch_size", "default_lr",
        },
    }  # fmt: skip
    covered["forward_expected_lite-mono-tiny.npz"] = covered["forward_expected_lite-mono.npz"]
    folder = vectors_root / "litemono"
    for variant in VARIANTS_WITH_VECTORS:  # state dicts: loaded strictly by litemono_net
        for part in ("encoder", "depth"):
            covered[f"{variant}_{part}.npz"] = set(np.load(folder / f"{variant}_{part}.npz").files)
    assert {p.name for p in folder.glob("*.npz")} == set(covered)
    for name, keys in covered.items():
        assert set(np.load(folder / name).files) == keys, name

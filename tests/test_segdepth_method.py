"""SegDepth as a method: Monodepth2 plus the U-Net term, its optimiser, the reference switches,
mask flips and the refusals of stores without computed masks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import zarr

from pipelines.loader import Augment, AugmentConfig, flip_images, make_loader
from pipelines.store import create_schema_array, open_store
from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import method_parts, run_cli
from train.engine.config import apply_overrides
from train.engine.runtime import build_runtime
from train.engine.step import train_step
from train.methods import preset
from train.models.weights import MissingWeightsError

TINY = {
    "pretrained": False,
    "height": 64,
    "width": 96,
    "batch_size": 2,
    "workers": 0,
    "device": "cpu",
    "jitter_prob": 0.0,
    "flip_prob": 0.0,
    "num_layers": 18,
}
SPEC = ToySpec(n_sequences=1, frames_per_sequence=4, image_size=(64, 96), seg=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("segdepth") / "train.zarr"
    write_toy_store(path, SPEC)
    return str(path)


def _batch(store: str, method):
    request = method.loader_request()
    loader = make_loader(
        store, 2, workers=0, shuffle=False, frames=request.frames, extras=request.extras
    )
    return next(b for b in loader if bool(b.has_prev.all()))


def _config(**overrides):
    return apply_overrides(preset("segdepth-m"), {**TINY, **overrides})


def _step(config, store: str):
    method, nets, optimisers = method_parts(config)
    runtime = build_runtime(config, method, nets, torch.device("cpu"))
    before = {k: v.detach().clone() for k, v in nets["unet"].state_dict().items()}
    result = train_step(runtime, method, optimisers, _batch(store, method), torch.Generator())
    assert result is not None and torch.isfinite(result.loss)
    after = nets["unet"].state_dict()
    moved = {k for k, v in before.items() if not torch.equal(v, after[k])}
    return result, moved


def test_unet_trains_unless_the_reference_switch_is_on(store: str) -> None:
    result, moved = _step(_config(), store)
    assert "segmentation_loss" in result.scalars
    assert any(k.endswith("weight") for k in moved)  # the U-Net's own Adam moved it
    _, frozen = _step(_config(reference_zero_unet_grads=True), store)
    assert frozen and all(k.endswith(("running_mean", "running_var", "num_batches_tracked"))
                          for k in frozen)  # fmt: skip  # only BatchNorm statistics change


def test_loss_is_monodepth2_plus_the_segmentation_term(store: str) -> None:
    seg_config = _config()
    mono_config = apply_overrides(preset("monodepth2-m"), TINY)
    seg_method, seg_nets, _ = method_parts(seg_config)
    mono_method, mono_nets, _ = method_parts(mono_config)
    for name in ("depth", "pose"):  # same seed, same init
        for a, b in zip(seg_nets[name].parameters(), mono_nets[name].parameters(), strict=True):
            assert torch.equal(a, b)
    batch = _batch(store, seg_method)
    outs = []
    for config, method, nets in ((seg_config, seg_method, seg_nets), (mono_config, mono_method,
                                                                        mono_nets)):  # fmt: skip
        runtime = build_runtime(config, method, nets, torch.device("cpu"))
        aug = runtime.augment(batch, generator=None, train=False)
        outs.append(method.loss(runtime, aug, torch.Generator().manual_seed(1)))
    seg, mono = outs
    expected = mono.total + 5e-4 * seg.scalars["segmentation_loss"]
    torch.testing.assert_close(seg.total, expected, rtol=1e-6, atol=0)
    assert seg.scalars["loss_scale0"] == mono.scalars["loss_scale0"]


def test_two_optimisers_and_weight_map(store: str) -> None:
    method, nets, optimisers = method_parts(_config())
    assert [(s.name, s.optimiser.param_groups[0]["lr"]) for s in optimisers] == [
        ("main", 1e-4),
        ("unet", 1e-3),
    ]
    unet = {id(p) for p in nets["unet"].parameters()}
    assert not unet & {id(p) for p in optimisers[0].parameters()}
    assert unet == {id(p) for p in optimisers[1].parameters()}
    result, _ = _step(_config(weight_map=True), store)
    assert torch.isfinite(result.scalars["segmentation_loss"])


def test_masks_flip_with_the_image_unless_reproducing_the_reference(store: str) -> None:
    method, _, _ = method_parts(_config())
    batch = _batch(store, method)
    aug = Augment(AugmentConfig(height=64, width=96, flip_prob=1.0))(batch, torch.Generator())
    assert bool(aug.flipped.all())
    mask = (batch.seg > 0).long()
    assert torch.equal(method.foreground(aug), mask.flip(-1))
    reference, _, _ = method_parts(_config(reference_unflipped_masks=True))
    assert torch.equal(reference.foreground(aug), mask)
    assert torch.equal(flip_images(aug.seg, aug.flipped), batch.seg)


def test_stores_without_computed_masks_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.zarr"
    store = write_toy_store(
        path, ToySpec(n_sequences=1, frames_per_sequence=4, image_size=(64, 96))
    )
    args = ["train", "--preset", "segdepth-m", "--train", str(path), "--out", str(tmp_path / "r")]
    args += ["--no-pretrained", "--device", "cpu", "--set", "workers=0"]
    assert run_cli(args) == 1
    err = capsys.readouterr().err
    assert "segdepth needs foreground masks (seg)" in err and "`cli.py masks STORE`" in err
    assert err.count("\n") == 1
    group = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    create_schema_array(group, "seg", store.layout)  # all 255 = not computed
    group["seg"][:2] = 0  # first chunk computed, second not
    assert run_cli(args) == 1
    err = capsys.readouterr().err
    assert "2 of 4 frames have no masks yet" in err and err.count("\n") == 1
    assert not (tmp_path / "r" / "checkpoints").exists()
    assert open_store(path).has("seg")


def test_unet_weights_through_the_resolver(tmp_path: Path) -> None:
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        config = apply_overrides(preset("segdepth-m"), {**TINY, "unet_weights": "IMAGENET1K_V1"})
        with pytest.raises(MissingWeightsError, match="efficientnet_b3"):
            method_parts(config)  # ResNets random (--no-pretrained), the U-Net's named weights
    finally:
        torch.hub.set_dir(old)


def test_deviations_from_segdepths_own_masks_and_unet(store: str, tmp_path: Path) -> None:
    from train.methods.segdepth import segdepth_deviations

    toy = open_store(store)  # masks of the toy kind: not the reference's recipe
    config = apply_overrides(preset("segdepth-m"), {**TINY, "pretrained": True})
    found = segdepth_deviations(config, toy)
    assert len(found) == 2
    assert found[0].startswith("masks: DeepLabv3 on the store's RGB images")
    assert "--recipe segdepth" in found[0] and "efficientnet-b3-5fb5a3c3.pth" in found[1]
    path = tmp_path / "s.zarr"
    write_toy_store(path, SPEC)
    group = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    group.attrs["masks"] = {"arch": "mobilenet_v3_large", "weights": "COCO_WITH_VOC_LABELS_V1",
                            "recipe": "segdepth: create_segmentation_masks.py"}  # fmt: skip
    reference = apply_overrides(config, {"unet_weights": "/w/efficientnet-b3-5fb5a3c3.pth"})
    assert segdepth_deviations(reference, open_store(path)) == []
    group.attrs["masks"] = {**group.attrs["masks"], "weights": "mine.pth"}
    assert segdepth_deviations(reference, open_store(path)) == [
        "masks from DeepLabv3 weights mine.pth (reference: COCO_WITH_VOC_LABELS_V1)"
    ]

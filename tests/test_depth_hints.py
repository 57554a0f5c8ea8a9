"""Depth Hints in training: the per-pixel choice, the hint term, hints flipped with the image,
the ``hints`` switch of Monodepth2 and its presets, and stores without hints refused."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from pipelines.loader import Augment, AugmentConfig, make_loader
from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import method_parts, run_cli
from train.engine.config import apply_overrides
from train.engine.runtime import build_runtime
from train.engine.step import train_step
from train.losses.depthhints import hint_selection, hint_term
from train.methods import preset, presets

TINY = {
    "pretrained": False,
    "height": 64,
    "width": 96,
    "batch_size": 2,
    "workers": 0,
    "device": "cpu",
    "jitter_prob": 0.0,
    "flip_prob": 0.0,
    "lr": 1e-3,
}
SPEC = ToySpec(n_sequences=1, frames_per_sequence=4, image_size=(64, 96), hints=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("hints") / "train.zarr"
    write_toy_store(path, SPEC)
    return str(path)


def _grid(*rows: list[float]) -> torch.Tensor:
    return torch.tensor([rows], dtype=torch.float32).reshape(1, 1, 1, -1)


@pytest.mark.numerics
class TestSelection:
    def test_argmin_over_reprojection_identity_hint(self) -> None:
        # pixel: 0 reprojection wins, 1 identity wins, 2 hint wins, 3 no hint (1000 + pe)
        rep = torch.cat([_grid(0.1, 0.5, 0.5, 0.2), _grid(0.3, 0.6, 0.6, 0.3)], dim=1)
        idn = torch.cat([_grid(0.9, 0.2, 0.9, 0.9), _grid(0.9, 0.9, 0.9, 0.9)], dim=1)
        hint = _grid(0.4, 0.4, 0.1, 1000.05)
        sel = hint_selection(rep, idn, hint, noise_std=0.0)
        assert sel.reprojection_mask.flatten().tolist() == [True, False, True, True]
        assert sel.hint_mask.flatten().tolist() == [False, False, True, False]
        # masked mean of the per-pixel minimum reprojection over the pixels idn did not win
        assert math.isclose(float(sel.photometric), (0.1 + 0.5 + 0.2) / 3, rel_tol=1e-6)
        plain = hint_selection(rep, None, hint)  # no auto-mask: m_rep = 1, hint vs rep only
        assert bool(plain.reprojection_mask.all())
        assert plain.hint_mask.flatten().tolist() == [False, True, True, False]
        assert math.isclose(float(plain.photometric), (0.1 + 0.5 + 0.5 + 0.2) / 4, rel_tol=1e-6)

    def test_hint_terms(self) -> None:
        depth = _grid(1.0, 2.0, 3.0, 4.0)
        hint = _grid(2.0, 0.0, 1.0, 4.5)
        mask = torch.tensor([True, True, True, False]).reshape(1, 1, 1, 4)
        # log(1 + |D - h|) on valid hints where the hint won, over the count of hint winners
        expected = (math.log(2.0) + math.log(3.0)) / (3 + 1e-7)
        assert math.isclose(float(hint_term(depth, hint, mask)), expected, rel_tol=1e-6)
        # berHu over the selected valid pixels: r = -1, 2; c = 0.4; |r| > c: (r^2 + c^2) / 2c
        c = 0.2 * 2.0
        berhu = ((1 + c * c) / (2 * c) + (4 + c * c) / (2 * c)) / 2
        assert math.isclose(float(hint_term(depth, hint, mask, "berhu")), berhu, rel_tol=1e-6)
        with pytest.raises(ValueError, match="hint loss"):
            hint_term(depth, hint, mask, "l2")


def test_loader_and_augment_flip_hints_with_the_image(store: str) -> None:
    loader = make_loader(store, 2, workers=0, shuffle=False, frames=("stereo",), extras=("hint",))
    batch = next(iter(loader))
    stored = zarr.open_group(store, mode="r")["hint_depth"]
    rows, sides = batch.row.numpy(), batch.side.numpy()
    np.testing.assert_array_equal(batch.hint_depth.numpy(), stored[...][rows, sides])
    aug = Augment(AugmentConfig(height=32, width=48, flip_prob=1.0))(batch, torch.Generator())
    assert bool(aug.flipped.all()) and aug.hint_depth.shape == (2, 1, 32, 48)
    small = batch.hint_depth.float()[:, None, 1::2, 1::2]  # nearest-exact halving: centres
    assert torch.equal(aug.hint_depth, small.flip(-1))
    unflipped = Augment(AugmentConfig(height=32, width=48, flip_prob=0.0))(batch, None, False)
    assert torch.equal(unflipped.hint_depth, small)


def test_flipped_samples_get_the_hint_flipped_before_its_resize(tmp_path: Path) -> None:
    """depth-hints' loader flips the full-size hint, then resizes: a store with
    ``hint_depth_flipped`` gives flipped samples that map, the others ``hint_depth``."""
    from pipelines.passes.store_pass import StorePass

    path = tmp_path / "train.zarr"
    write_toy_store(path, SPEC)
    names = ("hint_depth", "hint_depth_flipped")
    job = StorePass(path, names, "hints", {"method": "toy"}, overwrite=True)
    job.start()
    shape = (4, 2, 64, 96)  # one chunk
    job.run(lambda rows: (np.full(shape, 3.0), np.full(shape, 7.0)), workers=1, progress=False)
    loader = make_loader(path, 2, workers=0, shuffle=False, frames=("stereo",), extras=("hint",))
    batch = next(iter(loader))
    assert batch.hint_depth_flipped is not None and float(batch.hint_depth_flipped.max()) == 7
    flipped = Augment(AugmentConfig(height=32, width=48, flip_prob=1.0))(batch, torch.Generator())
    assert bool(flipped.flipped.all()) and bool((flipped.hint_depth == 7).all())
    plain = Augment(AugmentConfig(height=32, width=48, flip_prob=0.0))(batch, None, False)
    assert bool((plain.hint_depth == 3).all())


def test_training_refuses_hints_being_rewritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 23 item 16: a killed ``hints --overwrite`` must not be trained on."""
    from pipelines.passes.store_pass import StorePass

    path = tmp_path / "s.zarr"
    write_toy_store(path, SPEC)
    job = StorePass(path, "hint_depth", "hints", {"method": "other"}, overwrite=True)
    job.start()  # every chunk invalidated, none rewritten yet: the toy values are old ones
    args = ["train", "--preset", "depthhints-s", "--train", str(path), "--out", str(tmp_path / "r")]
    args += ["--no-pretrained", "--device", "cpu", "--set", "workers=0"]
    assert run_cli(args) == 1
    err = capsys.readouterr().err
    assert "the hints pass is rewriting hint_depth" in err and err.count("\n") == 1
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_hints_switch_and_presets() -> None:
    s = preset("depthhints-s")
    assert s.params.hints and s.params.frame_ids == (0, "s") and s.scheduler_step == 5
    assert s.params.disparity_smoothness == 0 and presets()["depthhints-ms"].params.hints
    on = apply_overrides(preset("monodepth2-s"), ["hints=true", "hint_loss=berhu"])
    assert on.params.hints and on.params.hint_loss == "berhu"
    assert not preset("monodepth2-s").params.hints  # default off: Monodepth2 unchanged
    with pytest.raises(ValueError, match="needs the stereo source"):
        apply_overrides(preset("monodepth2-m"), ["hints=true"])
    with pytest.raises(ValueError, match="hint_loss must be one of"):
        apply_overrides(preset("depthhints-s"), ["hint_loss=l2"])


@pytest.mark.parametrize("name", ["depthhints-s", "depthhints-ms"])
def test_hint_training_steps_lower_the_loss(name: str, store: str) -> None:
    # lr 1e-4: the toy hints are noise, a larger step overshoots the log-L1 term they dominate
    config = apply_overrides(preset(name), {**TINY, "num_layers": 18, "lr": 1e-4})
    method, nets, optimisers = method_parts(config)
    request = method.loader_request()
    assert request.extras == ("hint",)
    runtime = build_runtime(config, method, nets, torch.device("cpu"))
    loader = make_loader(
        store, 2, workers=0, shuffle=False, frames=request.frames, extras=request.extras
    )
    batch = next(b for b in loader if b.has_prev is None or bool(b.has_prev.all()))
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(4):
        result = train_step(runtime, method, optimisers, batch, gen)
        assert result is not None and 0 <= float(result.scalars["hint_fraction"]) <= 1
        losses.append(float(result.loss))
    assert losses[-1] < losses[0]


def test_berhu_and_log_differ_only_in_the_hint_term(store: str) -> None:
    outs = {}
    for kind in ("log", "berhu"):
        config = apply_overrides(preset("depthhints-s"), {**TINY, "hint_loss": kind})
        method, nets, _ = method_parts(config)
        runtime = build_runtime(config, method, nets, torch.device("cpu"))
        batch = next(iter(make_loader(store, 2, workers=0, shuffle=False, frames=("stereo",),
                                      extras=("hint",))))  # fmt: skip
        aug = runtime.augment(batch, None, False)
        outs[kind] = method.loss(runtime, aug, torch.Generator().manual_seed(0))
    assert outs["log"].scalars["hint_fraction"] == outs["berhu"].scalars["hint_fraction"]
    assert float(outs["log"].total.detach()) != float(outs["berhu"].total.detach())


def test_stores_without_hints_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.zarr"
    write_toy_store(path, ToySpec(n_sequences=1, frames_per_sequence=4, image_size=(64, 96)))
    args = ["train", "--preset", "depthhints-s", "--train", str(path), "--out", str(tmp_path / "r")]
    args += ["--no-pretrained", "--device", "cpu", "--set", "workers=0"]
    assert run_cli(args) == 1
    err = capsys.readouterr().err
    assert "hints=true needs depth hints (hint_depth)" in err and "cli.py hints" in err
    assert err.count("\n") == 1
    hinted = tmp_path / "h.zarr"
    write_toy_store(hinted, SPEC)
    group = zarr.open_group(str(hinted), mode="r+", use_consolidated=False)
    group["hint_depth"][2:4] = np.nan  # the second chunk not computed yet
    args[4] = str(hinted)
    assert run_cli(args) == 1
    err = capsys.readouterr().err
    assert "2 of 4 frames have no depth hints yet" in err and err.count("\n") == 1
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_validation_on_a_store_without_hints_skips_only_the_loss(
    store: str, tmp_path: Path
) -> None:
    from train.engine.trainer import train
    from train.eval.validation import depth_scorer

    plain = tmp_path / "val.zarr"
    write_toy_store(plain, ToySpec(n_sequences=1, frames_per_sequence=2, image_size=(64, 96)))
    overrides = {**TINY, "epochs": 1, "batch_size": 4, "num_layers": 18, "lr": 1e-4}
    config = apply_overrides(preset("depthhints-s"), overrides)
    lines: list[str] = []
    summary = train(
        config, store, tmp_path / "run", plain, scorer=depth_scorer, progress=False,
        echo=lines.append,
    )  # fmt: skip
    assert summary.steps == 2 and "val/abs_rel" in summary.validation
    assert "val/loss" not in summary.validation  # the val store has no hint_depth
    said = [line for line in lines if line.startswith("validation on")]
    assert len(said) == 1 and "no loss: the store has no hint_depth" in said[0]  # once, why


def test_hint_deviations_name_what_the_store_holds(tmp_path: Path) -> None:
    from pipelines.store import open_store
    from pipelines.store.passrecord import hint_deviations

    path = tmp_path / "s.zarr"
    write_toy_store(path, SPEC)
    (old,) = hint_deviations(open_store(path))  # hints computed before the loader's resize
    assert old.startswith("hints resized by nearest pixel centres") and "--overwrite" in old
    group = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    group.attrs["hints"] = {"hint_size": [128, 384], "images": "png", "resize": "cv2"}
    assert hint_deviations(open_store(path)) == [
        "flipped samples get the flipped resized hint (reference: flip, then resize)",
        "hints matched at 128x384 (reference: 320x1024)",
        "hints from png files (reference: the .jpg files)",
    ]

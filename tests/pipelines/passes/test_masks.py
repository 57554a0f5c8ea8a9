"""DeepLabv3 mask stage: RGB normalisation, weights from cache or file, resumable ``seg``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from pipelines import open_store
from pipelines.passes.masks import (
    MissingWeightsError,
    build_segmenter,
    compute_masks,
    segment,
    weights_file,
)
from pipelines.store import IncompleteStoreError, create_schema_array
from pipelines.store.inspect import verify
from pipelines.store.schema import SEG_NOT_COMPUTED
from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import one_error_line, run_cli

TINY = ToySpec(
    dataset="nyu-raw", n_sequences=1, frames_per_sequence=4, image_size=(64, 96), chunk=2
)


@pytest.fixture
def hub_dir(tmp_path: Path) -> Iterator[Path]:
    """An empty torch hub cache, so nothing real is found (and nothing is downloaded)."""
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(old)


class ChannelsAsLogits(torch.nn.Module):
    """Stub segmenter: logits = the normalised R, G, B planes followed by 18 zero planes."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        zeros = torch.zeros(x.shape[0], 18, *x.shape[2:])
        return {"out": torch.cat([x, zeros], 1)}


def test_segment_uses_rgb_order_and_imagenet_normalisation() -> None:
    images = np.zeros((3, 5, 7, 3), np.uint8)
    images[0, ..., 0] = 255  # red: normalised R = 2.25 is the largest logit
    images[1, ..., 2] = 255  # blue: B = 2.64
    images[2] = 124  # mid grey, ~ImageNet mean: every plane ~0, so class 0 or a zero plane
    labels = segment(ChannelsAsLogits(), images, batch_size=2)
    assert labels.dtype == np.uint8 and labels.shape == (3, 5, 7)
    assert (labels[0] == 0).all() and (labels[1] == 2).all()
    with pytest.raises(ValueError, match="uint8"):
        segment(ChannelsAsLogits(), images.astype(np.float32))


def test_compute_masks_random_model_on_cpu(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    write_toy_store(path, TINY)
    report = compute_masks(path, weights=None, batch_size=3, device="cpu", progress=False)
    assert (report.chunks, report.computed, report.skipped, report.images) == (2, 2, 0, 4)
    store = open_store(path)
    seg = store["seg"][...]
    assert seg.shape == (4, 1, 64, 96) and seg.dtype == np.uint8
    assert (seg != SEG_NOT_COMPUTED).all()  # the real network ran on every pixel
    assert store.attrs["masks"] == {"arch": "mobilenet_v3_large", "weights": "random"}
    assert store.complete and verify(store) == []


def test_compute_masks_fills_every_pixel_and_resumes(tmp_path: Path, stub_segmenter) -> None:
    path = tmp_path / "s.zarr"
    store = write_toy_store(path, TINY)
    create_schema_array(open_store(path, mode="r+").group, "seg", store.layout)
    assert (open_store(path)["seg"][...] == SEG_NOT_COMPUTED).all()  # not passed yet

    stub_segmenter(7)  # the "network" answers class 7 everywhere
    report = compute_masks(path, weights=None, device="cpu", progress=False)
    assert (report.computed, report.skipped) == (2, 0)
    assert (open_store(path)["seg"][...] == 7).all()

    group = zarr.open_group(str(path), mode="r+")
    group["seg"][2:4] = SEG_NOT_COMPUTED  # chunk 1 reset, as if never written
    group["_written_seg"][1] = 0  # its record: not written
    stub_segmenter(4)
    report = compute_masks(path, weights=None, device="cpu", progress=False)
    assert (report.computed, report.skipped) == (1, 1)
    seg = open_store(path)["seg"][...]
    assert (seg[:2] == 7).all() and (seg[2:] == 4).all()  # chunk 0 kept, chunk 1 computed
    assert verify(open_store(path)) == []  # metadata re-consolidated with seg in it


def test_weights_from_hub_cache_or_file(tmp_path: Path, hub_dir: Path) -> None:
    reference = build_segmenter("mobilenet_v3_large", None, "cpu")
    state = {k: v for k, v in reference.state_dict().items()}
    cached = weights_file("mobilenet_v3_large")
    assert cached == hub_dir / "checkpoints" / "deeplabv3_mobilenet_v3_large-fc3c493d.pth"
    cached.parent.mkdir(parents=True)
    torch.save(state, cached)
    own = tmp_path / "mine.pth"
    torch.save({"model": state}, own)
    x = torch.rand(1, 3, 32, 48)
    with torch.inference_mode():
        expected = reference(x)["out"]
        for weights in ("default", own):
            model = build_segmenter("mobilenet_v3_large", weights, "cpu")
            torch.testing.assert_close(model(x)["out"], expected)
    (tmp_path / "junk.pth").write_bytes(b"not torch")
    with pytest.raises(ValueError, match="junk.pth"):
        build_segmenter("mobilenet_v3_large", tmp_path / "junk.pth", "cpu")


def test_missing_weights_message(
    tmp_path: Path, hub_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(MissingWeightsError, match="deeplabv3_resnet50_coco-cd0a2569.pth"):
        build_segmenter("resnet50", "default", "cpu")
    path = tmp_path / "s.zarr"
    write_toy_store(path, TINY)
    assert run_cli(["masks", str(path), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: DeepLabv3 mobilenet_v3_large weights not found")
    assert str(hub_dir / "checkpoints" / "deeplabv3_mobilenet_v3_large-fc3c493d.pth") in err
    assert "--seg-weights FILE" in err and err.count("\n") == 1
    assert not open_store(path).has("seg")


def test_masks_refuse_incomplete_store_and_other_model(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    write_toy_store(path, TINY)
    group = zarr.open_group(str(path), mode="r+")
    group.create_array("seg", shape=(4, 1, 64, 96), chunks=(2, 1, 64, 96), dtype="uint8")
    group.attrs["masks"] = {"arch": "mobilenet_v3_large", "weights": "random"}
    with pytest.raises(ValueError, match="seg was computed with"):
        compute_masks(path, arch="mobilenet_v3_large", weights=tmp_path / "x.pth", progress=False)
    group.attrs["complete"] = False
    with pytest.raises(IncompleteStoreError, match="incomplete"):
        compute_masks(path, weights=None, device="cpu", progress=False)


def test_seg_weights_errors_name_the_file(
    tmp_path: Path, hub_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.zarr"
    write_toy_store(path, TINY)
    fake = tmp_path / "fake.pth"
    fake.write_bytes(b"e" * 101)
    assert run_cli(["masks", str(path), "--device", "cpu", "--seg-weights", str(fake)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: --seg-weights {fake}: not a torch state dict file")
    missing = tmp_path / "nothere.pth"
    assert run_cli(["masks", str(path), "--device", "cpu", "--seg-weights", str(missing)]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        f"error: --seg-weights {missing}: file not found"
    )
    assert not open_store(path).has("seg")


def test_masks_say_when_they_fall_back_to_the_cpu(
    tmp_path: Path, stub_segmenter, capsys: pytest.CaptureFixture[str]
) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available: no fallback to the CPU")
    path = tmp_path / "s.zarr"
    write_toy_store(path, TINY)
    stub_segmenter(7)
    assert run_cli(["masks", str(path)]) == 0
    err = capsys.readouterr().err
    assert "masks: CUDA is not available, DeepLabv3 runs on the CPU" in err
    assert run_cli(["masks", str(path), "--device", "cpu", "--overwrite"]) == 0
    assert "CUDA" not in capsys.readouterr().err  # asked for the CPU: nothing to say


def test_masks_from_a_synthetic_worlds_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.zarr"
    spec = ToySpec(n_sequences=2, frames_per_sequence=4, image_size=(32, 48), chunk=2)
    write_toy_store(path, spec)
    assert run_cli(["masks", str(path), "--truth", str(tmp_path)]) == 1
    assert "no true masks" in one_error_line(capsys.readouterr().err)
    masks = {f"seq_{s:02d}/image_0{c}": np.full((4, 64, 96), 7 * (c == 3), np.uint8)
             for s in range(2) for c in (2, 3)}  # fmt: skip
    np.savez(tmp_path / "masks.npz", **masks)
    assert run_cli(["masks", str(path), "--truth", str(tmp_path)]) == 0
    seg = open_store(path)["seg"][...]
    assert (seg[:, 0] == 0).all() and (seg[:, 1] == 7).all()

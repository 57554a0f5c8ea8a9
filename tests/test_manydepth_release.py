"""import manydepth: a release folder saved in ManyDepth's own layout (random weights, the unused
``prematching_conv`` and the stored back-projection grids included) becomes a checkpoint that
evaluates, predicts (the two-frame model and the teacher) and exports."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import one_error_line, run_cli
from tests.test_networks import _monodepth2_depth_decoder_state
from tests.test_release_weights import write_monodepth2_release
from train.eval.evaluate import load_checkpoint_method
from train.eval.export import export_checkpoint
from train.eval.release_manydepth import import_manydepth
from train.models.manydepth_encoder import ResnetEncoderMatching

SIZE = (64, 96)


def write_manydepth_release(folder: Path, *, teacher: bool = True) -> dict[str, dict]:
    """A fake ManyDepth release folder (ResNet-18, 96 bins) in the reference's key layout."""
    mono = write_monodepth2_release(folder / "mono", size=SIZE)  # teacher + pose files
    torch.manual_seed(5)
    encoder = ResnetEncoderMatching(18)
    for p in encoder.parameters():
        p.data.normal_(0, 0.05)
    state = {k: v for k, v in encoder.state_dict().items() if "depth_bin" not in k}
    h, w = SIZE[0] // 4, SIZE[1] // 4
    state |= {
        "prematching_conv.0.weight": torch.randn(16, 64, 1, 1),
        "prematching_conv.0.bias": torch.randn(16),
        "backprojector.id_coords": torch.zeros(2, h, w),
        "backprojector.ones": torch.ones(96, 1, h * w),
        "backprojector.pix_coords": torch.zeros(96, 3, h * w),
        "height": SIZE[0],
        "width": SIZE[1],
        "min_depth_bin": 1.7,
        "max_depth_bin": 35.25,
    }
    depth = _monodepth2_depth_decoder_state((64, 64, 128, 256, 512))
    torch.save(state, folder / "encoder.pth")
    torch.save(depth, folder / "depth.pth")
    for name in ("pose_encoder", "pose"):
        (folder / "mono" / f"{name}.pth").rename(folder / f"{name}.pth")
    if teacher:
        (folder / "mono" / "encoder.pth").rename(folder / "mono_encoder.pth")
        (folder / "mono" / "depth.pth").rename(folder / "mono_depth.pth")
    return {"encoder": state, "depth": depth, "mono_encoder": mono["encoder"]}


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    folder = tmp_path_factory.mktemp("KITTI_MR")
    return folder, write_manydepth_release(folder)


def test_import_loads_every_network(release, tmp_path: Path) -> None:
    folder, files = release
    report = import_manydepth(folder, tmp_path / "md.pt")
    assert report.size == SIZE and report.num_layers == 18
    assert report.depth_range == (1.7, 35.25)
    assert set(report.networks) == {"depth", "pose", "teacher"} and not report.notes
    method, nets = load_checkpoint_method(tmp_path / "md.pt")
    assert (method.config.height, method.config.width) == SIZE
    encoder = nets["depth"].encoder.state_dict()
    for key, value in files["encoder"].items():
        if isinstance(value, torch.Tensor) and key.split(".")[0] not in (
            "prematching_conv", "backprojector"):  # fmt: skip
            assert torch.equal(encoder[key], value), key
    assert float(encoder["min_depth_bin"]) == 1.7 and float(encoder["max_depth_bin"]) == 35.25
    assert torch.equal(
        nets["depth"].decoder.disp_heads[0].conv.weight, files["depth"]["decoder.10.conv.weight"]
    )
    teacher_conv = files["mono_encoder"]["encoder.conv1.weight"]
    assert torch.equal(nets["teacher"].encoder.encoder.conv1.weight, teacher_conv)
    predictor = method.predictor(nets).eval()
    with torch.no_grad():
        depth = predictor(*predictor.arguments(torch.rand(2, 3, *SIZE)))
    assert depth.shape == (2, 1, *SIZE) and bool((depth > 0).all())


@pytest.mark.slow
def test_import_evaluates_teacher_and_exports(release, tmp_path: Path, capsys) -> None:
    folder, _ = release
    out = tmp_path / "md.pt"
    assert run_cli(["import", "manydepth", str(folder), "--out", str(out)]) == 0
    assert "depth bins 1.7..35.25" in capsys.readouterr().out
    store = tmp_path / "test.zarr"
    spec = ToySpec(n_sequences=1, frames_per_sequence=4, image_size=SIZE)
    write_toy_store(store, spec)
    for extra in ([], ["--set", "teacher=true"]):
        assert run_cli(["eval", str(out), str(store), "--device", "cpu", *extra]) == 0
        printed = capsys.readouterr().out
        assert ("previous frames: 2 missing" in printed) == (not extra)  # one per view
    report = export_checkpoint(out, tmp_path / "md.onnx", "onnx")
    assert report.max_rel_error <= 1e-4


def test_incomplete_release_is_refused(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "partial"
    write_manydepth_release(folder, teacher=False)
    report = import_manydepth(folder, tmp_path / "no_teacher.pt")
    assert "no mono_encoder.pth" in report.notes[0] and "teacher" not in report.networks
    method, nets = load_checkpoint_method(tmp_path / "no_teacher.pt")
    with pytest.raises(ValueError, match="teacher"):
        load_checkpoint_method(tmp_path / "no_teacher.pt", overrides=["teacher=true"])
    (folder / "pose.pth").unlink()
    assert run_cli(["import", "manydepth", str(folder), "--out", str(tmp_path / "x.pt")]) == 1
    assert "no pose.pth" in one_error_line(capsys.readouterr().err)

"""predict: images, folders and videos -> depth .npy / 16-bit PNG / colour PNG / JSON, the one
DepthModel (scaling applied or stated), flip post-processing, fixed colour range, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.helpers import one_error_line, run_cli, tiny_checkpoint
from train.colormap import colorize
from train.eval.evaluate import load_checkpoint_method
from train.eval.metrics import post_process_disparity
from train.eval.predict import DepthModel, network_image, parse_range


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predict_ckpt")
    return {
        "mono": tiny_checkpoint(root / "m.pt", "monodepth2-m"),
        "stereo": tiny_checkpoint(root / "s.pt", "monodepth2-s"),
    }


def _image(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    noise = rng.uniform(0, 60, (h, w, 3)).astype(np.float32)
    return np.clip(ramp * 0.7 + noise, 0, 255).astype(np.uint8)  # RGB


def _write_rgb(path: Path, rgb: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), rgb[:, :, ::-1])
    return path


def _write_video(path: Path, frames: list[np.ndarray]) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame[:, :, ::-1])
    writer.release()
    return path


def _model(checkpoint: Path) -> DepthModel:
    method, nets = load_checkpoint_method(checkpoint)
    return DepthModel(method.predictor(nets)).eval()


def test_depth_model_applies_fixed_scale_and_states_relative(checkpoints) -> None:
    x = torch.rand(2, 3, 64, 96)
    stereo = _model(checkpoints["stereo"])
    with torch.no_grad():
        assert torch.equal(stereo(x), stereo.predictor(x) * 5.4)
    assert stereo.describe()["units"] == "metres"
    mono = _model(checkpoints["mono"])
    with torch.no_grad():
        assert torch.equal(mono(x), mono.predictor(x))
    assert mono.describe()["units"] == "relative" and "median" in mono.describe()["scaling"]


def test_images_folders_and_video(checkpoints, tmp_path: Path, capsys) -> None:
    inputs = tmp_path / "in"
    (inputs / "folder").mkdir(parents=True)
    exact = _write_rgb(inputs / "exact.png", _image(64, 96, 0))  # the network size
    odd = _write_rgb(inputs / "odd.jpg", _image(50, 70, 1))
    _write_rgb(inputs / "folder" / "a.png", _image(40, 60, 2))
    _write_rgb(inputs / "folder" / "b.jpeg", _image(40, 60, 3))
    video = _write_video(inputs / "clip.avi", [_image(40, 60, 10 + i) for i in range(3)])
    out = tmp_path / "out"
    args = [str(exact), str(odd), str(inputs / "folder"), str(video)]
    code = run_cli(
        ["predict", str(checkpoints["stereo"]), *args, "--out", str(out), "--batch-size", "2"]
    )
    assert code == 0
    assert "7 depth maps from 5 inputs" in capsys.readouterr().out
    expected = {
        "exact": (64, 96),
        "odd": (50, 70),
        "folder/a": (40, 60),
        "folder/b": (40, 60),
        **{f"clip/{i:06d}": (40, 60) for i in range(3)},
    }
    for stem, size in expected.items():
        depth = np.load(out / f"{stem}_depth.npy")
        assert depth.dtype == np.float32 and depth.shape == size and (depth > 0).all()
        png16 = cv2.imread(str(out / f"{stem}_depth.png"), cv2.IMREAD_UNCHANGED)
        assert png16.dtype == np.uint16
        np.testing.assert_array_equal(png16, np.clip(np.round(depth * 1000), 0, 65535))
        colour = cv2.imread(str(out / f"{stem}_colour.png"))
        assert colour.shape == (*size, 3)
    info = json.loads((out / "clip_depth.json").read_text())
    assert info["units"] == "metres" and info["frames"] == 3 and info["input_size"] == [40, 60]
    assert json.loads((out / "folder" / "a_depth.json").read_text())["network_size"] == [64, 96]
    # at the network size nothing is resized: exactly the model's (scaled) depth
    model = _model(checkpoints["stereo"])
    rgb = cv2.imread(str(exact))[:, :, ::-1].copy()
    with torch.no_grad():
        ref = model(network_image(rgb, (64, 96), torch.device("cpu")))[0, 0].numpy()
    np.testing.assert_allclose(np.load(out / "exact_depth.npy"), ref, rtol=1e-5)


def test_mono_depth_is_relative_and_says_so(checkpoints, tmp_path: Path) -> None:
    image = _write_rgb(tmp_path / "x.png", _image(64, 96, 4))
    assert run_cli(["predict", str(checkpoints["mono"]), str(image), "--out", str(tmp_path)]) == 0
    info = json.loads((tmp_path / "x_depth.json").read_text())
    assert info["units"] == "relative" and "median" in info["scaling"]


def test_post_process_is_the_evaluation_blend(checkpoints, tmp_path: Path) -> None:
    image = _write_rgb(tmp_path / "x.png", _image(64, 96, 5))
    ckpt = str(checkpoints["mono"])
    assert run_cli(["predict", ckpt, str(image), "--out", str(tmp_path), "--post-process"]) == 0
    model = _model(checkpoints["mono"])
    x = network_image(_image(64, 96, 5), (64, 96), torch.device("cpu"))
    with torch.no_grad():
        disp = 1.0 / model(x)[0, 0].numpy()
        flipped = 1.0 / model(x.flip(-1))[0, 0].numpy()[:, ::-1]
    expected = 1.0 / post_process_disparity(disp, flipped).astype(np.float32)
    got = np.load(tmp_path / "x_depth.npy")
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    assert not np.allclose(got, 1.0 / disp, rtol=1e-6)


def test_fixed_range_colours_by_depth_alone(checkpoints, tmp_path: Path) -> None:
    image = _write_rgb(tmp_path / "x.png", _image(64, 96, 6))
    ckpt = str(checkpoints["stereo"])
    args = ["predict", ckpt, str(image), "--out", str(tmp_path), "--range", "1:80"]
    assert run_cli(args) == 0
    depth = np.load(tmp_path / "x_depth.npy")
    disp = 1.0 / depth
    expected = colorize(disp, valid=np.isfinite(disp), vmin=1 / 80, vmax=1.0)
    colour = cv2.imread(str(tmp_path / "x_colour.png"))[:, :, ::-1]
    np.testing.assert_array_equal(colour, expected)
    assert json.loads((tmp_path / "x_depth.json").read_text())["colour_range"] == [1.0, 80.0]


@pytest.mark.parametrize("text", ["80:1", "a:b", "5", "0:10"])
def test_bad_range_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="MIN:MAX"):
        parse_range(text)


@pytest.mark.parametrize(
    "case", ["garbage image", "truncated image", "bad video", "missing", "unknown kind", "size"]
)
def test_bad_inputs_are_one_line_and_keep_outputs(case, checkpoints, tmp_path: Path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "kept_depth.npy").write_bytes(b"earlier result")
    good = _write_rgb(tmp_path / "good.png", _image(64, 96, 7))
    extra: list[str] = []
    if case == "garbage image":
        bad = tmp_path / "bad.png"
        bad.write_bytes(b"not a png at all")
    elif case == "truncated image":
        ok, data = cv2.imencode(".png", _image(64, 96, 8))
        bad = tmp_path / "cut.png"
        bad.write_bytes(data.tobytes()[: len(data) // 2])
    elif case == "bad video":
        bad = tmp_path / "clip.mp4"
        bad.write_bytes(b"garbage" * 20)
    elif case == "missing":
        bad = tmp_path / "nope.png"
    elif case == "unknown kind":
        bad = tmp_path / "notes.txt"
        bad.write_text("hello")
    else:
        bad, extra = good, ["--height", "70"]
    args = ["predict", str(checkpoints["mono"]), str(good), str(bad), "--out", str(out), *extra]
    assert run_cli(args) == 1
    line = one_error_line(capsys.readouterr().err)
    assert (bad.name in line) or ("70" in line)
    assert (out / "kept_depth.npy").read_bytes() == b"earlier result"
    assert not list(out.glob("*.tmp"))


def test_checkpoint_of_unknown_method_is_one_line(checkpoints, tmp_path: Path, capsys) -> None:
    payload = torch.load(checkpoints["mono"], weights_only=False)
    payload["config"]["method"] = "nope"
    torch.save(payload, tmp_path / "nope.pt")
    image = _write_rgb(tmp_path / "x.png", _image(64, 96, 9))
    assert run_cli(["predict", str(tmp_path / "nope.pt"), str(image), "--out", str(tmp_path)]) == 1
    assert "nope" in one_error_line(capsys.readouterr().err)


# --------------------------------------------------------------------------- issue 23
def test_range_in_metres_is_refused_for_a_relative_model(checkpoints, tmp_path: Path, capsys):
    image = _write_rgb(tmp_path / "x.png", _image(64, 96, 11))
    out = tmp_path / "out"
    args = ["predict", str(checkpoints["mono"]), str(image), "--out", str(out), "--range", "1:80"]
    assert run_cli(args) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "--range 1:80 is in metres" in line and "relative depth" in line
    assert not out.exists()  # refused before anything was written


def test_relative_png_keeps_its_precision_with_its_scale(checkpoints, tmp_path: Path, capsys):
    image = _write_rgb(tmp_path / "x.png", _image(64, 96, 12))
    video = _write_video(tmp_path / "v.avi", [_image(40, 60, 20 + i) for i in range(2)])
    out = tmp_path / "out"
    args = ["predict", str(checkpoints["mono"]), str(image), str(video), "--out", str(out)]
    assert run_cli(args) == 0
    printed = capsys.readouterr().out
    assert "relative depth" in printed and "depth in relative" not in printed
    depth = np.load(out / "x_depth.npy")
    png16 = cv2.imread(str(out / "x_depth.png"), cv2.IMREAD_UNCHANGED)
    info = json.loads((out / "x_depth.json").read_text())
    scale = info["png16_scale"]
    assert png16.max() == 65535 and "png16_scale" in info["png16"]
    np.testing.assert_allclose(png16 * scale, depth, rtol=0, atol=scale / 2 + 1e-12)
    # millimetres of relative depth (the old encoding) kept a few dozen values, this keeps all
    assert len(np.unique(np.round(depth * 1000))) < 100 < len(np.unique(png16))
    scales = json.loads((out / "v_depth.json").read_text())["png16_scale"]
    assert isinstance(scales, list) and len(scales) == 2
    frame1 = cv2.imread(str(out / "v" / "000001_depth.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_allclose(
        frame1 * scales[1], np.load(out / "v" / "000001_depth.npy"), atol=scales[1] / 2 + 1e-12
    )


def test_metric_png_scale_is_a_millimetre(checkpoints, tmp_path: Path) -> None:
    image = _write_rgb(tmp_path / "x.png", _image(64, 96, 13))
    assert run_cli(["predict", str(checkpoints["stereo"]), str(image), "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "x_depth.json").read_text())["png16_scale"] == 0.001


def test_companions_only_after_their_maps(checkpoints, tmp_path: Path, capfd) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    for k in range(3):
        _write_rgb(folder / f"a{k}.png", _image(64, 96, 30 + k))
    ok, data = cv2.imencode(".png", _image(64, 96, 40))
    (folder / "b_cut.png").write_bytes(data.tobytes()[: len(data) // 2])  # header fine, data cut
    _write_rgb(folder / "c.png", _image(64, 96, 41))
    out = tmp_path / "out"
    args = ["predict", str(checkpoints["mono"]), str(folder), "--out", str(out)]
    assert run_cli([*args, "--batch-size", "8", "--device", "cpu"]) == 1
    line = one_error_line(capfd.readouterr().err)  # no libpng line before it
    assert "b_cut.png" in line and "cannot be decoded" in line
    written = out / "folder"
    jsons = sorted(p.name for p in written.glob("*_depth.json"))
    assert jsons == ["a0_depth.json", "a1_depth.json", "a2_depth.json"]  # those before b_cut
    for name in jsons:
        stem = name.removesuffix("_depth.json")
        for suffix in ("_depth.npy", "_depth.png", "_colour.png"):
            assert (written / f"{stem}{suffix}").is_file()
    assert not (written / "c_depth.npy").exists() and not list(out.rglob("*.tmp"))


def test_broken_video_is_one_line_without_ffmpeg_lines(checkpoints, tmp_path: Path, capfd):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"garbage" * 20)
    out = tmp_path / "out"
    assert run_cli(["predict", str(checkpoints["mono"]), str(video), "--out", str(out)]) == 1
    line = one_error_line(capfd.readouterr().err)  # FFmpeg's "moov atom not found" is inside
    assert str(video) in line and "cannot open this video" in line


def test_full_disk_names_the_file_and_leaves_no_temporary(
    checkpoints, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import train.eval.files

    def full(f, data: bytes) -> None:  # noqa: ANN001
        f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(train.eval.files, "_write", full)
    image = _write_rgb(tmp_path / "x.png", _image(64, 96, 14))
    out = tmp_path / "out"
    assert run_cli(["predict", str(checkpoints["mono"]), str(image), "--out", str(out)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert f"{out / 'x_depth.npy'}: disk full (" in line and "bytes needed" in line
    assert "Errno" not in line and "free" in line
    assert list(out.iterdir()) == []  # no temporary file, no companion


def test_device_fallback_is_said(checkpoints, tmp_path: Path, capsys) -> None:
    image = _write_rgb(tmp_path / "x.png", _image(64, 96, 15))
    assert run_cli(["predict", str(checkpoints["mono"]), str(image), "--out", str(tmp_path)]) == 0
    said = "note: no CUDA device available: running on the CPU" in capsys.readouterr().out
    assert said == (not torch.cuda.is_available())


def test_out_below_a_file_is_one_line(checkpoints, tmp_path: Path, capsys) -> None:
    image = _write_rgb(tmp_path / "x.png", _image(64, 96, 16))
    out = tmp_path / "x.png" / "out"
    assert run_cli(["predict", str(checkpoints["mono"]), str(image), "--out", str(out)]) == 1
    assert f"{image} is a file, not a folder" in one_error_line(capsys.readouterr().err)

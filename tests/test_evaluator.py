"""Evaluator: protocol selection, metrics of an (untrained) model on a toy test store, JSON, PNGs,
checkpoint evaluation through the CLI, and its error paths."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pipelines.store import Store
from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import method_parts, run_cli
from train.engine.checkpoint import TrainState, save_checkpoint
from train.engine.config import apply_overrides
from train.eval.colormap import colorize
from train.eval.evaluate import Protocol, evaluate_networks, protocol_metrics, select_protocol
from train.eval.metrics import EIGEN_METRIC_NAMES
from train.methods import Predictor, Scaling, method_class, preset

MEDIAN, STEREO = Scaling(), Scaling(median=False, factor=5.4)

TINY = {"pretrained": False, "height": 64, "width": 96, "device": "cpu"}


@pytest.fixture(scope="module")
def test_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """KITTI-like toy store with padded gt_depth: 8 frames at 64x96."""
    path = tmp_path_factory.mktemp("toy_test") / "test.zarr"
    write_toy_store(path, ToySpec(n_sequences=1, frames_per_sequence=4, image_size=(64, 96)))
    return str(path)


def fake_store(dataset: str, arrays: tuple[str, ...], attrs: dict | None = None) -> Store:
    return Store(
        path="fake.zarr",
        group=None,  # type: ignore[arg-type]
        attrs={"dataset": dataset} | (attrs or {}),
        arrays=dict.fromkeys(arrays),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("dataset", "attrs", "preset_name", "expected"),
    [
        ("kitti-raw", {"ground_truth": {"protocol": "eigen"}}, "monodepth2-m", ("eigen", MEDIAN)),
        ("kitti-raw", {}, "monodepth2-m", ("eigen", MEDIAN)),
        (
            "kitti-raw",
            {"ground_truth": {"protocol": "eigen_benchmark"}},
            "monodepth2-m",
            ("eigen_benchmark", MEDIAN),
        ),
        ("kitti-raw", {"ground_truth": {"protocol": "eigen"}}, "monodepth2-s", ("eigen", STEREO)),
        ("kitti-raw", {"ground_truth": {"protocol": "eigen"}}, "monodepth2-ms", ("eigen", STEREO)),
        ("nyu-labeled", {}, "monodepth2-nyu-m", ("nyu", MEDIAN)),
    ],
)
def test_protocol_from_store_attrs(dataset, attrs, preset_name, expected) -> None:
    store = fake_store(dataset, ("image", "gt_depth", "gt_size"), attrs)
    assert select_protocol(store, _scaling(preset_name)) == Protocol(*expected)


def _scaling(preset_name: str) -> Scaling:
    config = preset(preset_name)
    p = config.params
    return STEREO if p.use_stereo else MEDIAN


def test_protocol_needs_ground_truth_and_known_scaling() -> None:
    with pytest.raises(ValueError, match="no gt_depth"):
        select_protocol(fake_store("kitti-raw", ("image",)), MEDIAN)
    store = fake_store("kitti-raw", ("image", "gt_depth"))
    assert select_protocol(store, MEDIAN, "stereo").scaling == STEREO
    assert select_protocol(store, STEREO, "median").scaling == MEDIAN
    with pytest.raises(ValueError, match="scaling"):
        select_protocol(store, MEDIAN, "cubic")


def test_untrained_model_is_scored_with_pictures(test_store: str, tmp_path: Path) -> None:
    config = apply_overrides(preset("monodepth2-m"), TINY)
    method, nets, _ = method_parts(config)
    report = evaluate_networks(
        method, nets, test_store, batch_size=3, save_images=tmp_path, max_images=2
    )
    assert report.n_images == 8 and report.protocol == Protocol("eigen", MEDIAN)
    assert set(EIGEN_METRIC_NAMES) <= set(report.metrics)
    assert all(np.isfinite(v) for v in report.metrics.values())
    assert "abs_rel" in report.table() and "ratio median" in str(report)
    assert len(report.images_written) == 2
    panel = cv2.imread(report.images_written[0])
    assert panel.shape == (3 * 64, 96, 3)  # image, prediction, ground truth


class GroundTruthPredictor(Predictor):
    """Returns the store's ground truth in store order (zeros -> 1 m): the evaluation oracle."""

    def __init__(self, gt: np.ndarray) -> None:
        super().__init__()
        self.gt = np.where(gt > 0, gt, 1.0).astype(np.float32)
        self.next = 0
        self.scaling = MEDIAN

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        n = image.shape[0]
        out = torch.from_numpy(self.gt[self.next : self.next + n]).unsqueeze(1)
        self.next += n
        return out


def _oracle_method(config, predictor: Predictor):
    method = method_class(config.method)(config)
    method.predictor = lambda nets: predictor  # type: ignore[method-assign]
    return method


def test_ground_truth_scores_perfectly_on_kitti(test_store: str) -> None:
    from pipelines.store import open_store

    store = open_store(test_store)
    h, w = (int(v) for v in store["gt_size"][0])
    rows = np.asarray(store["samples"][:, 0])
    gt = np.asarray(store["gt_depth"][:, :h, :w])[rows]  # one map per sample, in sample order
    config = apply_overrides(preset("monodepth2-m"), TINY)
    method = _oracle_method(config, GroundTruthPredictor(gt))
    report = evaluate_networks(method, None, test_store, batch_size=3)  # type: ignore[arg-type]
    assert report.metrics["abs_rel"] < 1e-6 and report.metrics["a1"] == 1.0


def test_ground_truth_scores_perfectly_on_nyu() -> None:
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.5, 9.0, size=(2, 480, 640)).astype(np.float32)
    pred = gt[:, 44:471, 40:601]
    metrics = protocol_metrics(Protocol("nyu", MEDIAN), list(gt), pred)
    assert metrics["abs_rel"] < 1e-6 and metrics["a1"] == 1.0


def test_post_processing_is_the_flip_blend(test_store: str) -> None:
    """A prediction that is the same for an image and its mirror image is left unchanged by
    flip post-processing; an asymmetric one is not."""
    config = apply_overrides(preset("monodepth2-m"), TINY)
    method, nets, _ = method_parts(config)
    symmetric = _oracle_method(config, ConstantPredictor(mirror_symmetric=True))
    plain = evaluate_networks(symmetric, nets, test_store)
    post = evaluate_networks(symmetric, nets, test_store, post_process=True)
    assert post.post_process and post.metrics == plain.metrics
    ramp = _oracle_method(config, ConstantPredictor(mirror_symmetric=False))
    plain = evaluate_networks(ramp, nets, test_store)
    post = evaluate_networks(ramp, nets, test_store, post_process=True)
    assert post.metrics["abs_rel"] != plain.metrics["abs_rel"]


class ConstantPredictor(Predictor):
    """Depth 2 m everywhere, or a left-to-right ramp (which a mirror image reverses)."""

    def __init__(self, mirror_symmetric: bool) -> None:
        super().__init__()
        self.mirror_symmetric = mirror_symmetric

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        b, _, h, w = image.shape
        if self.mirror_symmetric:
            return torch.full((b, 1, h, w), 2.0)
        ramp = torch.linspace(1.0, 8.0, w) * (1 + image[:, :1].mean(dim=(2, 3), keepdim=True))
        return ramp.expand(b, 1, h, w).contiguous()


def test_colorize_is_magma_and_blacks_out_invalid() -> None:
    values = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    values[0, 0] = 0
    rgb = colorize(values)
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [0, 0, 0]
    assert rgb[2, 3].sum() > rgb[0, 1].sum()  # bright for large values


def _checkpoint(path: Path, preset_name: str = "monodepth2-m") -> Path:
    config = apply_overrides(preset(preset_name), TINY)
    _, nets, optimisers = method_parts(config)
    return save_checkpoint(path, config, nets, optimisers, TrainState())


def test_cli_eval_writes_json_and_pngs(test_store: str, tmp_path: Path, capsys) -> None:
    ckpt = _checkpoint(tmp_path / "last.pt")
    out_json, pictures = tmp_path / "m.json", tmp_path / "png"
    code = run_cli(
        [
            "eval",
            str(ckpt),
            test_store,
            "--json",
            str(out_json),
            "--save-images",
            str(pictures),
            "--device",
            "cpu",
            "--batch-size",
            "4",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "protocol eigen" in printed and "abs_rel" in printed
    data = json.loads(out_json.read_text())
    assert data["protocol"] == "eigen" and data["scaling"] == "median" and data["n_images"] == 8
    assert len(list(pictures.glob("*.png"))) == 8


def test_cli_eval_stereo_model_is_metric(test_store: str, tmp_path: Path, capsys) -> None:
    ckpt = _checkpoint(tmp_path / "s.pt", "monodepth2-s")
    run_cli(["eval", str(ckpt), test_store, "--device", "cpu"])
    assert "x5.4 (fixed)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["eval", "{tmp}/missing.pt", "{store}"],
        ["eval", "{ckpt}", "{tmp}/missing.zarr"],
        ["train", "--preset", "monodepth2-m", "--train", "{tmp}/missing.zarr", "--out", "{tmp}/r"],
        ["train", "--preset", "nope", "--train", "{store}", "--out", "{tmp}/r"],
        ["train", "--train", "{store}", "--out", "{tmp}/r", "--resume"],
    ],
)
def test_cli_errors_are_one_line(args, test_store: str, tmp_path: Path, capsys) -> None:
    ckpt = _checkpoint(tmp_path / "ok.pt")
    argv = [a.format(tmp=tmp_path, store=test_store, ckpt=ckpt) for a in args]
    assert run_cli(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err


def test_nyu_protocol_scores_crop_sized_predictions() -> None:
    """Disparities of the cropped image, resized to the 427x561 crop: a prediction proportional
    to the truth scores perfectly under median scaling."""
    gt = np.full((2, 480, 640), 3.0, dtype=np.float32)
    gt[:, 240:] = 6.0  # bottom half farther
    crop = gt[:, 44:471, 40:601]
    small = np.stack(
        [cv2.resize(1.0 / (0.1 * c), (48, 32), interpolation=cv2.INTER_NEAREST) for c in crop]
    )
    metrics = protocol_metrics(Protocol("nyu", MEDIAN), list(gt), 1.0 / small)
    assert metrics["abs_rel"] < 0.02 and metrics["a1"] > 0.98
    assert metrics["ratio_median"] == pytest.approx(10.0, rel=0.02)


class PatternPredictor(Predictor):
    """Depth with detail at the network resolution it is given (a column and row pattern that
    a resize through another size would blur); records the input sizes it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.scaling = MEDIAN
        self.sizes: list[tuple[int, int]] = []

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        b, _, h, w = image.shape
        self.sizes.append((h, w))
        cols = 2.0 + torch.sin(torch.arange(w) * 1.3).abs() * 6
        rows = 1.0 + torch.linspace(0, 1, h)[:, None]
        return (cols[None, :] * rows).expand(b, 1, h, w).contiguous()


def test_prediction_is_resized_once_from_the_network_to_the_ground_truth(
    test_store: str,
) -> None:
    """A model trained at another size than the test store's images: its network-resolution
    prediction goes straight to each ground-truth size, not through the store size."""
    from pipelines.store import open_store
    from train.eval.metrics import eigen_metrics

    config = apply_overrides(preset("monodepth2-m"), TINY | {"height": 96, "width": 224})
    predictor = PatternPredictor()
    report = evaluate_networks(_oracle_method(config, predictor), None, test_store, batch_size=3)  # type: ignore[arg-type]
    assert set(predictor.sizes) == {(96, 224)}  # store images are 64x96

    store = open_store(test_store)
    rows = np.asarray(store["samples"][:, 0])
    sizes = np.asarray(store["gt_size"][...])[rows]
    gts = [np.asarray(store["gt_depth"][r, :h, :w]) for r, (h, w) in zip(rows, sizes, strict=True)]
    net = predictor(torch.zeros(len(rows), 3, 96, 224))[:, 0].numpy()
    once = eigen_metrics(gts, 1.0 / net, False)
    via_store = np.stack([cv2.resize(d, (96, 64)) for d in 1.0 / net])  # the detour
    twice = eigen_metrics(gts, via_store, False)
    assert report.metrics["abs_rel"] == pytest.approx(once["abs_rel"], rel=1e-6)
    assert report.metrics["rmse"] == pytest.approx(once["rmse"], rel=1e-6)
    assert abs(twice["abs_rel"] - once["abs_rel"]) > 1e-3  # the test can tell them apart

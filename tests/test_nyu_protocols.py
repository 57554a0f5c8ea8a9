"""NYU evaluation protocols: choice from store and model, the DenseDepth protocol (flip averaging,
Eigen crop, pooled metrics, no median scaling, upsampling to 480x640), mSSIM and edge F1, and the
ground-truth oracle through evaluation and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.store import Store, open_store
from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import method_parts, run_cli
from train.engine.checkpoint import TrainState, save_checkpoint
from train.engine.config import apply_overrides
from train.eval.evaluate import evaluate_networks
from train.eval.metrics import METRIC_NAMES, compute_errors, pooled_errors
from train.eval.protocols import (
    DENSEDEPTH_CROP,
    PooledErrors,
    Protocol,
    densedepth_metrics,
    parse_thresholds,
    protocol_metrics,
    select_protocol,
)
from train.methods import Predictor, Scaling, method_class, preset

MEDIAN, METRIC = Scaling(), Scaling(median=False, factor=1.0)
NYU_KEYS = (*METRIC_NAMES, "mssim", "f1@0.25", "f1@0.5", "f1@1")


def fake_store(dataset: str, arrays: tuple[str, ...] = ("image", "gt_depth")) -> Store:
    return Store(
        path="fake.zarr", group=None, attrs={"dataset": dataset}, arrays=dict.fromkeys(arrays)
    )  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def labeled_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("nyu_eval") / "labeled_test.zarr"
    spec = ToySpec(dataset="nyu-labeled", n_sequences=1, frames_per_sequence=5, image_size=(64, 64))
    write_toy_store(path, spec)
    return str(path)


def rooms(n: int = 2, seed: int = 0) -> np.ndarray:
    """480x640 depth maps with walls and boxes (edges at several strengths), 0.8..8.5 m."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 480, 640), np.float32)
    for i in range(n):
        d = np.full((480, 640), rng.uniform(3, 7), np.float32)
        d += np.linspace(0, 1.5, 640, dtype=np.float32)[None]
        for _ in range(4):
            top, left = rng.integers(0, 400), rng.integers(0, 560)
            d[top : top + 80, left : left + 80] = rng.uniform(0.8, 3.5)
        out[i] = d
    return out


# ------------------------------------------------------------------ choice
def test_protocol_follows_store_and_model() -> None:
    labeled = fake_store("nyu-labeled")
    assert select_protocol(labeled, METRIC) == Protocol("densedepth", METRIC)
    assert select_protocol(labeled, MEDIAN) == Protocol("nyu", MEDIAN)
    assert select_protocol(labeled, METRIC, "median") == Protocol("nyu", MEDIAN)
    assert select_protocol(labeled, MEDIAN, protocol="densedepth").name == "densedepth"
    assert select_protocol(fake_store("kitti-raw"), METRIC).name == "eigen"
    with pytest.raises(ValueError, match="for KITTI stores"):
        select_protocol(labeled, METRIC, protocol="eigen")
    with pytest.raises(ValueError, match="for NYU stores"):
        select_protocol(fake_store("kitti-raw"), METRIC, protocol="densedepth")
    chosen = select_protocol(labeled, METRIC, edge_thresholds=(0.2,))
    assert chosen.metric_names == (*METRIC_NAMES, "mssim", "f1@0.2")
    assert parse_thresholds("0.25, 0.5,1") == (0.25, 0.5, 1.0)
    with pytest.raises(ValueError, match="edge thresholds"):
        parse_thresholds("0.25,big")


# ------------------------------------------------------------------ the DenseDepth protocol
def test_pooled_errors_accumulate_to_the_concatenation() -> None:
    rng = np.random.default_rng(1)
    parts = [(rng.uniform(0.5, 10, k), rng.uniform(0.5, 10, k)) for k in (100, 7, 3000)]
    acc = PooledErrors()
    for gt, pred in parts:
        acc.add(gt, pred)
    gt, pred = (np.concatenate([p[i] for p in parts]) for i in (0, 1))
    result = acc.result()
    for name, value in compute_errors(gt, pred).items():
        assert result[name] == pytest.approx(value, rel=1e-12)
    for name, value in pooled_errors(gt, pred).items():
        assert result[name] == pytest.approx(value, rel=1e-12)


def test_ground_truth_scores_perfectly_under_both_nyu_protocols() -> None:
    """The oracle: ground truth against itself (at half resolution for DenseDepth: upsampling a
    map made by 2x2 blocks reproduces it away from the block edges)."""
    gt = rooms()
    for protocol, pred in (
        (Protocol("densedepth", METRIC), gt),
        (Protocol("nyu", MEDIAN), gt[:, 44:471, 40:601]),
        (Protocol("nyu", METRIC), gt[:, 44:471, 40:601]),
    ):
        metrics = protocol_metrics(protocol, list(gt), pred)
        assert set(NYU_KEYS) <= set(metrics), protocol
        assert metrics["abs_rel"] < 1e-6 and metrics["rmse"] < 1e-5 and metrics["log10"] < 1e-6
        assert metrics["a1"] == metrics["a2"] == metrics["a3"] == 1.0
        assert metrics["mssim"] == pytest.approx(1.0, abs=1e-9)
        assert metrics["f1@0.25"] == metrics["f1@0.5"] == metrics["f1@1"] == 1.0


def test_densedepth_protocol_is_pooled_cropped_and_not_median_scaled() -> None:
    gt = rooms(2)
    # half the depth: no median scaling, so abs_rel is 0.5 (median scaling would make it 0)
    assert densedepth_metrics(list(gt), gt * 0.5)["abs_rel"] == pytest.approx(0.5)
    assert densedepth_metrics(list(gt), gt * 0.5, MEDIAN)["abs_rel"] < 1e-6
    # errors outside DenseDepth's crop (rows 20..459, cols 24..615) do not count
    top, bottom, left, right = DENSEDEPTH_CROP
    wrong = gt.copy()
    wrong[:, :top] = 0.1
    wrong[:, :, right:] = 9.9
    assert densedepth_metrics(list(gt), wrong)["abs_rel"] < 1e-6
    # rmse is pooled over all pixels, not averaged over images
    off = gt.copy()
    off[0] += 1.0
    n_pixels = (bottom - top) * (right - left)
    pooled = densedepth_metrics(list(gt), off)["rmse"]
    assert pooled == pytest.approx(np.sqrt(n_pixels / (2 * n_pixels)), rel=1e-6)  # not 0.5


def test_densedepth_protocol_upsamples_half_resolution_predictions() -> None:
    gt = rooms(1)
    half = gt[:, ::2, ::2]  # 240x320, blocks of 80 pixels keep their values when upsampled
    metrics = densedepth_metrics(list(gt), half)
    assert metrics["a1"] > 0.99 and metrics["abs_rel"] < 0.01


# ------------------------------------------------------------------ through evaluation
class MirrorOracle(Predictor):
    """The ground truth of whichever store image it is given, mirrored images included."""

    scaling = METRIC

    def __init__(self, store: Store) -> None:
        super().__init__()
        rows = store.samples[:, 0]
        images = np.asarray(store["image"][...])[rows, 0]
        gts = np.asarray(store["gt_depth"][...])[rows]
        self.table = {}
        for image, gt in zip(images, gts, strict=True):
            self.table[image.tobytes()] = gt
            self.table[image[:, ::-1].copy().tobytes()] = gt[:, ::-1].copy()
        self.calls = 0

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        keys = (image * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        maps = [torch.from_numpy(self.table[k.tobytes()]) for k in keys]
        return torch.stack(maps).unsqueeze(1)


def test_oracle_through_the_densedepth_evaluation(labeled_store: str) -> None:
    config = apply_overrides(
        preset("densedepth-nyu"), {"pretrained": False, "height": 64, "width": 64}
    )
    method = method_class(config.method)(config)
    oracle = MirrorOracle(open_store(labeled_store))
    method.predictor = lambda nets: oracle  # type: ignore[method-assign]
    report = evaluate_networks(method, None, labeled_store, batch_size=2)  # type: ignore[arg-type]
    assert report.protocol.name == "densedepth" and report.n_images == 5
    assert oracle.calls == 6  # 3 batches, each also mirrored
    m = report.metrics
    assert m["abs_rel"] < 1e-6 and m["a1"] == 1.0 and m["mssim"] == pytest.approx(1.0)
    assert m["f1@0.25"] == 1.0
    assert "flip-averaged" in str(report) and "f1@0.25" in report.table()
    with pytest.raises(ValueError, match="post-process"):
        evaluate_networks(method, None, labeled_store, post_process=True)  # type: ignore[arg-type]


def test_cli_eval_of_a_densedepth_checkpoint(labeled_store: str, tmp_path: Path, capsys) -> None:
    config = apply_overrides(
        preset("densedepth-nyu"), {"pretrained": False, "height": 64, "width": 64}
    )
    _, nets, optimisers = method_parts(config)
    ckpt = save_checkpoint(tmp_path / "last.pt", config, nets, optimisers, TrainState(), {})
    argv = ["eval", str(ckpt), labeled_store, "--device", "cpu", "--json", str(tmp_path / "m.json")]
    assert run_cli([*argv, "--edge-thresholds", "0.5,1"]) == 0
    out = capsys.readouterr().out
    assert "protocol densedepth" in out and "x1 (fixed)" in out and "mssim" in out
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["protocol"] == "densedepth" and data["n_images"] == 5
    assert {"f1@0.5", "f1@1", "mssim", "log10"} <= set(data["metrics"])
    assert "f1@0.25" not in data["metrics"]
    assert run_cli([*argv, "--protocol", "eigen"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "for KITTI stores" in err and "\n" not in err

"""eval --report (self-contained HTML: metrics, depth bins, per-image distribution, best/worst
gallery) and compare (several evaluations side by side, Markdown / CSV)."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipelines.store.toystore import ToySpec, write_toy_store
from tests.helpers import one_error_line, run_cli, tiny_checkpoint
from train.eval.evaluate import EvalReport, Predictions
from train.eval.metrics import METRIC_NAMES
from train.eval.protocols import Protocol, metrics_per_image
from train.eval.report import write_report
from train.methods import Scaling


@pytest.fixture(scope="module")
def test_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("report_store") / "test.zarr"
    write_toy_store(path, ToySpec(n_sequences=1, frames_per_sequence=4, image_size=(64, 96)))
    return str(path)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("report_ckpt") / "last.pt")


def _embedded_pngs(page: str) -> list[bytes]:
    found = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    return [base64.b64decode(b) for b in found]


def test_eval_report_is_self_contained(test_store, checkpoint, tmp_path: Path, capsys) -> None:
    folder, js = tmp_path / "report", tmp_path / "m.json"
    args = ["eval", str(checkpoint), test_store, "--report", str(folder), "--json", str(js)]
    assert run_cli([*args, "--device", "cpu"]) == 0
    assert f"report: {folder / 'index.html'}" in capsys.readouterr().out
    page = (folder / "index.html").read_text()
    for heading in ("Metrics", "abs_rel by ground-truth depth", "Per-image abs_rel", "Worst"):
        assert heading in page
    assert "src='http" not in page and "<script" not in page  # nothing fetched
    pngs = _embedded_pngs(page)
    # 2 plots + 2 galleries x (a colour bar + 4 images x 4 panels) (8 images: best 4, worst 4)
    assert len(pngs) == 2 + 2 * (1 + 4 * 4) and all(p.startswith(b"\x89PNG") for p in pngs)
    rows = json.loads((folder / "per_image.json").read_text())
    metrics = json.loads(js.read_text())["metrics"]
    assert len(rows) == 8
    assert np.mean([r["abs_rel"] for r in rows]) == pytest.approx(metrics["abs_rel"], rel=1e-9)
    # named by drive and frame, in the page and in per_image.json
    assert {(r["sequence"], r["view"]) for r in rows} == {("seq_00", 0), ("seq_00", 1)}
    assert sorted(r["frame"] for r in rows if r["view"] == 0) == [0, 1, 2, 3]
    assert re.search(r"seq_00 frame \d", page)
    # the title names the method, preset and training size; KITTI's table has log10
    title = re.search(r"<title>(.*)</title>", page)[1]
    assert "monodepth2 (monodepth2-m, trained at 64x96)" in title and "last.pt" in title
    assert "<th>log10</th>" in page and "post-processing</th><td>none" in page


def test_existing_report_folder_is_refused(test_store, checkpoint, tmp_path: Path, capsys):
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    args = ["eval", str(checkpoint), test_store, "--report", str(folder), "--device", "cpu"]
    assert run_cli(args) == 1
    assert "--overwrite" in one_error_line(capsys.readouterr().err)
    assert (folder / "notes.txt").read_text() == "mine" and not (folder / "index.html").exists()
    assert run_cli([*args, "--overwrite"]) == 0
    assert (folder / "index.html").is_file()


def test_nyu_report_with_dense_ground_truth(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 3
    gt = [rng.uniform(1.0, 9.0, (480, 640)).astype(np.float32) for _ in range(n)]
    depths = rng.uniform(1.0, 9.0, (n, 32, 48)).astype(np.float32)
    images = rng.integers(0, 255, (n, 32, 48, 3), dtype=np.uint8)
    protocol = Protocol("nyu", Scaling())
    errors = metrics_per_image(protocol, gt, depths)
    report = EvalReport(
        protocol=protocol,
        metrics={k: float(np.mean([e.metrics[k] for e in errors])) for k in METRIC_NAMES},
        n_images=n,
        store="nyu.zarr",
        per_image=[e.metrics for e in errors],
    )
    index = write_report(tmp_path / "r", report, Predictions(depths, gt, images))
    page = index.read_text()
    # 3 images: best 2, worst 1, none shown twice; a colour bar per gallery
    assert "9-10 m" in page and len(_embedded_pngs(page)) == 2 + (1 + 2 * 4) + (1 + 1 * 4)
    shown = re.findall(r"<br>#(\d+), abs_rel", page)
    assert len(shown) == 3 and len(set(shown)) == 3


def _decoded(png: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def test_densedepth_report_pictures_and_facts(tmp_path: Path) -> None:
    """DenseDepth predicts at half the input's size and may be flat (clipped at 0.1 m): its
    thumbnail is shown at the input's size, in the ground truth's colours (not black); the facts
    say the flip averaging the protocol did; one image is only shown once."""
    rng = np.random.default_rng(1)
    gt = [rng.uniform(1.0, 9.0, (480, 640)).astype(np.float32)]
    depths = np.full((1, 16, 24), 0.1, dtype=np.float32)  # half of 32x48, clipped flat
    images = rng.integers(0, 255, (1, 32, 48, 3), dtype=np.uint8)
    protocol = Protocol("densedepth", Scaling(median=False, factor=1.0))
    errors = metrics_per_image(protocol, gt, depths)
    report = EvalReport(
        protocol=protocol,
        metrics={k: errors[0].metrics[k] for k in METRIC_NAMES},
        n_images=1,
        store="nyu.zarr",
        per_image=[e.metrics for e in errors],
        method="densedepth",
        preset="densedepth-nyu",
        network_size=(32, 48),
    )
    page = write_report(tmp_path / "r", report, Predictions(depths, gt, images)).read_text()
    assert "flip average (densedepth protocol" in page
    assert "densedepth (densedepth-nyu, trained at 32x48)" in page
    assert "(the only image is shown above)" in page
    pngs = _embedded_pngs(page)
    assert len(pngs) == 2 + 1 + 4
    image, prediction, truth, error = (_decoded(p) for p in pngs[3:])
    assert image.shape == prediction.shape == truth.shape == error.shape == (32, 48, 3)
    assert prediction.max() > 100  # nearer than all the truth: the brightest colour


# --------------------------------------------------------------------------- compare
def _eval_json(path: Path, abs_rel: float, protocol: str = "eigen", mtime: int = 0) -> Path:
    metrics = dict.fromkeys(METRIC_NAMES, 0.5) | {"abs_rel": abs_rel}
    data = {"protocol": protocol, "scaling": "median", "metrics": metrics, "n_images": 8}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    if mtime:
        os.utime(path, (mtime, mtime))
    return path


def test_compare_files_and_run_folders(tmp_path: Path, capsys) -> None:
    a = _eval_json(tmp_path / "a.json", 0.111)
    run = tmp_path / "run"
    _eval_json(run / "eval_old.json", 0.333, mtime=1_000_000)
    _eval_json(run / "evals" / "eval_new.json", 0.222, mtime=2_000_000)
    (run / "config.json").write_text(json.dumps({"preset": "monodepth2-m"}))
    md, csv_path = tmp_path / "t.md", tmp_path / "t.csv"
    args = ["compare", str(a), str(run), "--markdown", str(md), "--csv", str(csv_path)]
    assert run_cli(args) == 0
    printed = capsys.readouterr().out
    assert "0.1110" in printed and "0.2220" in printed and "0.3330" not in printed
    assert printed.splitlines()[0].split()[:3] == ["evaluation", "protocol", "scaling"]
    lines = md.read_text().splitlines()
    assert lines[0].startswith("| evaluation |") and len(lines) == 4
    rows = csv_path.read_text().splitlines()
    assert rows[0].endswith(",source") and rows[2].endswith("eval_new.json")


def test_compare_notes_different_protocols(tmp_path: Path, capsys) -> None:
    a = _eval_json(tmp_path / "a.json", 0.1)
    b = _eval_json(tmp_path / "b.json", 0.2, protocol="nyu")
    assert run_cli(["compare", str(a), str(b)]) == 0
    assert "note: different protocols (eigen, nyu)" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["missing", "folder without eval", "not an eval"])
def test_compare_bad_input_is_one_line(case: str, tmp_path: Path, capsys) -> None:
    target = tmp_path / "x.json"
    if case == "folder without eval":
        target = tmp_path / "run"
        target.mkdir()
        (target / "config.json").write_text("{}")
    elif case == "not an eval":
        target.write_text(json.dumps({"preset": "m"}))
    assert run_cli(["compare", str(target)]) == 1
    assert str(target) in one_error_line(capsys.readouterr().err)

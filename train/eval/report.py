"""A self-contained HTML evaluation report (``cli.py eval ... --report DIR``).

``DIR/index.html`` holds everything, pictures embedded as base64 PNGs: the title (method,
preset, training size, checkpoint, store), the run's facts (post-processing or flip averaging as
scored, warnings), the metrics table (every metric the protocol computes: KITTI's log10 too),
abs_rel by ground-truth depth bin (pixel-weighted over the whole test set), the distribution of
per-image abs_rel, and a gallery of the best and worst images, each shown once and named by its
drive or scene and frame: network input, predicted inverse depth and ground truth (both at the
input's size, scaled as scored and coloured over the ground truth's range, so a flat prediction
is not black), and the abs_rel error map over the dimmed input, with its colour bar.
``DIR/per_image.json`` lists every image (sequence, frame, view) with its metrics. Plots are
drawn with matplotlib's Agg canvas (no display needed).

Every number comes from :func:`train.eval.protocols.protocol_errors`, the code that scores the
evaluation, so the report's per-image and per-bin figures add up to its metrics table.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

import cv2
import numpy as np

from train.colormap import colorize, sparse_depth_picture
from train.eval.metrics import KITTI_MAX_DEPTH, NYU_MAX_DEPTH, ImageErrors
from train.eval.protocols import NYU_PROTOCOLS, protocol_errors
from train.eval.results import EvalReport, Predictions

GALLERY = 4  # best and worst images shown
ERROR_RANGE = 0.5  # abs_rel shown red in the error maps


def check_report_dir(folder: str | Path, overwrite: bool) -> Path:
    """Refuse an existing report folder unless ``overwrite`` (checked before any work)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder}: exists and is not a folder")
    if folder.exists() and not overwrite:
        raise ValueError(f"{folder}: report folder exists (use --overwrite to replace the report)")
    return folder


def depth_bin_edges(protocol: str) -> np.ndarray:
    """Ground-truth depth bins: 10 m wide up to 80 m (KITTI), 1 m wide up to 10 m (NYU)."""
    if protocol in NYU_PROTOCOLS:
        return np.linspace(0.0, NYU_MAX_DEPTH, 11)
    return np.linspace(0.0, KITTI_MAX_DEPTH, 9)


class _BinSums:
    """Pixel-weighted abs_rel per depth bin, accumulated one image at a time."""

    def __init__(self, edges: np.ndarray) -> None:
        self.edges = edges
        self.sums = np.zeros(len(edges) - 1)
        self.counts = np.zeros(len(edges) - 1, dtype=np.int64)

    def add(self, e: ImageErrors) -> None:
        index = np.clip(np.digitize(e.gt, self.edges) - 1, 0, len(self.sums) - 1)
        rel = np.abs(e.gt - e.pred) / e.gt
        self.sums += np.bincount(index, weights=rel, minlength=len(self.sums))
        self.counts += np.bincount(index, minlength=len(self.sums))

    def abs_rel(self) -> np.ndarray:
        return np.where(self.counts > 0, self.sums / np.maximum(self.counts, 1), np.nan)


def write_report(
    folder: str | Path, report: EvalReport, preds: Predictions, *, overwrite: bool = False
) -> Path:
    """Write ``folder/index.html`` and ``folder/per_image.json`` for one evaluation.

    ``preds`` must hold the network inputs (``keep_images=True``). Returns ``index.html``.

    Raises:
        ValueError: ``folder`` exists (without ``overwrite``) or the predictions lack images.
    """
    folder = check_report_dir(folder, overwrite)
    if preds.images is None:
        raise ValueError("the report needs the network inputs (predict with keep_images=True)")
    protocol = report.protocol
    bins = _BinSums(depth_bin_edges(protocol.name))
    for e in protocol_errors(protocol, preds.gt_depths, preds.depths):
        bins.add(e)
    abs_rel = np.array([m["abs_rel"] for m in report.per_image])
    best, worst = gallery_indices(abs_rel)
    sections = [
        _facts(report),
        "<h2>Metrics</h2>" + _metrics_table(report),
        "<h2>abs_rel by ground-truth depth</h2>" + _bins_section(bins),
        "<h2>Per-image abs_rel</h2>" + _img(_histogram(abs_rel)),
        "<h2>Best images</h2>" + _gallery(best, preds, report),
        "<h2>Worst images</h2>"
        + (_gallery(worst, preds, report) if worst else "<p>(the only image is shown above)</p>"),
    ]
    page = _PAGE.format(title=html.escape(_title(report)), body="\n".join(sections))
    folder.mkdir(parents=True, exist_ok=True)
    index = folder / "index.html"
    _atomic_write(index, page)
    names = report.names or [{} for _ in report.per_image]
    pairs = zip(names, report.per_image, strict=True)
    rows = [{"index": i, **n, **m} for i, (n, m) in enumerate(pairs)]
    _atomic_write(folder / "per_image.json", json.dumps(rows, indent=1) + "\n")
    return index


def gallery_indices(abs_rel: np.ndarray) -> tuple[list[int], list[int]]:
    """The best and the worst images by abs_rel, up to :data:`GALLERY` each, none in both."""
    order = np.argsort(abs_rel, kind="stable")
    n_best = min(GALLERY, math.ceil(len(order) / 2))
    n_worst = min(GALLERY, len(order) - n_best)
    return order[:n_best].tolist(), order[::-1][:n_worst].tolist()


# --------------------------------------------------------------------------- sections
def _title(report: EvalReport) -> str:
    name = Path(report.checkpoint).name if report.checkpoint else "networks in memory"
    model = ""
    if report.method:
        size = report.network_size
        trained = f", trained at {size[0]}x{size[1]}" if size else ""
        model = f"{report.method} ({report.preset or 'no preset'}{trained}), "
    return f"depthkit evaluation: {model}{name} on {Path(report.store).name}"


def _post_processing(report: EvalReport) -> str:
    if report.post_process:
        return "flip blend (--post-process: monodepth2's edge-aware blend with the mirrored image)"
    if report.protocol.flip_average:
        return (
            f"flip average ({report.protocol.name} protocol: mean with the mirrored prediction "
            "of the mirrored image)"
        )
    return "none"


def _facts(report: EvalReport) -> str:
    s = report.protocol.scaling
    size = report.network_size
    rows = {
        "method": report.method or "-",
        "preset": report.preset or "-",
        "network input": f"{size[0]}x{size[1]}" if size else "-",
        "checkpoint": report.checkpoint or "(in memory)",
        "store": report.store,
        "protocol": report.protocol.name,
        "scaling": "per-image median" if s.median else f"x{s.factor:g} (fixed)",
        "images": str(report.n_images),
        "post-processing": _post_processing(report),
        "seconds": f"{report.seconds:.1f}",
    }
    for k, line in enumerate(report.warnings):
        rows[f"warning {k + 1}" if len(report.warnings) > 1 else "warning"] = line
    if "ratio_median" in report.metrics:
        rows["median ratio"] = (
            f"{report.metrics['ratio_median']:.3f} (std {report.metrics['ratio_std']:.3f})"
        )
    body = "".join(f"<tr><th>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in rows.items())
    return f"<h1>{html.escape(_title(report))}</h1><table class='facts'>{body}</table>"


def _metrics_table(report: EvalReport) -> str:
    names = [n for n in report.protocol.metric_names if n in report.metrics]
    head = "".join(f"<th>{n}</th>" for n in names)
    values = "".join(f"<td>{report.metrics[n]:.4f}</td>" for n in names)
    return f"<table><tr>{head}</tr><tr>{values}</tr></table>"


def _bins_section(bins: _BinSums) -> str:
    edges, values = bins.edges, bins.abs_rel()
    labels = [f"{a:g}-{b:g} m" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    rows = "".join(
        f"<tr><td>{label}</td><td>{'-' if np.isnan(v) else f'{v:.4f}'}</td><td>{n}</td></tr>"
        for label, v, n in zip(labels, values, bins.counts, strict=True)
    )
    table = f"<table><tr><th>depth</th><th>abs_rel</th><th>pixels</th></tr>{rows}</table>"
    return _img(_bar_plot(labels, values)) + table


def _gallery(indices: list[int], preds: Predictions, report: EvalReport) -> str:
    bar = _img(_error_colour_bar())
    head = "<tr><th></th><th>image</th><th>prediction (1 / depth)</th><th>ground truth</th>"
    head += f"<th>abs_rel error<br>{bar}</th></tr>"
    rows = []
    for i in indices:
        pictures, (near, far) = _panels(i, preds, report)
        cells = "".join(f"<td>{_img(p)}</td>" for p in pictures)
        caption = (
            f"{html.escape(report.name(i))}<br>#{i}, abs_rel {report.per_image[i]['abs_rel']:.4f}"
            f"<br><small>colours {near:.3g}-{far:.3g} m</small>"
        )
        rows.append(f"<tr><th>{caption}</th>{cells}</tr>")
    return f"<table class='gallery'>{head}{''.join(rows)}</table>"


def _panels(
    i: int, preds: Predictions, report: EvalReport
) -> tuple[list[bytes], tuple[float, float]]:
    """PNGs of image ``i`` (network input, predicted inverse depth, ground truth, error map),
    all at the input's size, and the depth range (m) the two depth pictures share."""
    assert preds.images is not None
    image = preds.images[i]
    h, w = image.shape[:2]
    gt = preds.gt_depths[i]
    (e,) = protocol_errors(report.protocol, [gt], preds.depths[i : i + 1])
    crop = report.protocol.gt_crop(gt.shape)
    if crop is not None:
        top, bottom, left, right = crop
        gt = gt[top:bottom, left:right]
    radius = max(1, gt.shape[1] // w) if not report.protocol.is_nyu else 0
    error = np.zeros(e.mask.shape, dtype=np.float32)
    error[e.mask] = np.abs(e.gt - e.pred) / e.gt
    near, far = float(np.percentile(e.gt, 5)), float(e.gt.max())  # colorize's convention
    scale = e.ratio if e.ratio is not None else report.protocol.scaling.factor
    depth = cv2.resize(preds.depths[i] * scale, (w, h), interpolation=cv2.INTER_LINEAR)
    inverse = 1.0 / np.maximum(depth, 1e-6)
    pictures = [
        _png(image),
        _png(colorize(inverse, vmin=1.0 / far, vmax=1.0 / near)),
        _png(sparse_depth_picture(gt, (h, w), radius=radius, depth_range=(near, far))),
        _png(_error_picture(error, e.mask, image, radius)),
    ]
    return pictures, (near, far)


def _error_picture(
    error: np.ndarray, mask: np.ndarray, image: np.ndarray, radius: int
) -> np.ndarray:
    """Jet picture of per-pixel abs_rel (blue 0 .. red ``ERROR_RANGE``) over the dimmed grey
    ``image`` (where nothing is scored), at the image's size; sparse points grown by ``radius``
    to stay visible when shrunk."""
    h, w = image.shape[:2]
    valid = mask.astype(np.uint8)
    if radius > 0:
        kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
        error, valid = cv2.dilate(error, kernel), cv2.dilate(valid, kernel)
    error = cv2.resize(error, (w, h), interpolation=cv2.INTER_NEAREST)
    valid = cv2.resize(valid, (w, h), interpolation=cv2.INTER_NEAREST) > 0
    grey = (np.clip(error / ERROR_RANGE, 0, 1) * 255).astype(np.uint8)
    rgb = cv2.applyColorMap(grey, cv2.COLORMAP_JET)[:, :, ::-1]
    dimmed = (image.astype(np.float32).mean(axis=2, keepdims=True) * 0.35).astype(np.uint8)
    return np.where(valid[..., None], rgb, dimmed).astype(np.uint8)


def _error_colour_bar() -> bytes:
    """The error maps' colour bar: jet from 0 to :data:`ERROR_RANGE` abs_rel (and above)."""
    from matplotlib.colorbar import ColorbarBase
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.4, 0.55), dpi=100)
    ax = fig.add_axes((0.06, 0.55, 0.88, 0.3))
    bar = ColorbarBase(ax, cmap="jet", norm=Normalize(0, ERROR_RANGE), orientation="horizontal")
    labels = ["0", f"{ERROR_RANGE / 2:g}", f"\u2265 {ERROR_RANGE:g}"]
    bar.set_ticks([0, ERROR_RANGE / 2, ERROR_RANGE], labels=labels)
    ax.tick_params(labelsize=7)
    return _figure_png(fig)


# --------------------------------------------------------------------------- plots, HTML
def _bar_plot(labels: list[str], values: np.ndarray) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3), dpi=100)
    ax = fig.add_subplot()
    ax.bar(range(len(labels)), np.nan_to_num(values), color="#6a3d9a")
    ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=8)
    ax.set_ylabel("abs_rel")
    ax.set_xlabel("ground-truth depth")
    fig.tight_layout()
    return _figure_png(fig)


def _histogram(abs_rel: np.ndarray) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3), dpi=100)
    ax = fig.add_subplot()
    ax.hist(abs_rel, bins=min(30, max(5, len(abs_rel) // 5)), color="#1f78b4")
    ax.axvline(float(np.mean(abs_rel)), color="k", linestyle="--", label="mean")
    ax.set_xlabel("abs_rel of one image")
    ax.set_ylabel("images")
    ax.legend()
    fig.tight_layout()
    return _figure_png(fig)


def _figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _png(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise ValueError("could not encode a report picture")
    return data.tobytes()


def _img(png: bytes) -> str:
    return f"<img src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
table.facts th, table.facts td {{ text-align: left; }}
table.gallery th, table.gallery td {{ padding: 2px; text-align: center; vertical-align: middle; }}
table.gallery td img {{ width: 240px; }}
</style></head>
<body>
{body}
</body></html>
"""

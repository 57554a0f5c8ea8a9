"""Several evaluations side by side (``cli.py compare RUN_OR_JSON...``).

Each argument is an eval JSON file (written by ``eval --json``) or a folder (a run folder, say):
a folder stands for the newest eval JSON below it (by modification time; ``config.json`` and
other JSON files without ``protocol`` and ``metrics`` are ignored). The table has one row per
evaluation and one column per metric, in the printing order of :mod:`train.eval.metrics`, and
can be written as Markdown or CSV.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from train.eval.metrics import METRIC_NAMES

INFO = ("protocol", "scaling", "n_images")


@dataclass
class Comparison:
    """Rows of evaluations: ``label`` (what was named), the JSON file used, and its values."""

    labels: list[str]
    sources: list[str]
    rows: list[dict[str, Any]]

    @property
    def metric_names(self) -> list[str]:
        present = {k for row in self.rows for k in row.get("metrics", {})}
        return [n for n in METRIC_NAMES if n in present]

    def header(self) -> list[str]:
        return ["evaluation", *INFO, *self.metric_names]

    def cells(self) -> list[list[str]]:
        out = []
        for label, row in zip(self.labels, self.rows, strict=True):
            metrics = row.get("metrics", {})
            values = [f"{metrics[n]:.4f}" if n in metrics else "-" for n in self.metric_names]
            out.append([label, *(str(row.get(k, "-")) for k in INFO), *values])
        return out

    def text(self) -> str:
        """The printed table (columns aligned), plus a note when protocols differ."""
        table = [self.header(), *self.cells()]
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
        lines = [_aligned(r, widths) for r in table]
        lines.insert(1, "  ".join("-" * w for w in widths))
        protocols = {str(r.get("protocol")) for r in self.rows}
        if len(protocols) > 1:
            lines.append(f"note: different protocols ({', '.join(sorted(protocols))})")
        return "\n".join(lines)

    def markdown(self) -> str:
        header = self.header()
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in self.cells()]
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([*self.header(), "source"])
        for cells, source in zip(self.cells(), self.sources, strict=True):
            writer.writerow([*cells, source])
        return buffer.getvalue()


def _aligned(cells: list[str], widths: list[int]) -> str:
    """First column left-aligned, the others right-aligned."""
    pairs = enumerate(zip(cells, widths, strict=True))
    parts = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs]
    return "  ".join(parts).rstrip()


def is_eval_json(data: Any) -> bool:
    return isinstance(data, dict) and "protocol" in data and isinstance(data.get("metrics"), dict)


def read_eval_json(path: Path) -> dict[str, Any]:
    """An eval JSON file's contents (ValueError naming the file otherwise)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable JSON file ({e})") from e
    if not is_eval_json(data):
        raise ValueError(f"{path}: not an evaluation JSON (written by `eval --json`)")
    return data


def newest_eval_json(folder: Path) -> Path:
    """The most recently modified eval JSON below ``folder``."""
    found = []
    for path in folder.rglob("*.json"):
        try:
            if is_eval_json(json.loads(path.read_text(encoding="utf-8"))):
                found.append(path)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
    if not found:
        raise ValueError(f"{folder}: no evaluation JSON inside (write one with `eval --json`)")
    return max(found, key=lambda p: (p.stat().st_mtime_ns, str(p)))


def compare(
    paths: list[str | Path],
    *,
    markdown: str | Path | None = None,
    csv_path: str | Path | None = None,
) -> Comparison:
    """The comparison table of ``paths`` (eval JSON files or folders); optionally written as
    Markdown and/or CSV.

    Raises:
        ValueError: a path is missing, not an eval JSON, or a folder without one.
    """
    if not paths:
        raise ValueError("name at least one run folder or eval JSON file")
    labels, sources, rows = [], [], []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            source = newest_eval_json(path)
        elif path.is_file():
            source = path
        else:
            raise ValueError(f"{path}: no such file or folder")
        labels.append(str(item))
        sources.append(str(source))
        rows.append(read_eval_json(source))
    table = Comparison(labels, sources, rows)
    if markdown is not None:
        _write(Path(markdown), table.markdown())
    if csv_path is not None:
        _write(Path(csv_path), table.csv())
    return table


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")

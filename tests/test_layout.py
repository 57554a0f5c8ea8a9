"""House rules of the layout (docs/architecture.md), checked statically with ``ast``.

Every import counts, including those inside functions; ``if TYPE_CHECKING:`` blocks count for the
torch-free and allowed-imports rules but not for import cycles (they never run).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 410  # the one module-size limit: "split a file before it passes ~400 lines"
PACKAGES = ("nyutools", "kitti", "pipelines", "train")
TOP_MODULES = ("cli.py", "demo.py")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(package: str) -> dict[str, Path]:
    """Every module of ``package`` (a top-level folder), by dotted name."""
    return {module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}


def imports(path: Path, known: set[str], type_checking: bool = True) -> set[str]:
    """Dotted names imported by ``path``; ``from X import y`` is ``X.y`` when that is a module.
    ``type_checking=False`` skips the bodies of ``if TYPE_CHECKING:``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if not type_checking and isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for alias in child.names:
                    sub = f"{child.module}.{alias.name}"
                    found.add(sub if sub in known else child.module)
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_graph(*packages: str) -> dict[str, set[str]]:
    """Module -> the project modules it imports at run time (``TYPE_CHECKING`` aside)."""
    mods = {name: path for package in packages for name, path in modules(package).items()}
    known = set(mods)
    return {name: imports(path, known, type_checking=False) & known for name, path in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_anywhere() -> None:
    cycle = find_cycle(import_graph(*PACKAGES))
    assert cycle is None, " -> ".join(cycle or [])


def test_find_cycle_sees_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_store_is_torch_free() -> None:
    mods = modules("pipelines")
    known = set(mods)
    for name, path in mods.items():
        if name == "pipelines.store" or name.startswith("pipelines.store."):
            used = imports(path, known)
            heavy = sorted(m for m in used if m.split(".")[0] in ("torch", "torchvision"))
            outside = sorted(
                m for m in used & known if not m.startswith("pipelines.store") or m == "pipelines"
            )
            assert not heavy and not outside, f"{name} imports {heavy + outside}"


@pytest.mark.parametrize(
    ("package", "allowed"),
    [
        ("train", ("pipelines.store", "pipelines.loader")),
        ("pipelines/loader", ("pipelines.store", "pipelines.loader")),
        ("pipelines/passes", ("pipelines.store", "pipelines.passes", "pipelines.loader")),
        ("pipelines/prepare", ("pipelines.store", "pipelines.prepare", "pipelines.passes")),
    ],
)
def test_allowed_pipelines_imports(package: str, allowed: tuple[str, ...]) -> None:
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imports(path, set()):
            if name.split(".")[0] == "pipelines":
                ok = any(name == a or name.startswith(a + ".") for a in allowed)
                assert ok, f"{path.relative_to(ROOT)} imports {name}"


def test_modules_stay_small() -> None:
    paths = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    long = {
        str(p.relative_to(ROOT)): n
        for p in [*paths, *(ROOT / name for name in TOP_MODULES)]
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these modules (over {MAX_LINES} lines): {long}"


# ------------------------------------------------------------------ the "may import" table
def architecture_table() -> dict[str, set[str] | None]:
    """docs/architecture.md's layer table: path -> the project modules it may import (None =
    everything). Names in backticks in the last column that start with a package of the project
    are the rules; the rest (libraries, "nothing") is for the reader."""
    rows: dict[str, set[str] | None] = {}
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        path = cells[0].strip("`")
        if not (path.endswith((".py", "/"))) or rows.get(path, 0) != 0:
            continue
        names = set(re.findall(r"`([A-Za-z_][\w.]*)`", cells[2]))
        if cells[2].strip() == "everything":
            rows[path] = None
        else:
            rows[path] = {n for n in names if n.split(".")[0] in PACKAGES}
    return rows


def _row_of(path: str, rows: dict[str, set[str] | None]) -> str | None:
    matches = [r for r in rows if path == r or (r.endswith("/") and path.startswith(r))]
    return max(matches, key=len) if matches else None


def _module_of_row(row: str) -> str:
    return row.removesuffix("/").removesuffix(".py").replace("/", ".").removesuffix(".__init__")


def test_architecture_table_covers_every_module() -> None:
    rows = architecture_table()
    paths = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    missing = [
        str(p.relative_to(ROOT))
        for p in [*paths, *(ROOT / n for n in TOP_MODULES)]
        if _row_of(str(p.relative_to(ROOT)), rows) is None
    ]
    assert not missing, f"modules without a row in docs/architecture.md: {missing}"


def table_violations(
    mods: dict[str, Path], rows: dict[str, set[str] | None], root: Path = ROOT
) -> list[str]:
    """``module imports target`` for every import the table does not allow."""
    known = set(mods)
    wrong = []
    for name, path in mods.items():
        row = _row_of(str(path.relative_to(root)), rows)
        allowed = rows[row] if row is not None else set()
        if allowed is None:
            continue
        ok = [_module_of_row(row), *allowed] if row is not None else []
        for target in sorted(imports(path, known) & known):
            if not any(target == a or target.startswith(a + ".") for a in ok):
                wrong.append(f"{name} imports {target} (row {row} allows {sorted(allowed)})")
    return wrong


def test_imports_follow_the_architecture_table() -> None:
    mods = {name: path for package in PACKAGES for name, path in modules(package).items()}
    wrong = table_violations(mods, architecture_table())
    assert not wrong, "\n".join(wrong)


def test_table_rule_sees_a_wrong_import(tmp_path: Path) -> None:
    (tmp_path / "train" / "engine").mkdir(parents=True)
    (tmp_path / "train" / "eval").mkdir()
    engine = tmp_path / "train" / "engine" / "trainer.py"
    engine.write_text("def f():\n    from train.eval.metrics import x\n")
    metrics = tmp_path / "train" / "eval" / "metrics.py"
    metrics.write_text("from train.engine.trainer import f\n")
    mods = {"train.engine.trainer": engine, "train.eval.metrics": metrics}
    rows = {"train/engine/": {"train.methods"}, "train/eval/": {"train.engine"}}
    wrong = table_violations(mods, rows, tmp_path)
    assert wrong == [
        "train.engine.trainer imports train.eval.metrics (row train/engine/ allows "
        "['train.methods'])"
    ]


MAX_ENGINE_FUNCTION_LINES = 60


def test_engine_functions_are_short() -> None:
    long = []
    for path in sorted((ROOT / "train" / "engine").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines > MAX_ENGINE_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines})")
    assert not long, f"split these (over {MAX_ENGINE_FUNCTION_LINES} lines): {long}"

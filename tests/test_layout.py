"""House rules of the layout (ARCHITECTURE.md), checked statically over the source with ``ast``.

Every import counts, including those inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 410  # "split a file before it passes ~400 lines" (ARCHITECTURE.md)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(package: str) -> dict[str, Path]:
    """Every module of ``package`` (a top-level folder), by dotted name."""
    return {module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """Dotted names imported by ``path``; ``from X import y`` is ``X.y`` when that is a module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return found


def import_graph(package: str) -> dict[str, set[str]]:
    mods = modules(package)
    known = set(mods)
    return {name: imports(path, known) & known for name, path in mods.items()}


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


def test_no_import_cycle_in_pipelines() -> None:
    cycle = find_cycle(import_graph("pipelines"))
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


def test_pipelines_modules_stay_small() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in sorted((ROOT / "pipelines").rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these modules (over {MAX_LINES} lines): {long}"

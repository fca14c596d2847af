"""The import graph of tinysec's sub-packages and top-level modules has no cycle.

Imports are read with ``ast`` from every ``tinysec/**/*.py`` file, including imports inside
functions (a lazy import still ties two sections together). Each node is a sub-package
(``tinysec/cti/``) or a top-level module (``tinysec/attack_kb.py``); imports within one node are
ignored. Imports written as strings (``importlib.import_module``) are not seen.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tinysec"


def _imported(node: ast.AST, package: list[str]) -> list[str]:
    """Dotted module names one import statement refers to (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = package[: len(package) - node.level + 1] if node.level else []
    if node.module:
        return [".".join(base + [node.module])]
    return [".".join(base + [a.name]) for a in node.names]  # from .. import attack_kb


def import_graph(root: Path) -> dict[str, set[str]]:
    """Node -> nodes it imports, for the package folder ``root``."""
    name = root.name
    edges: dict[str, set[str]] = defaultdict(set)
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        node = parts[0] if len(parts) > 1 else parts[0][: -len(".py")]
        package = [name, *parts[:-1]]
        for stmt in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            for module in _imported(stmt, package):
                dotted = module.split(".")
                if dotted[0] == name and len(dotted) > 1 and dotted[1] != node:
                    edges[node].add(dotted[1])
    return dict(edges)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle (``[a, b, ..., a]``) of the directed graph ``edges``, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                return path[path.index(m):] + [m]
            if m not in state and (cycle := visit(m)):
                return cycle
        state[n] = 2
        path.pop()
        return None

    for n in sorted(edges):
        if n not in state and (cycle := visit(n)):
            return cycle
    return None


def test_no_import_cycle_between_subpackages():
    edges = import_graph(PACKAGE)
    assert {"cti", "data", "attack_kb"} <= set(edges)  # the graph was actually read
    assert find_cycle(edges) is None, f"import cycle: {' -> '.join(find_cycle(edges))}"


def test_knowledge_base_module_imports_no_section():
    sections = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    edges = import_graph(PACKAGE)
    assert "cti" in sections and "data" in sections
    assert not edges["attack_kb"] & sections, edges["attack_kb"]
    assert "attack_kb" in edges["cti"] and "attack_kb" in edges["data"]


def test_cycle_through_a_lazy_import_is_found(tmp_path):
    root = tmp_path / "pkg"
    for sub in ("a", "b"):
        (root / sub).mkdir(parents=True)
        (root / sub / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "kb.py").write_text("import os\n")
    (root / "a" / "x.py").write_text("from .. import kb\nfrom .y import z\n")
    (root / "b" / "y.py").write_text("def f():\n    from ..a.x import thing\n")
    edges = import_graph(root)
    assert edges == {"a": {"kb"}, "b": {"a"}}
    assert find_cycle(edges) is None
    (root / "a" / "y.py").write_text("from pkg.b import y\n")  # a -> b, and b -> a lazily
    cycle = find_cycle(import_graph(root))
    assert cycle in (["a", "b", "a"], ["b", "a", "b"])

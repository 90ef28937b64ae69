"""The package's shape: imports point one way (no cycles, never up a layer), and no module is too long.

Every import is parsed from the source (``ast``), also those inside functions,
so a lazy import counts as much as a top-level one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers.paths import REPO

PACKAGE = REPO / "sse_np"
MAX_LINES = 500

# Layers, bottom first: a module may import its own group (a module, or a subpackage of
# sse_np) and the groups of lower layers only; groups of one layer never import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("_version",),
    ("settings", "errors"),
    ("progress", "jsonl", "_moved"),
    ("checkpoint", "tokenizer"),
    ("engine",),
    ("retrieval",),  # may use engine (numba set-up); engine never imports it
    ("model",),
    ("defaults",),
    ("index",),
    ("serve", "bulk", "eval", "bench", "integrations"),  # apps: none imports another
    ("cli",),
    ("__init__", "__main__"),  # the package root re-exports; `python -m sse_np`
)
# Known upward imports, each with the reason it is still there.
ALLOWED_UP: set[tuple[str, str]] = set()


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _targets(node: ast.AST, module: str, is_package: bool, modules: dict[str, Path]) -> list[str]:
    """The package modules an import statement loads (the deepest that exist)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        # `from pkg import sub` loads pkg.sub; `from pkg import name` loads pkg
        names = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
    else:
        return []
    out = []
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != module:
            out.append(name)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"
        graph[name] = {t for node in ast.walk(tree) for t in _targets(node, name, is_package, modules)}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _group(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(module: str) -> int:
    group = _group(module)
    for rank, groups in enumerate(LAYERS):
        if group in groups:
            return rank
    raise AssertionError(f"{module}: its group {group!r} has no place in LAYERS; add it where it belongs")


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_imports_point_down() -> None:
    wrong = []
    for module, targets in sorted(_graph().items()):
        for target in sorted(targets):
            if target == "sse_np" and module != "sse_np.__main__":
                wrong.append(f"{module} imports the package root")
            elif (
                _group(module) != _group(target)
                and _layer(target) >= _layer(module)
                and (module, target) not in ALLOWED_UP
            ):
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports that do not point down a layer: " + ", ".join(wrong)


def test_the_checks_see_what_they_check() -> None:
    """The parser finds imports inside functions and resolves relative ones; the cycle finder finds cycles."""
    graph = _graph()
    assert "sse_np.checkpoint.hub" in graph["sse_np.model"]  # imported inside load()
    assert "sse_np.retrieval.jit" in graph["sse_np.retrieval.topk"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_length(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(REPO)} has {lines} lines; split it (at most {MAX_LINES})"

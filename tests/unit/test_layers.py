"""The layers import one way (docs/architecture.md), and no module imports
itself round a cycle: checked over the import graph, as CI runs it."""

from __future__ import annotations

from pathlib import Path

import grimp
from importlinter.api import use_cases


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_layers_import_one_way() -> None:
    """cli ← usecases ← run ← copy ← manifest|store ← s3 ← domain: the contract
    in pyproject.toml holds (``lint-imports`` says which import breaks it)."""
    root = Path(__file__).resolve().parents[2]
    kept = use_cases.lint_imports(
        config_filename=str(root / "pyproject.toml"), cache_dir=None, no_logo=True
    )
    assert kept, "an import breaks the layers: run `lint-imports` to see which"


def test_no_module_imports_itself_round_a_cycle() -> None:
    """Within a layer too, imports form no cycle (not even inside functions)."""
    assert _cycles(grimp.build_graph("engine")) == []


def test_no_engine_module_is_over_500_lines() -> None:
    """One concept per module: none grows past 500 lines (split it by role)."""
    root = Path(__file__).resolve().parents[2] / "engine"
    sizes = {
        str(p.relative_to(root)): len(p.read_text(encoding="utf-8").splitlines())
        for p in root.rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > 500} == {}

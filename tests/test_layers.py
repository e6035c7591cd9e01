"""The package's modules import one way: no cycle, and presentation sits on top.

Every import counts — module-level, function-local and ``TYPE_CHECKING`` ones — because each says
"this module needs that one", whether Python resolves it now, later or only for the type checker.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "samepix"

# Modules that show or act on results. Nothing below them may import them.
PRESENTATION = {
    "report",
    "html_report",
    "html_template",
    "actions",
    "trash",
    "cli",
    "demo",
    "__main__",
}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module name -> the package's modules it imports anywhere in its source."""
    modules = {p.stem for p in package.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in sorted(package.glob("*.py")):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1 or (node.module or "").split(".")[0] == "samepix":
                    parts = (node.module or "").split(".")
                    if node.level == 0:
                        parts = parts[1:]
                    if parts and parts[0]:
                        deps.add(parts[0])
                    else:  # from . import x / from samepix import x: x may be a module
                        deps |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    if parts[0] == "samepix" and len(parts) > 1:
                        deps.add(parts[1])
        graph[path.stem] = (deps & modules) - {path.stem, "__init__"}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_the_package_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_presentation_modules_are_imported_only_by_presentation() -> None:
    graph = import_graph()
    wrong = {
        f"{module} imports {dep}"
        for module, deps in graph.items()
        if module not in PRESENTATION
        for dep in deps & PRESENTATION
    }
    assert not wrong, sorted(wrong)


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        pytest.param({"a": "from . import b\n", "b": "x = 1\n"}, None, id="one-way"),
        pytest.param(
            {"a": "def f():\n    from .b import y\n", "b": "from .a import f\n"},
            ["a", "b", "a"],
            id="function-local-import-closes-a-cycle",
        ),
        pytest.param(
            {
                "a": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import T\n",
                "b": "from samepix.a import g\n",
            },
            ["a", "b", "a"],
            id="type-checking-import-counts",
        ),
    ],
)
def test_the_checker_sees_cycles(
    tmp_path: Path, sources: dict[str, str], expected: list[str] | None
) -> None:
    for name, text in sources.items():
        (tmp_path / f"{name}.py").write_text(text)
    assert find_cycle(import_graph(tmp_path)) == expected

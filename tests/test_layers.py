"""masa_core's modules import one way: no cycle, counting function-level and TYPE_CHECKING imports."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.paths import REPO

PACKAGE = "masa_core"

# Sub-packages and top-level modules of masa_core, bottom layer first: each imports only from its own
# layer or a lower one. The package root (masa_core/__init__.py, the public API) sits above them all.
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(layer.split())
    for layer in (
        "errors device assets boxes formats video_io",
        "detectors tracking",
        "inputs models",
        "segmentation baselines config",
        "pipeline train",
        "visualize eval",
        "cli",
    )
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(package: str = PACKAGE) -> dict[str, Path]:
    return {_module_name(p): p for p in (REPO / package).rglob("*.py")}


def _targets(node: ast.AST, importer: str, is_package: bool, modules: dict[str, Path]) -> list[str]:
    """The masa_core modules one import statement loads (a submodule if named, else its package)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in modules]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        anchor = importer.split(".")[: len(importer.split(".")) - node.level + (1 if is_package else 0)]
        base = ".".join([*anchor, base] if base else anchor)
    if base not in modules:
        return []
    subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
    return subs if len(subs) == len(node.names) else [base, *subs]


def import_graph(package: str = PACKAGE) -> dict[str, set[str]]:
    """{module: the modules of ``package`` it imports anywhere in its body}."""
    modules = _modules(package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            edges.update(_targets(node, name, is_package, modules))
        graph[name] = edges - {name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_masa_core_has_no_import_cycle():
    assert find_cycles(import_graph()) == []


def _layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else ""
    found = [i for i, layer in enumerate(LAYERS) if part in layer]
    assert found, f"{module}: add masa_core.{part} to a layer in tests/test_layers.py"
    return found[0]


def test_each_layer_imports_only_its_own_or_lower_layers():
    upward = [
        f"{a} -> {b}"
        for a, targets in import_graph().items()
        if a != PACKAGE
        for b in sorted(targets)
        if b != PACKAGE and _layer(b) > _layer(a)
    ]
    assert upward == []


def test_the_node_does_not_import_the_tools_and_tools_import_no_other_tools_cli():
    graph = import_graph("masa_ros")
    assert find_cycles(graph) == []
    node_side = {
        m: targets for m, targets in graph.items() if not m.startswith(("masa_ros.tools", "masa_ros.examples"))
    }
    assert [m for m, targets in node_side.items() if any(t.startswith("masa_ros.tools") for t in targets)] == []
    assert "masa_ros.tools.demo" not in graph["masa_ros.tools.eval_live"]
    assert "masa_ros.tools.processes" in graph["masa_ros.tools.eval_live"]


def test_examples_are_consumers_only_nothing_imports_them_and_they_use_no_tools():
    """masa_ros.examples may import the messages and their helpers; nothing else imports an example."""
    graph = import_graph("masa_ros")
    examples = {m for m in graph if m.startswith("masa_ros.examples")}
    assert "masa_ros.examples.track_markers" in examples
    assert "masa_ros.track_messages" in graph["masa_ros.examples.track_markers"]
    assert [m for m, targets in graph.items() if m not in examples and targets & examples] == []
    assert [m for m in examples if any(t.startswith("masa_ros.tools") for t in graph[m])] == []
    for name in ("masa_core", "masa_ros"):
        for path in (REPO / name).rglob("*.py"):
            if "examples" not in path.parts:
                assert "masa_ros.examples" not in path.read_text(), path


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]


def test_the_graph_sees_late_and_type_checking_imports():
    graph = import_graph()
    assert "masa_core.detectors.factory" in graph["masa_core.config"]
    assert "masa_core.detectors.given" in graph["masa_core.detectors.factory"]  # a function-level import
    assert "masa_core.segmentation.box_prompt" in graph["masa_core.pipeline"]  # under TYPE_CHECKING


MAX_LINES = 60


def test_no_function_is_longer_than_60_lines_without_a_reason():
    """A longer function needs a ``# long: <reason>`` comment on one of its lines."""
    long = []
    for root in ("masa_core", "masa_ros"):
        for path in sorted((REPO / root).rglob("*.py")):
            lines = path.read_text().splitlines()
            for node in ast.walk(ast.parse("\n".join(lines))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    body = lines[node.lineno - 1 : node.end_lineno]
                    if len(body) > MAX_LINES and not any("# long:" in line for line in body):
                        long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({len(body)} lines)")
    assert long == []

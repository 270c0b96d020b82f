"""The tree reads as the data flows: each layer imports only what lies upstream of it.

Checked on the source, statically (every `import`, including ones inside functions).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("pipeline", "flows", "dashboards", "timelines")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports (absolute names; `from a import b` counts a and a.b)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def source_modules() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            graph[module_name(path)] = imports_of(path)
    return graph


GRAPH = source_modules()


def importers(prefix: str) -> dict[str, set[str]]:
    return {m: deps for m, deps in GRAPH.items() if m == prefix or m.startswith(prefix + ".")}


def offenders(prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} imports {dep}"
        for module, deps in importers(prefix).items()
        for dep in deps
        if any(dep == f or dep.startswith(f + ".") for f in forbidden)
    )


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("pipeline", ("prefect", "streamlit", "timelines", "flows", "dashboards")),
        ("flows", ("timelines", "dashboards", "streamlit")),
        ("dashboards", ("pipeline.store", "prefect", "flows", "timelines", "duckdb")),
        # upstream never imports downstream along the data path
        ("pipeline.sources", ("pipeline.prepare", "pipeline.inbox", "pipeline.store", "pipeline.analytics",
                              "pipeline.publish", "pipeline.jobs")),
        ("pipeline.parse", ("pipeline.prepare", "pipeline.inbox", "pipeline.store", "pipeline.analytics",
                            "pipeline.publish", "pipeline.jobs", "pipeline.sources")),
        ("pipeline.prepare", ("pipeline.inbox", "pipeline.store", "pipeline.analytics",
                              "pipeline.publish", "pipeline.jobs")),
        # submissions wait in the inbox already prepared (anonymized where they were made)
        ("pipeline.inbox", ("pipeline.store", "pipeline.analytics", "pipeline.publish",
                            "pipeline.jobs")),
        ("pipeline.store", ("pipeline.analytics", "pipeline.publish", "pipeline.jobs")),
        ("pipeline.analytics", ("pipeline.publish", "pipeline.jobs")),
        ("pipeline.publish", ("pipeline.jobs",)),
    ],
)
def test_each_layer_imports_only_upstream(layer: str, forbidden: tuple[str, ...]) -> None:
    assert offenders(layer, forbidden) == []


def _package_graph() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (attribute imports folded into modules)."""
    ours = set(GRAPH)
    edges: dict[str, set[str]] = defaultdict(set)
    for module, deps in GRAPH.items():
        for dep in deps:
            if dep in ours and dep != module:
                edges[module].add(dep)
    return edges


def test_no_import_cycles() -> None:
    edges = _package_graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(GRAPH):
        if node not in state:
            visit(node, [])
    assert cycles == []


def test_the_environment_is_read_in_one_place() -> None:
    readers = sorted(
        module_name(path)
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if "os.environ" in path.read_text() or "getenv(" in path.read_text()
    )
    assert readers == ["pipeline.settings"]


# Being split by the work on issues 11 (survival) and 13 (the API client and its emulator).
NOT_YET_SPLIT = {"pipeline.analytics.survival"}


def test_no_module_is_over_400_lines() -> None:
    long = sorted(
        f"{module_name(path)}: {n} lines"
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 400
        and module_name(path) not in NOT_YET_SPLIT
    )
    assert long == []


def test_few_loose_modules_at_the_root_of_pipeline() -> None:
    loose = sorted(p.name for p in (REPO / "pipeline").glob("*.py") if p.name != "__init__.py")
    assert len(loose) <= 4, loose


def test_tests_swap_the_world_not_our_code() -> None:
    """No test patches our own functions: what a test varies is a parameter or a fake source."""
    patched = sorted(
        str(path.relative_to(REPO))
        for path in (REPO / "tests").rglob("*.py")
        if path.name != "test_layering.py"
        and any(s in path.read_text() for s in ("monkeypatch.setattr", "mock.patch", "unittest.mock"))
    )
    assert patched == []

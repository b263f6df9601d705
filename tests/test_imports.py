"""The package's imports go one way: no module imports another that (directly or through
others) imports it back, whether at module level or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "clipconcepts"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package modules `path` imports anywhere in its body (functions included)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from a.b import c` imports a.b, and a.b.c when c is a module
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    graph = {name: imports_of(path, modules) for name, path in files.items()}
    # importing a.b.c runs a/__init__.py and a/b/__init__.py first: edges to parent packages
    # are not cycles of their own, so they are left out (a package's __init__ may re-export)
    return {
        name: {t for t in targets if not name.startswith(t + ".")}
        for name, targets in graph.items()
    }


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle's smallest rotation, found by depth-first search from each node."""
    cycles: set[tuple[str, ...]] = set()
    for start in sorted(graph):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    i = path.index(min(path))
                    cycles.add(tuple(path[i:] + path[:i]))
                elif nxt not in path and nxt > start and len(path) < 8:
                    stack.append((nxt, [*path, nxt]))
    return [list(c) for c in sorted(cycles)]


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert "clipconcepts.cli" in graph and len(graph) > 50
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join([*c, c[0]]) for c in cycles)


def test_no_stage_imports_the_cli():
    graph = import_graph()
    offenders = sorted(
        m
        for m, targets in graph.items()
        if "clipconcepts.cli" in targets and m != "clipconcepts.__main__"
    )
    assert offenders == [], f"modules importing clipconcepts.cli: {offenders}"


def test_the_cli_starts_without_torch():
    """`python -m clipconcepts STEP` loads only its step's libraries: the sub-commands that need
    no torch (labelling, judging, CCS, the report...) start in a fraction of a second, which adds
    up over a workflow's jobs (on a cluster, each is a job of its own)."""
    import subprocess
    import sys

    probe = "import sys, clipconcepts.cli; print(sorted({'torch', 'open_clip'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]", out


def test_lazy_exports_resolve():
    import clipconcepts.evaluate as evaluate
    from clipconcepts.evaluate import classifier, prune, strategies

    for name in evaluate.__all__:
        value = getattr(evaluate, name)
        assert any(getattr(m, name, None) is value for m in (classifier, prune, strategies)), name

"""The code's shape, read from the source (ast): imports follow the stage order, module-level
imports form no cycle, and an import inside a function is a documented lazy one.

The order (docs/pipeline.md): errors < registry, cluster, device, interrupt, lock < media < face, label
< faceset, model_meta < extract < train < convert < eval < demo, jobs < studio < cli. A module may import its own package
and anything of a lower rank; two packages of one rank do not import each other.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

RANK = {
    "facetwin": 0,  # the package root: __version__
    "errors": 0,
    "registry": 1,
    "cluster": 1,
    "device": 1,
    "interrupt": 1,
    "lock": 1,
    "media": 2,
    "face": 3,
    "label": 3,
    "faceset": 4,
    "model_meta": 4,
    "extract": 5,
    "train": 6,
    "convert": 7,
    "eval": 8,
    "demo": 9,
    "jobs": 9,
    "studio": 10,
    "cli": 11,
}
#: Libraries slow to import (torch ~1.5 s) or needing native models: the only reason a facetwin
#: module is imported inside a function, so that a command that does not need them never waits.
HEAVY = {"torch", "dlib", "av", "ray"}
#: The entry points import each command's stage when that command runs.
DISPATCHERS = {
    "facetwin.cli",
    "facetwin.cli.commands",
    "facetwin.cli.options",
    "facetwin.cli.jobs",
    "facetwin.cli.studio",
    "facetwin.demo",
}


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    top: bool  # at module level (else inside a function or class body)


def modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def imports() -> list[Import]:
    """Every import statement; a plugin package's ``import_plugins(__name__)`` counts as a
    module-level import of each module beside its ``__init__`` (that is what it does)."""
    mods = modules()
    found = []
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        text = path.read_text()
        if path.name == "__init__.py" and "import_plugins(__name__)" in text:
            for sub in mods:
                if sub.rpartition(".")[0] == name:
                    found.append(Import(name, sub, 0, True))
        tree = ast.parse(text, str(path))
        top_nodes = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                # "from pkg import mod" names a module when pkg.mod is one
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names
                ]
            else:
                continue
            for t in targets:
                found.append(Import(name, t, node.lineno, id(node) in top_nodes))
    return found


def stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def internal(imps: list[Import]) -> list[Import]:
    mods = modules()
    out = []
    for i in imps:
        t = i.target
        while t not in mods and "." in t:
            t = t.rpartition(".")[0]
        if t.startswith("facetwin") and t in mods and t != i.source:
            out.append(Import(i.source, t, i.line, i.top))
    return out


def test_imports_follow_the_stage_order():
    bad = []
    for i in internal(imports()):
        a, b = stage(i.source), stage(i.target)
        assert a in RANK and b in RANK, f"{i.source} or {i.target}: a package missing from RANK"
        if a != b and (RANK[b] > RANK[a] or (RANK[b] == RANK[a] and b != "facetwin")):
            bad.append(f"{i.source}:{i.line} imports {i.target} ({a} -> {b})")
    assert not bad, "\n".join(bad)


def test_module_level_imports_have_no_cycle():
    graph: dict[str, set[str]] = defaultdict(set)
    for i in internal(imports()):
        if i.top:
            graph[i.source].add(i.target)
    # a package's __init__ that imports its own submodules is how Python packages work; the
    # cycle that matters is a module reaching back to itself through others
    state: dict[str, int] = {}
    path: list[str] = []
    cycles = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if n.startswith(m + "."):
                continue
            if state.get(n) == 1:
                cycles.append(" -> ".join([*path[path.index(n) :], n]))
            elif n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "\n".join(cycles)


def heavy_modules(imps: list[Import]) -> set[str]:
    """facetwin modules that import a HEAVY library at module level, directly or through other
    facetwin modules' module-level imports."""
    graph: dict[str, set[str]] = defaultdict(set)
    heavy = {i.source for i in imps if i.top and i.target.split(".")[0] in HEAVY}
    for i in internal(imps):
        if i.top:
            graph[i.source].add(i.target)
    changed = True
    while changed:
        changed = False
        for m, targets in graph.items():
            if m not in heavy and targets & heavy:
                heavy.add(m)
                changed = True
    return heavy


def test_imports_inside_functions_are_lazy_heavy_ones():
    imps = imports()
    heavy = heavy_modules(imps)
    bad = [
        f"{i.source}:{i.line} imports {i.target} inside a function, but it is light"
        for i in internal(imps)
        if not i.top and i.source not in DISPATCHERS and i.target not in heavy
    ]
    assert not bad, "\n".join(bad)


def test_the_checks_see_what_they_check():
    """Guards against a test that cannot fail: the parser finds the imports it should."""
    found = internal(imports())
    assert any(
        i.source == "facetwin.faceset.rows" and i.target == "facetwin.face.align" for i in found
    )
    assert any(not i.top and i.source == "facetwin.convert.swap" for i in found)
    heavy = heavy_modules(imports())
    assert "facetwin.train.models" in heavy and "facetwin.face.align" not in heavy
    assert "facetwin.extract.detectors" in heavy  # through its mtcnn plugin (torch)

"""The package's layers point one way: read every module's imports (``ast``) and check them.

(a) no module imports a higher layer, (b) no package is in an import cycle with
another, (c) no module imports another module's private name (or a private module of
another package). Imports inside functions count as much as module-level ones: a lazy
import is still a dependency.
"""

from __future__ import annotations

import ast
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first; a unit may import its own layer and those below it. A unit is a
# package under georeason/ or a top-level module. The order is the one of issue 15
# ("types/jsonsafe/images/tables/runs -> geo -> match -> protocols -> rewards -> models
# -> infer -> consensus -> datasets -> eval -> pipelines -> train -> serve -> demo ->
# commands/cli") with two moves the code asks for:
# - consensus sits below models/infer: it needs only geo, match and types, and
#   infer.locate reduces K sampled answers with it;
# - rewards sits above infer: GLOBE's judge rewards (rewards.judges) ask a served
#   model through infer's Request / OpenAIBackend, and nothing in infer or models
#   needs a reward.
# configs (the --config / --set parser) imports nothing of georeason: ground floor.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("types", "jsonsafe", "images", "tables", "runs", "configs"),
    ("geo",),
    ("match",),
    ("protocols",),
    ("consensus",),
    ("models",),
    ("infer",),
    ("rewards",),
    ("datasets",),
    ("eval",),
    ("pipelines",),
    ("train",),
    ("serve",),
    ("demo",),
    ("commands", "cli", "__main__"),
)
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}

# Edges allowed against the table, (importer prefix, imported prefix): why. A stale
# entry warns in the cycle test.
ALLOWED: dict[tuple[str, str], str] = {
    # (importer, imported): why. Empty: every edge follows the layer table.
}


@dataclass(frozen=True)
class Edge:
    importer: str  # module
    imported: str  # module
    name: str | None  # the name taken from it (``from imported import name``), else None
    line: int

    def __str__(self) -> str:
        what = f"{self.imported}.{self.name}" if self.name else self.imported
        return f"{self.importer}:{self.line} imports {what}"


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in sorted((SRC / "georeason").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


MODULES = _modules()


def _absolute(module: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _edges() -> list[Edge]:
    edges = []
    for module, (path, is_pkg) in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                edges += [
                    Edge(module, a.name, None, node.lineno)
                    for a in node.names
                    if a.name == "georeason" or a.name.startswith("georeason.")
                ]
            elif isinstance(node, ast.ImportFrom):
                target = _absolute(module, is_pkg, node)
                if target != "georeason" and not target.startswith("georeason."):
                    continue
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    if sub in MODULES:  # `from georeason.geo import countries`: a module
                        edges.append(Edge(module, sub, None, node.lineno))
                    else:
                        edges.append(Edge(module, target, a.name, node.lineno))
    return edges


EDGES = _edges()


def _unit(module: str) -> str | None:
    """The package or top-level module of georeason that ``module`` belongs to (None: georeason)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _allowed(edge: Edge, used: set[tuple[str, str]]) -> bool:
    for key in ALLOWED:
        src, dst = key
        if (edge.importer == src or edge.importer.startswith(src + ".")) and (
            edge.imported == dst or edge.imported.startswith(dst + ".")
        ):
            used.add(key)
            return True
    return False


def test_the_scan_sees_the_package() -> None:
    """Guards the scan itself: it finds the modules and the imports known to exist."""
    assert "georeason.geo.sphere" in MODULES and "georeason.match" in MODULES
    assert any(
        e.importer == "georeason.pipelines.select.core" and e.imported == "georeason.geo.sphere" for e in EDGES
    )
    units = {_unit(m) for m in MODULES} - {None}
    assert units <= set(RANK), f"units missing from LAYERS: {sorted(units - set(RANK))}"


def test_no_module_imports_a_higher_layer() -> None:
    used: set[tuple[str, str]] = set()
    bad = []
    for e in EDGES:
        a, b = _unit(e.importer), _unit(e.imported)
        if a is None or b is None or a == b:
            continue
        if RANK[b] > RANK[a] and not _allowed(e, used):
            bad.append(f"{e}  ({a}: layer {RANK[a]} -> {b}: layer {RANK[b]})")
    assert not bad, "imports of a higher layer:\n" + "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_package_is_in_an_import_cycle() -> None:
    used: set[tuple[str, str]] = set()
    graph: dict[str, set[str]] = defaultdict(set)
    why: dict[tuple[str, str], str] = {}
    for e in EDGES:
        a, b = _unit(e.importer), _unit(e.imported)
        if a is None or b is None or a == b or _allowed(e, used):
            continue
        graph[a].add(b)
        graph.setdefault(b, set())  # every unit is a node
        why.setdefault((a, b), str(e))
    cycles = _cycles(graph)
    detail = [
        " <-> ".join(c) + ": " + "; ".join(why[(x, y)] for x in c for y in c if (x, y) in why) for c in cycles
    ]
    assert not cycles, "package import cycles:\n" + "\n".join(detail)
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]  # the detector detects
    for key in set(ALLOWED) - used:  # the work it names has landed: remove the entry
        warnings.warn(f"tests/test_layers.py: ALLOWED entry no longer needed: {key}", stacklevel=1)


def _private(edge: Edge) -> str | None:
    """The private part an edge reaches into from outside, if any."""
    if edge.name and edge.name.startswith("_") and not edge.name.startswith("__"):
        return edge.name if edge.imported != edge.importer else None
    parts = edge.imported.split(".")
    for i, part in enumerate(parts):
        owner = ".".join(parts[:i])  # the package that holds the private module
        if part.startswith("_") and not part.startswith("__"):
            inside = edge.importer == owner or edge.importer.startswith(owner + ".")
            return None if inside else ".".join(parts[: i + 1])
    return None


def test_no_module_imports_private_names_of_another() -> None:
    bad = [f"{e}  (private: {p})" for e in EDGES if (p := _private(e))]
    assert not bad, "imports of private names across modules:\n" + "\n".join(bad)
    probe = Edge("georeason.eval.plots", "georeason.geo._cache", "cached", 1)
    assert _private(probe) == "georeason.geo._cache"  # the check catches a private module
    assert _private(Edge("georeason.geo.countries", "georeason.geo._cache", "cached", 1)) is None

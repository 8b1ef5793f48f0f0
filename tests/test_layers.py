"""The import structure of docs/design.md ("Floors"): every module imports on its own, packages
import only the floors below them, and no import hides inside a function to dodge a cycle."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "celgraph"

# floor of each part of celgraph (docs/design.md); a module may import its own part and lower floors
FLOORS = {"core": 0, "graph": 1, "engine": 2}
TOP = {"nodes", "service", "train", "cli", "api", "__init__"}
LIBRARIES = {"models", "synth"}     # beside the engine, below the nodes: they may import core and each other
# the one import of celgraph a host plug-in makes: the optional in-process gRPC transport
HOST_EXCEPTIONS = {("hosts/common/celgraph_host/transports.py", "celgraph.service")}   # `from celgraph.service import client`


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py")) if "_gen" not in p.parts}


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(path: Path, name: str, known: set[str]) -> list[tuple[str, bool]]:
    """(imported celgraph module, inside a function) for every import of ``path`` that runs
    (imports under ``if TYPE_CHECKING:`` never do)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[str, bool]] = []

    def visit(node, in_function: bool):
        if isinstance(node, ast.If) and _is_type_checking(node):
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_function = True
        if isinstance(node, ast.Import):
            out.extend((a.name, in_function) for a in node.names if a.name.split(".")[0] == "celgraph")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] == "celgraph":     # a name that is a module imports it, others the package
                out.extend((f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod, in_function)
                           for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child, in_function)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return out


def _part(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _all_imports():
    mods = _modules()
    known = set(mods)
    return {name: _imports(path, name, known) for name, path in mods.items()}


def _allowed(src: str, dst: str) -> bool:
    a, b = _part(src), _part(dst)
    if a == b or a in TOP:
        return True
    if a in FLOORS:
        return b in FLOORS and FLOORS[b] <= FLOORS[a]
    if a in LIBRARIES:
        return b in LIBRARIES or b == "core"
    return False


def test_every_package_imports_only_the_floors_below_it():
    bad = [f"{src} imports {dst}" for src, imps in _all_imports().items() for dst, _ in imps
           if not _allowed(src, dst)]
    assert not bad, "\n".join(bad)


def test_the_rules_catch_an_upward_import():
    assert not _allowed("celgraph.core.node", "celgraph.graph.scene")
    assert not _allowed("celgraph.graph.scene", "celgraph.engine.runtime")
    assert not _allowed("celgraph.models.raft", "celgraph.engine")
    assert not _allowed("celgraph.models.raft", "celgraph.nodes.flow")
    assert _allowed("celgraph.engine.planner", "celgraph.core.node")
    assert _allowed("celgraph.nodes.flow", "celgraph.models.raft")


def test_no_function_level_import_dodges_a_cycle():
    """A function-level import of a celgraph module is allowed only to defer a heavy or optional
    dependency (torch, dask, grpc, OpenImageIO): hoisting it to the top of its module must not
    close a cycle of top-level imports."""
    imports = _all_imports()
    top = nx.DiGraph()
    top.add_nodes_from(imports)
    for src, imps in imports.items():
        top.add_edges_from((src, dst) for dst, in_function in imps if not in_function and dst in imports and dst != src)
    assert nx.is_directed_acyclic_graph(top), list(nx.simple_cycles(top))[:3]
    bad = []
    for src, imps in imports.items():
        for dst, in_function in imps:
            if in_function and dst in imports and dst != src and nx.has_path(top, dst, src):
                bad.append(f"{src} imports {dst} inside a function (at the top it would close a cycle)")
    assert not bad, "\n".join(bad)


def test_host_plugins_import_nothing_of_celgraph():
    bad = []
    for path in sorted((ROOT / "hosts").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for n in names:
                if n.split(".")[0] == "celgraph" and (rel, n) not in HOST_EXCEPTIONS:
                    bad.append(f"{rel} imports {n}")
    assert not bad, "\n".join(bad)


_FRESH = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for m in [m for m in sys.modules if m == "celgraph" or m.startswith("celgraph.")]:
        del sys.modules[m]
    try:
        importlib.import_module(name)
    except ImportError as e:
        if (e.name or "").split(".")[0] == "celgraph":
            failed.append(f"{name}: {e}")
    except Exception:
        failed.append(f"{name}: {traceback.format_exc(limit=3)}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_first_in_a_fresh_interpreter():
    """Each module imported as the first celgraph module of the process (its celgraph modules
    are dropped from sys.modules between tries: third-party ones stay loaded, so this runs in
    seconds). A cycle shows up as an ImportError of a partly initialised module. A missing
    optional third-party package (grpc, dask) is not a failure here."""
    r = subprocess.run([sys.executable, "-c", _FRESH, *_modules()], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr

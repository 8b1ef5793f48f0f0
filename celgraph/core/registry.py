"""The registry of node types, including third-party types from the `celgraph.nodes` entry points.

An entry point may name a module (every NodeType subclass with an `id` defined in it is
registered), a NodeType subclass, or a callable returning a list of them. celgraph's own nodes are
registered through the same entry point, so the engine knows no node type by name.

Studios that do not package their nodes can list modules in $CELGRAPH_NODE_MODULES
(comma-separated, importable from PYTHONPATH) — the same way NUKE_PATH works; render-farm and Dask
workers pick them up from their environment.
"""
from __future__ import annotations

import inspect
import logging
import os
import types
from importlib.metadata import EntryPoint, entry_points

from .node import NodeType

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "celgraph.nodes"


class Registry:
    def __init__(self):
        self._by_id: dict[str, type[NodeType]] = {}
        self._loaded_entry_points = False

    def register(self, node_type: type[NodeType]) -> type[NodeType]:
        if not (inspect.isclass(node_type) and issubclass(node_type, NodeType) and node_type.id):
            raise TypeError(f"{node_type!r} is not a NodeType with an id")
        if node_type.scope not in ("frame", "clip"):
            raise TypeError(f"{node_type.id}: scope must be 'frame' or 'clip'")
        check_interface(node_type)
        existing = self._by_id.get(node_type.id)
        if existing is not None and existing is not node_type:
            raise ValueError(f"node type id {node_type.id!r} is registered twice "
                             f"({existing.__module__} and {node_type.__module__})")
        self._by_id[node_type.id] = node_type
        return node_type

    def register_module(self, module: types.ModuleType) -> None:
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, NodeType) and obj.id and obj.__module__ == module.__name__:
                self.register(obj)

    def load_entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        eps = list(entry_points(group=ENTRY_POINT_GROUP))
        if not any(ep.value == "celgraph.nodes" for ep in eps):
            # running from a source tree that was never pip-installed: load the built-ins anyway
            eps.insert(0, EntryPoint("builtin", "celgraph.nodes", ENTRY_POINT_GROUP))
        for module in filter(None, (m.strip() for m in os.environ.get("CELGRAPH_NODE_MODULES", "").split(","))):
            eps.append(EntryPoint(module, module, ENTRY_POINT_GROUP))
        for ep in eps:
            try:
                obj = ep.load()
                if isinstance(obj, types.ModuleType):
                    self.register_module(obj)
                    for sub in getattr(obj, "NODE_MODULES", ()):
                        self.register_module(sub)
                elif inspect.isclass(obj):
                    self.register(obj)
                else:
                    for t in obj():
                        self.register(t)
            except Exception as e:  # one broken plug-in must not take the others down
                log.warning("could not load node types from entry point %r: %s", ep.name, e)

    def get(self, name: str) -> type[NodeType] | None:
        """Look a type up by full id ("celgraph.GapFill") or unambiguous short name ("GapFill")."""
        self.load_entry_points()
        if name in self._by_id:
            return self._by_id[name]
        matches = [t for t in self._by_id.values() if t.name() == name]
        if len(matches) == 1:
            return matches[0]
        builtin = [t for t in matches if t.id.startswith("celgraph.")]
        return builtin[0] if len(builtin) == 1 else None

    def all(self) -> list[type[NodeType]]:
        self.load_entry_points()
        return sorted(self._by_id.values(), key=lambda t: (t.category, t.id))


def check_interface(node_type: type[NodeType]) -> None:
    """A node type's declared interface agrees with itself and with its methods, so a typo fails
    when the type is registered (at import), not at its first run. TypeError naming the problem."""
    where = node_type.id
    for what, names in (("input", [i.name for i in node_type.inputs]), ("output", [o.name for o in node_type.outputs]),
                        ("param", [p.name for p in node_type.params])):
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise TypeError(f"{where}: {what} names must be unique; {dup} declared twice")
    inputs = [i.name for i in node_type.inputs]
    both = sorted(set(inputs) & {p.name for p in node_type.params})
    if both:
        raise TypeError(f"{where}: {both} is both an input and a param (the Python API could not tell them apart)")
    sig = inspect.signature(node_type.compute)
    args = list(sig.parameters.values())[2:]        # after self, ctx
    kinds = {a.kind for a in args}
    if node_type.compute is not NodeType.compute and inspect.Parameter.VAR_KEYWORD not in kinds:
        named = {a.name for a in args if a.kind in (a.POSITIONAL_OR_KEYWORD, a.KEYWORD_ONLY)}
        missing = [n for n in inputs if n not in named]
        if missing:
            raise TypeError(f"{where}: compute() does not take the declared input(s) {missing}")
    extra = [a.name for a in args if a.kind in (a.POSITIONAL_OR_KEYWORD, a.KEYWORD_ONLY)
             and a.name not in inputs and a.default is inspect.Parameter.empty]
    if extra:
        raise TypeError(f"{where}: compute() requires {extra}, which are not declared inputs (inputs: {inputs})")
    for hook, n_args in (("check", 1), ("frames_needed", 1), ("fingerprint", 1), ("verify", 2)):
        fn = getattr(node_type, hook)
        if fn is getattr(NodeType, hook):
            continue
        params = list(inspect.signature(fn).parameters.values())[1:]
        if len(params) != n_args and not any(p.kind == p.VAR_POSITIONAL for p in params):
            expected = "ctx" if n_args == 1 else "ctx, outputs"
            raise TypeError(f"{where}: {hook}() must take (self, {expected}), got ({', '.join(['self'] + [p.name for p in params])})"
                            + (" — the params are ctx.params" if hook == "check" else ""))


registry = Registry()
register = registry.register

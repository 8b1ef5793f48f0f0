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


registry = Registry()
register = registry.register

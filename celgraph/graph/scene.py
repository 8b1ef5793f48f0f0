"""The scene: a Graph of named node instances and links, scene.json v1 load/save, builder API.

Load → save is an exact round trip: key order, unknown blocks (`ui`, extra keys on nodes or at
the top level) and params left at their defaults are all kept as written.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.atomic import write_text
from ..core.errors import GraphInvalid, Issue
from ..core.registry import registry

SCENE_VERSION = 1
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class OutputRef:
    """A node's output, as used in links and by `Graph.evaluate`: `"node.output"`."""
    node: str
    output: str

    def __str__(self) -> str:
        return f"{self.node}.{self.output}"

    @classmethod
    def parse(cls, text: str) -> "OutputRef":
        if not isinstance(text, str) or text.count(".") < 1:
            raise ValueError(f"link {text!r} must be written 'node.output'")
        node, output = text.rsplit(".", 1)
        if not node or not output:
            raise ValueError(f"link {text!r} must be written 'node.output'")
        return cls(node, output)


@dataclass
class NodeSpec:
    """One node instance as written in the scene (raw params; normalised at validation)."""
    name: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)     # unknown keys, kept verbatim
    key_order: list[str] = field(default_factory=lambda: ["type", "inputs", "params"])

    def to_dict(self) -> dict:
        out: dict[str, Any] = {}
        known = {"type": self.type, "inputs": self.inputs, "params": self.params}
        for k in self.key_order:
            if k in known:
                if k == "type" or known[k]:
                    out[k] = known[k]
            elif k in self.extra:
                out[k] = self.extra[k]
        for k, v in known.items():       # added by the builder after load
            if k not in out and (k == "type" or v):
                out[k] = v
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out


class NodeHandle:
    """What `Graph.add` returns: index it by output name to get a link source."""

    def __init__(self, graph: "Graph", name: str):
        self.graph, self.name = graph, name

    def __getitem__(self, output: str) -> OutputRef:
        return OutputRef(self.name, output)

    def set(self, **values) -> "NodeHandle":
        spec = self.graph.nodes[self.name]
        for k, v in values.items():
            if isinstance(v, (OutputRef, NodeHandle)):
                spec.inputs[k] = str(v if isinstance(v, OutputRef) else v._only_output())
            else:
                spec.params[k] = v
        return self

    def _only_output(self) -> OutputRef:
        t = registry.get(self.graph.nodes[self.name].type)
        if t is None or len(t.outputs) != 1:
            raise ValueError(f"node '{self.name}' has several outputs: link one, e.g. {self.name}['image']")
        return OutputRef(self.name, t.outputs[0].name)

    def __repr__(self) -> str:
        return f"<node {self.name} ({self.graph.nodes[self.name].type})>"


class Graph:
    """A scene: frames, named node instances, links. Build it in Python or load scene.json.

    This is the scene model only; `celgraph.Graph` (celgraph/api.py) adds `validate`, `run` and
    `evaluate`, the conveniences that reach the engine one floor up."""

    def __init__(self, frames: Any = "1", base_dir: str | os.PathLike | None = None):
        self.version = SCENE_VERSION
        self.frames = frames
        self.nodes: dict[str, NodeSpec] = {}
        self.ui: dict | None = None
        self.extra: dict[str, Any] = {}
        self.key_order = ["celgraph", "frames", "nodes", "ui"]
        self.base_dir = Path(base_dir) if base_dir else Path.cwd()
        self.path: Path | None = None

    # ---- builder API --------------------------------------------------------------------
    def add(self, type: str, name: str | None = None, **values) -> NodeHandle:
        """Add a node. Keyword values that are outputs (`other["image"]`) become links; the
        rest become params."""
        if name is None:
            stem = type.rsplit(".", 1)[-1].lower()
            n = 1
            while f"{stem}{n}" in self.nodes:
                n += 1
            name = f"{stem}{n}"
        if name in self.nodes:
            raise ValueError(f"a node named '{name}' already exists")
        if not _NAME.match(name):
            raise ValueError(f"node name {name!r} must start with a letter and use letters, digits, _ or -")
        self.nodes[name] = NodeSpec(name, type)
        return NodeHandle(self, name).set(**values)

    def node(self, name: str) -> NodeHandle:
        if name not in self.nodes:
            raise KeyError(f"no node named '{name}'")
        return NodeHandle(self, name)

    def remove(self, name: str) -> None:
        del self.nodes[name]

    def __getitem__(self, name: str) -> NodeHandle:
        return self.node(name)

    # ---- scene.json ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        known = {"celgraph": self.version, "frames": self.frames,
                 "nodes": {n: s.to_dict() for n, s in self.nodes.items()}, "ui": self.ui}
        out: dict[str, Any] = {}
        for k in self.key_order:
            if k in known:
                if k != "ui" or self.ui is not None:
                    out[k] = known[k]
            elif k in self.extra:
                out[k] = self.extra[k]
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def save(self, path: str | os.PathLike) -> Path:
        """Write scene.json atomically (temp file + rename)."""
        self.path = write_text(path, self.dumps())
        return self.path

    @classmethod
    def from_dict(cls, data: Any, base_dir: str | os.PathLike | None = None) -> "Graph":
        """Build from parsed scene JSON. Structural problems raise GraphInvalid (all at once)."""
        if not isinstance(data, dict):
            raise GraphInvalid([Issue("bad_scene", "a scene must be a JSON object")])
        version = data.get("celgraph")
        if version != SCENE_VERSION:
            raise GraphInvalid([Issue("bad_version",
                                      f"scene format version {version!r} is not supported "
                                      f"(this celgraph reads version {SCENE_VERSION}; "
                                      "the file needs \"celgraph\": 1)")])
        g = cls(frames=data.get("frames", "1"), base_dir=base_dir)
        g.key_order = list(data.keys())
        g.ui = data.get("ui")
        g.extra = {k: v for k, v in data.items() if k not in ("celgraph", "frames", "nodes", "ui")}
        issues: list[Issue] = []
        if "nodes" not in data:
            raise GraphInvalid([Issue("bad_scene", "the scene has no \"nodes\" object (name → node)")])
        nodes = data["nodes"]
        if not isinstance(nodes, dict):
            raise GraphInvalid([Issue("bad_scene", "\"nodes\" must be an object of name → node")])
        for name, raw in nodes.items():
            if not _NAME.match(name):
                issues.append(Issue("bad_scene", f"node name {name!r} must start with a letter and use "
                                                 "letters, digits, _ or -", node=name))
                continue
            if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
                issues.append(Issue("bad_scene", "a node must be an object with a \"type\" string", node=name))
                continue
            params, inputs = raw.get("params", {}), raw.get("inputs", {})
            if not isinstance(params, dict):
                issues.append(Issue("bad_scene", "\"params\" must be an object", node=name))
                continue
            if not isinstance(inputs, dict):
                issues.append(Issue("bad_scene", "\"inputs\" must be an object of input → \"node.output\"",
                                    node=name))
                continue
            g.nodes[name] = NodeSpec(
                name, raw["type"], dict(params), dict(inputs),
                extra={k: v for k, v in raw.items() if k not in ("type", "params", "inputs")},
                key_order=list(raw.keys()))
        if issues:
            raise GraphInvalid(issues)
        return g

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Graph":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise GraphInvalid([Issue("file_not_found", f"scene file {str(path)!r} does not exist")]) from None
        except (OSError, UnicodeDecodeError) as e:
            raise GraphInvalid([Issue("bad_scene", f"cannot read scene file {str(path)!r}: {e}")]) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise GraphInvalid([Issue("bad_scene", f"{path}: not valid JSON: {e}")]) from None
        g = cls.from_dict(data, base_dir=path.resolve().parent)
        g.path = path
        return g

    def __repr__(self) -> str:
        return f"<Graph frames={self.frames!r} nodes={list(self.nodes)}>"


load_scene = Graph.load

"""Scene validation and resolution: every problem at once, each with a stable code and the node
it concerns — or, for a valid scene, the resolved graph the planner runs.

`resolve` is the one place a scene's node types are looked up, its params normalised and its
frames and targets checked. `Engine.run`, `graph validate` and the service call it once per
request and hand the `ResolvedGraph` on; nothing downstream looks a node type up by name or
normalises params again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from ..core.errors import GraphInvalid, Issue
from ..core.node import CheckContext, NodeType, Params, normalize_params
from ..core.registry import Registry, registry as default_registry
from .frames import FrameRangeError, parse_frames
from .scene import Graph, NodeSpec, OutputRef


@dataclass(frozen=True)
class ResolvedNode:
    """A node instance ready to plan: its spec, its type (and an instance of it), normalised params."""
    name: str
    spec: NodeSpec
    type: type[NodeType]
    node: NodeType
    params: Params


@dataclass(frozen=True)
class ResolvedGraph:
    """A validated scene: the only thing the planner accepts."""
    graph: Graph
    nodes: dict[str, ResolvedNode]
    frames: list[int]          # the scene's frames (the clip range)
    requested: list[int]       # the frames asked for (default: all of them)
    targets: list[str]         # the nodes asked for (default: every node nothing else reads from)
    outputs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # the outputs asked for per target node, in port order: every output of a node named alone
    # ("fill"), only those named ("fill.lines") — what the planner computes and stores

    @property
    def base_dir(self) -> Path:
        return self.graph.base_dir


def resolve(graph: Graph, registry: Registry | None = None, targets: list[str] | None = None,
            frames: str | int | list[int] | None = None, skip_checks=frozenset()) -> ResolvedGraph:
    """Check the scene (and the targets and frames asked for) and resolve it; raises GraphInvalid
    with every problem found. `skip_checks`: nodes whose own check (files exist, ...) is not run
    (the service's refused paths: a client must not learn whether they exist)."""
    registry = registry or default_registry
    issues: list[Issue] = []
    if graph.version != 1:
        issues.append(Issue("bad_version", f"scene format version {graph.version!r} is not supported"))
    scene_frames: list[int] | None = None
    try:
        scene_frames = parse_frames(graph.frames)
    except FrameRangeError as e:
        issues.append(Issue("bad_frames", str(e), field="frames"))

    types: dict[str, type[NodeType]] = {}
    for name, spec in graph.nodes.items():
        t = registry.get(spec.type)
        if t is None:
            issues.append(Issue("unknown_type", f"no node type '{spec.type}' is registered "
                                                "(see `graph nodes`)", name, "type"))
        else:
            types[name] = t

    links = nx.DiGraph()
    links.add_nodes_from(graph.nodes)
    params_ok: dict[str, Params] = {}
    for name, spec in graph.nodes.items():
        t = types.get(name)
        if t is not None:
            params, p_issues = normalize_params(t, spec.params, name)
            issues += p_issues
            if not p_issues:
                params_ok[name] = params
        for input_name, link in spec.inputs.items():
            port = t.input(input_name) if t else None
            if t is not None and port is None:
                known = ", ".join(i.name for i in t.inputs) or "none"
                issues.append(Issue("unknown_input", f"{t.name()} has no input '{input_name}' (inputs: {known})",
                                    name, input_name))
            try:
                ref = OutputRef.parse(link)
            except ValueError as e:
                issues.append(Issue("bad_link", str(e), name, input_name))
                continue
            if ref.node not in graph.nodes:
                issues.append(Issue("unknown_node", f"input '{input_name}' links to node '{ref.node}', "
                                                    "which is not in the scene", name, input_name))
                continue
            links.add_edge(ref.node, name)
            up = types.get(ref.node)
            if up is None:
                continue
            out = up.output(ref.output)
            if out is None:
                known = ", ".join(o.name for o in up.outputs)
                issues.append(Issue("unknown_output", f"input '{input_name}' links to '{link}', but "
                                                      f"{up.name()} has no output '{ref.output}' (outputs: {known})",
                                    name, input_name))
            elif port is not None and not port.type.can_take(out.type):
                issues.append(Issue("type_mismatch", f"input '{input_name}' takes {port.type.name} but '{link}' "
                                                     f"is {out.type.name}", name, input_name))
        if t is not None:
            for port in t.inputs:
                if not port.optional and port.name not in spec.inputs:
                    issues.append(Issue("missing_input", f"required input '{port.name}' ({port.type.name}) "
                                                         "is not linked", name, port.name))

    for cycle in nx.simple_cycles(links):
        path = " → ".join([*cycle, cycle[0]])
        issues.append(Issue("cycle", f"links form a cycle: {path}", cycle[0]))

    instances = {name: types[name]() for name in params_ok}
    if scene_frames is not None:
        for name, params in params_ok.items():
            if name in skip_checks:
                continue
            issues += instances[name].check(CheckContext(name, params, scene_frames, graph.base_dir))

    requested = scene_frames
    if frames is not None:
        try:
            requested = sorted(set(parse_frames(frames) if isinstance(frames, (str, int)) else frames))
        except FrameRangeError as e:
            requested = None
            issues.append(Issue("bad_frames", f"frames: {e}", field="frames"))
        if requested is not None and scene_frames is not None:
            outside = [f for f in requested if f not in set(scene_frames)]
            if outside:
                issues.append(Issue("bad_frames", f"frames {outside[:5]} are outside the scene's frames "
                                                  f"{graph.frames!r}", field="frames"))
    if targets is None:
        consumers = {src.split(".")[0] for spec in graph.nodes.values() for src in spec.inputs.values()}
        targets = [n for n in graph.nodes if n not in consumers]
    target_nodes, asked = _targets(graph, types, list(targets), issues)
    if issues:
        raise GraphInvalid(issues)
    nodes = {name: ResolvedNode(name, spec, types[name], instances[name], params_ok[name])
             for name, spec in graph.nodes.items()}
    return ResolvedGraph(graph, nodes, scene_frames, requested, target_nodes,
                         {n: tuple(o.name for o in types[n].outputs if o.name in asked[n] or not asked[n])
                          for n in target_nodes})


def _targets(graph: Graph, types: dict, targets: list[str], issues: list[Issue]):
    """Targets as written ("node" or "node.output") → (target nodes in order, {node: outputs named,
    empty when the node was named alone: all of them})."""
    nodes: list[str] = []
    asked: dict[str, set[str] | None] = {}
    for t in targets:
        node, _, output = t.partition(".") if isinstance(t, str) else (t, "", "")
        if node not in graph.nodes:
            issues.append(Issue("unknown_target", f"target '{t}' is not a node of the scene", node))
            continue
        if output and node in types and types[node].output(output) is None:
            known = ", ".join(o.name for o in types[node].outputs)
            issues.append(Issue("unknown_target", f"target '{t}': {types[node].name()} has no output "
                                                  f"'{output}' (outputs: {known})", node))
            continue
        if node not in asked:
            nodes.append(node)
            asked[node] = set()
        if asked[node] is not None:
            asked[node] = asked[node] | {output} if output else None      # None: the whole node
    return nodes, {n: a or set() for n, a in asked.items()}


def validate(graph: Graph, registry: Registry | None = None, targets: list[str] | None = None,
             frames: str | int | list[int] | None = None, skip_checks=frozenset()) -> list[Issue]:
    """Every problem of the scene (and of the targets and frames asked for); [] when it is valid."""
    try:
        resolve(graph, registry, targets, frames, skip_checks)
    except GraphInvalid as e:
        return e.issues
    return []

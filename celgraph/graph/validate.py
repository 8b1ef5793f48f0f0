"""Scene validation: every problem at once, each with a stable code and the node it concerns."""
from __future__ import annotations

import networkx as nx

from ..engine.errors import Issue
from ..engine.node import CheckContext, NodeType, Params
from ..engine.params import ParamError
from ..engine.registry import Registry, registry as default_registry
from .frames import FrameRangeError, parse_frames
from .scene import Graph, OutputRef


def normalize_params(node_type: type[NodeType], raw: dict, node: str | None = None) -> tuple[Params, list[Issue]]:
    """Raw scene params → checked values with defaults filled in, plus the problems found."""
    issues: list[Issue] = []
    out = Params()
    for name in raw:
        if node_type.param(name) is None:
            known = ", ".join(p.name for p in node_type.params) or "none"
            issues.append(Issue("unknown_param", f"{node_type.name()} has no param '{name}' (params: {known})",
                                node, name))
    for p in node_type.params:
        value = raw.get(p.name, p.default)
        try:
            out[p.name] = p.check(value)
        except ParamError as e:
            issues.append(Issue(e.code, str(e), node, p.name))
    return out, issues


def validate(graph: Graph, registry: Registry = default_registry, skip_checks=frozenset()) -> list[Issue]:
    """Every problem of the scene. `skip_checks`: nodes whose own check (files exist, ...) is not run
    (the service's refused paths: a client must not learn whether they exist)."""
    issues: list[Issue] = []
    if graph.version != 1:
        issues.append(Issue("bad_version", f"scene format version {graph.version!r} is not supported"))
    frames: list[int] | None = None
    try:
        frames = parse_frames(graph.frames)
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

    if frames is not None:
        for name, params in params_ok.items():
            if name in skip_checks:
                continue
            ctx = CheckContext(name, frames, graph.base_dir)
            issues += types[name]().check(params, ctx)
    return issues

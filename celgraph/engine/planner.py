"""The planner: requested outputs → (node, frame) tasks with cache keys → a networkx DAG of the
tasks that must actually run (cache hits dropped).

Per-frame nodes give one task per frame; clip-scope nodes one task for the scene's whole frame
range, whatever chunk of frames was requested (so farm chunks share it). A task's key is hashed
from its node type, version, normalised params, the keys of the input values it reads, its frame
and the node's fingerprint of outside files — never from node names.
"""
from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import networkx as nx

from .errors import GraphInvalid, Issue, NodeFailed
from .hashing import node_signature, task_key_from
from .node import Context, NodeType, Params

if TYPE_CHECKING:  # graph imports engine, not the other way round at import time
    from ..graph.scene import Graph

TaskId = tuple[str, "int | None"]      # (node name, frame) — frame None for a clip task


@dataclass
class InputRead:
    """How one input of a task is assembled: which upstream task/output at which frames."""
    name: str
    refs: list[tuple[TaskId, str, int]]   # (upstream task, output, frame)
    per_frame: bool                       # True: one value; False: {frame: value}


@dataclass
class Task:
    id: TaskId
    node: str
    type: NodeType
    params: Params
    frame: int | None
    key: str
    reads: list[InputRead]
    deps: set[TaskId] = field(default_factory=set)
    cached: bool = False

    @property
    def label(self) -> str:
        return f"{self.node}@{'clip' if self.frame is None else self.frame}"


@dataclass
class Plan:
    graph: "Graph"
    frames: list[int]                 # the scene's frames (clip range)
    requested: list[int]              # frames asked for
    targets: list[str]
    tasks: dict[TaskId, Task]         # every task reachable from the targets
    dag: nx.DiGraph                   # the tasks to compute, edges upstream → downstream
    target_tasks: list[TaskId]
    cached: list[TaskId]              # cache hits where the walk stopped

    @property
    def n_compute(self) -> int:
        return self.dag.number_of_nodes()


def _context(graph, name, node_type, params, frame, frames, **kw) -> Context:
    return Context(name, node_type, params, frame, frames, graph.base_dir, **kw)


def make_plan(graph: "Graph", targets: list[str] | None = None, frames: list[int] | None = None,
              is_cached=None, registry=None) -> Plan:
    """Expand the graph into tasks. `is_cached(task) -> bool` decides cache hits (None: no cache)."""
    # Planning allocates many small objects and no reference cycles: keep the cyclic garbage
    # collector out of it (it otherwise rescans the run's earlier allocations, doubling the time).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _make_plan(graph, targets, frames, is_cached, registry)
    finally:
        if enabled:
            gc.enable()


def _make_plan(graph, targets, frames, is_cached, registry) -> Plan:
    from ..graph.frames import parse_frames
    from ..graph.validate import normalize_params, validate
    from .registry import registry as default_registry
    registry = registry or default_registry

    issues = validate(graph, registry)
    if issues:
        raise GraphInvalid(issues)
    scene_frames = parse_frames(graph.frames)
    requested = scene_frames if frames is None else sorted(set(frames))
    outside = [f for f in requested if f not in set(scene_frames)]
    if outside:
        raise GraphInvalid([Issue("bad_frames", f"frames {outside[:5]} are outside the scene's frames "
                                                f"{graph.frames!r}", field="frames")])
    consumers = {src.split(".")[0] for spec in graph.nodes.values() for src in spec.inputs.values()}
    if targets is None:
        targets = [n for n in graph.nodes if n not in consumers]
    bad = [t for t in targets if t not in graph.nodes]
    if bad:
        raise GraphInvalid([Issue("unknown_target", f"target '{t}' is not a node of the scene", t) for t in bad])

    instances: dict[str, tuple[NodeType, Params]] = {}
    for name, spec in graph.nodes.items():
        t = registry.get(spec.type)
        instances[name] = (t(), normalize_params(t, spec.params, name)[0])

    tasks: dict[TaskId, Task] = {}
    signatures = {name: node_signature(type(inst).id, type(inst).version,
                                       {p.name: params[p.name] for p in type(inst).params if p.hashed})
                  for name, (inst, params) in instances.items()}
    # only call the hooks a node type actually overrides (planning is on the hot path of re-runs)
    has_needed = {n: type(i).frames_needed is not NodeType.frames_needed for n, (i, _) in instances.items()}
    has_fp = {n: type(i).fingerprint is not NodeType.fingerprint for n, (i, _) in instances.items()}

    def task_id(name: str, frame: int) -> TaskId:
        return (name, None) if instances[name][0].scope == "clip" else (name, frame)

    def expand(tid: TaskId) -> Task:
        if tid in tasks:
            return tasks[tid]
        name, frame = tid
        inst, params = instances[name]
        spec = graph.nodes[name]
        needed, fingerprint = {}, None
        if (has_needed[name] and frame is not None) or has_fp[name]:
            ctx = _context(graph, name, inst, params, frame, scene_frames)
            try:
                if has_needed[name] and frame is not None:
                    needed = inst.frames_needed(ctx)
                if has_fp[name]:
                    fingerprint = inst.fingerprint(ctx)
            except Exception as e:
                raise NodeFailed(name, type(inst).id, frame, e) from e
        reads, key_inputs, deps = [], {}, set()
        for port in type(inst).inputs:
            link = spec.inputs.get(port.name)
            if link is None:
                key_inputs[port.name] = None
                continue
            up, output = link.rsplit(".", 1)
            if frame is None:
                read_frames, per_frame = scene_frames, False
            elif port.name in needed:
                read_frames, per_frame = list(needed[port.name]), False
                bad_f = [f for f in read_frames if f not in scene_frames]
                if bad_f:
                    raise NodeFailed(name, type(inst).id, frame, ValueError(
                        f"input '{port.name}' asks for frames {bad_f} outside the scene's frames"))
            else:
                read_frames, per_frame = [frame], True
            refs = []
            for f in read_frames:
                up_task = expand(task_id(up, f))
                refs.append((up_task.id, output, f))
                deps.add(up_task.id)
            reads.append(InputRead(port.name, refs, per_frame))
            key_inputs[port.name] = [(tasks[r[0]].key, r[1], r[2]) for r in refs]
        key = task_key_from(signatures[name], key_inputs, frame if frame is not None else scene_frames,
                            fingerprint)
        task = Task(tid, name, inst, params, frame, key, reads, deps)
        tasks[tid] = task
        return task

    target_ids: list[TaskId] = []
    for name in targets:
        for f in requested:
            tid = expand(task_id(name, f)).id
            if tid not in target_ids:
                target_ids.append(tid)

    # Walk down from the targets; stop at cache hits.
    dag = nx.DiGraph()
    cached: list[TaskId] = []
    seen: set[TaskId] = set()
    stack = list(target_ids)
    while stack:
        tid = stack.pop()
        if tid in seen:
            continue
        seen.add(tid)
        task = tasks[tid]
        if is_cached is not None and is_cached(task):
            task.cached = True
            cached.append(tid)
            continue
        dag.add_node(tid)
        stack.extend(task.deps)
    for tid in list(dag.nodes):
        for dep in tasks[tid].deps:
            if dep in dag:
                dag.add_edge(dep, tid)
    return Plan(graph, scene_frames, requested, list(targets), tasks, dag, target_ids, cached)


def farm_jobs(graph: "Graph", scene_path: str, chunk: int, targets: list[str] | None = None,
              frames: list[int] | None = None, registry=None, cache_dir: str | None = None) -> list[dict]:
    """Jobs for a render farm (OpenCue, Deadline, Tractor): one job computing the clip-scope nodes
    the targets need (once, for the whole range), then per-frame chunks of `chunk` frames that
    depend on it. Chunks are safe to run in parallel on one shared cache folder."""
    from ..graph.frames import format_frames, parse_frames
    from .registry import registry as default_registry
    registry = registry or default_registry
    plan = make_plan(graph, targets, frames, registry=registry)
    clip_nodes = sorted({t.node for t in plan.tasks.values() if t.frame is None})
    frames = plan.requested
    per_frame_targets = [n for n in plan.targets if n not in clip_nodes]
    base = ["graph", "run", scene_path] + (["--cache-dir", str(cache_dir)] if cache_dir else [])
    jobs: list[dict] = []
    if clip_nodes:
        jobs.append({"id": "clip", "frames": format_frames(parse_frames(graph.frames)),
                     "command": base + ["--targets", ",".join(clip_nodes), "--frames", str(frames[0])],
                     "depends": [], "note": "clip-scope nodes: whole frame range, run once"})
    if per_frame_targets:
        for i in range(0, len(frames), chunk):
            part = frames[i:i + chunk]
            spec = format_frames(part)
            jobs.append({"id": f"frames-{spec}", "frames": spec,
                         "command": base + ["--frames", spec, "--targets", ",".join(per_frame_targets)],
                         "depends": ["clip"] if clip_nodes else []})
    return jobs

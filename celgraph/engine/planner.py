"""The planner: a resolved graph's requested outputs → (node, frame) tasks with cache keys → a
networkx DAG of the tasks that must actually run (cache hits dropped), each knowing which of its
outputs are wanted (read by a task that runs, or asked for by the request).

Per-frame nodes give one task per frame; clip-scope nodes one task for the scene's whole frame
range, whatever chunk of frames was requested (so farm chunks share it). A task's key is hashed
from its node type, version, normalised params, the keys of the input values it reads, its frame
and the node's fingerprint of outside files — never from node names.

The planner takes a `ResolvedGraph` (graph/validate.py `resolve`): the scene is already checked,
its node types looked up and its params normalised, once.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import networkx as nx

from ..core.errors import NodeFailed
from ..core.hashing import node_signature, task_key_from
from ..core.node import Context, NodeType, Params

if TYPE_CHECKING:       # annotations only: the planner takes a resolved graph, it never builds one
    from ..graph.validate import ResolvedGraph

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
    wants: set[str] = field(default_factory=set)    # outputs someone reads: consumers that run, the request

    @property
    def label(self) -> str:
        return f"{self.node}@{'clip' if self.frame is None else self.frame}"


@dataclass
class Plan:
    resolved: "ResolvedGraph"
    tasks: dict[TaskId, Task]         # every task reachable from the targets
    dag: nx.DiGraph                   # the tasks to compute, edges upstream → downstream
    target_tasks: list[TaskId]
    cached: list[TaskId]              # cache hits where the walk stopped

    @property
    def graph(self):
        return self.resolved.graph

    @property
    def frames(self) -> list[int]:
        """The scene's frames (the clip range)."""
        return self.resolved.frames

    @property
    def requested(self) -> list[int]:
        return self.resolved.requested

    @property
    def targets(self) -> list[str]:
        return self.resolved.targets

    @property
    def base_dir(self) -> Path:
        return self.resolved.base_dir

    @property
    def n_compute(self) -> int:
        return self.dag.number_of_nodes()



def hook_context(resolved: "ResolvedGraph", node: str, frame: int | None) -> Context:
    """The context of a node's planning hooks (frames_needed, fingerprint, verify). Running tasks
    get theirs from their TaskSpec (engine/task.py), which holds the same facts plus the caches."""
    r = resolved.nodes[node]
    return Context(node, r.node, r.params, frame, resolved.frames, resolved.base_dir)


def make_plan(resolved: "ResolvedGraph", is_cached=None) -> Plan:
    """Expand a resolved graph into tasks. `is_cached(task) -> bool` decides cache hits (None: no cache)."""
    if not hasattr(resolved, "requested"):
        raise TypeError("make_plan takes a ResolvedGraph (celgraph.graph.resolve), not "
                        f"{type(resolved).__name__}")
    with gc_paused():
        return _make_plan(resolved, is_cached)


@contextmanager
def gc_paused():
    """Planning (and resolving) allocates many small objects and no reference cycles: keep the
    cyclic garbage collector out of it (it otherwise rescans the run's earlier allocations,
    doubling the time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _make_plan(resolved: "ResolvedGraph", is_cached) -> Plan:
    graph, scene_frames = resolved.graph, resolved.frames
    instances = {name: (r.node, r.params) for name, r in resolved.nodes.items()}
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
            ctx = hook_context(resolved, name, frame)
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
    for name in resolved.targets:
        for f in resolved.requested:
            tid = expand(task_id(name, f)).id
            if tid not in target_ids:
                target_ids.append(tid)

    # Walk down from the targets, consumers before what they read (`tasks` holds each task after
    # its inputs: reversed, it is in that order), so a task's wanted outputs are complete when it is
    # reached: the request's outputs of a target, the outputs that the tasks which will run read.
    # Stop at cache hits: an entry holding every wanted output.
    for tid in target_ids:
        tasks[tid].wants.update(resolved.outputs[tid[0]])
    dag = nx.DiGraph()
    cached: list[TaskId] = []
    for task in reversed(tasks.values()):
        if not task.wants:
            continue                    # nothing that runs reads it (or it lies behind a cache hit)
        if is_cached is not None and is_cached(task):
            task.cached = True
            cached.append(task.id)
            continue
        dag.add_node(task.id)
        for read in task.reads:
            for up, output, _f in read.refs:
                tasks[up].wants.add(output)
    for tid in list(dag.nodes):
        for dep in tasks[tid].deps:
            if dep in dag:
                dag.add_edge(dep, tid)
    return Plan(resolved, tasks, dag, target_ids, cached)

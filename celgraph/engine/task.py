"""Running one task: the part every executor shares (local threads, Dask workers).

A `TaskSpec` is everything a worker needs to compute a task — plain data, small and picklable:
node type id, params, frame, the scene's frames and folder, its key, and for each input the keys
of the upstream values it reads. Values themselves never travel in it: `run_task` loads them by
key (from the run's memory, the RAM cache or the shared disk store) and stores its result there.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .cache import freeze
from ..core.errors import Cancelled, CelgraphError, NodeFailed
from ..core.node import Context, Params
from ..core.types import PortTypeError


class CacheCheckFailed(CelgraphError):
    """Check mode: a recomputed value differs from the cached one — a hashing bug."""


@dataclass(frozen=True)
class Read:
    """One input: (upstream key, output, frame, upstream is a clip task) per frame read."""
    name: str
    refs: tuple[tuple[str, str, int, bool], ...]
    per_frame: bool


@dataclass(frozen=True)
class TaskSpec:
    node: str
    type_id: str
    params: dict
    frame: int | None
    frames: tuple[int, ...]
    base_dir: str
    key: str
    reads: tuple[Read, ...]
    use_cache: bool = True
    check: bool = False
    wants: tuple[str, ...] = ()           # the outputs someone reads (empty: all of them)

    @property
    def label(self) -> str:
        return f"{self.node}@{'clip' if self.frame is None else self.frame}"


def spec_of(plan, task, use_cache: bool = True, check: bool = False) -> TaskSpec:
    reads = tuple(Read(r.name, tuple((plan.tasks[up].key, out, f, up[1] is None) for up, out, f in r.refs),
                       r.per_frame) for r in task.reads)
    wants = tuple(o.name for o in type(task.type).outputs if o.name in task.wants)
    return TaskSpec(task.node, type(task.type).id, dict(task.params), task.frame, tuple(plan.frames),
                    str(plan.base_dir), task.key, reads, use_cache, check, wants)


def device_for(pref: str) -> str:
    if pref == "cpu":
        return "cpu"
    import torch
    if torch.cuda.is_available():
        return "cuda"
    if pref == "cuda":
        raise RuntimeError("this node needs a CUDA GPU and none is available")
    return "cpu"


_torch_pool = ThreadPoolExecutor(1, thread_name_prefix="celgraph-torch")    # its thread starts on first use


def on_torch_thread(fn: Callable, *args, **kwargs):
    """Call fn on the process's one torch thread and return its result (or raise its error).

    Why one thread: measured on 2 cores, RAFT-small over a clip took 25-30 % longer per pass when
    two engine workers called torch than with one, even with the passes strictly one at a time.
    The likely cause: torch's CPU kernels run on OpenMP, libgomp gives every calling thread its
    own team of helper threads, and with more OpenMP threads than cores it waits passively between
    the thousands of small parallel regions of a pass. So every torch compute runs here. This also
    serialises them, which costs nothing on the CPU (one pass already uses every core) and on a
    GPU keeps two passes from competing for its memory."""
    if threading.current_thread().name.startswith("celgraph-torch"):
        return fn(*args, **kwargs)          # already here (a node computing through another)
    return _torch_pool.submit(fn, *args, **kwargs).result()


def run_task(engine, spec: TaskSpec, load: Callable[[str, tuple[str, ...]], dict | None],
             emit: Callable[..., Any], stopping: Callable[[], bool], node_type=None) -> tuple[dict, float, float]:
    """Compute one task and store its result. Returns (outputs, compute seconds, store seconds).

    `node_type`: the resolved type where the plan is at hand (local threads); a Dask worker has
    only the spec and looks the type up in its own registry. Raises NodeFailed (naming node, type
    and frame) on any error in the node, Cancelled when the run is stopping. A failed task stores
    nothing. `load(key, outputs)`: a stored value holding those outputs, or None.

    The node learns which outputs are wanted (`ctx.wants`) and may leave the others out; what it
    returns is stored (an entry with some of the task's outputs: see DiskStore.put)."""
    node_type = node_type or engine.registry.get(spec.type_id)
    if node_type is None:
        raise NodeFailed(spec.node, spec.type_id, spec.frame,
                         LookupError(f"node type {spec.type_id} is not installed here"))
    ident = dict(node=spec.node, type=spec.type_id, frame=spec.frame)
    emit("task_started", key=spec.key, **ident)
    t0 = time.perf_counter()
    try:
        ctx = Context(spec.node, node_type(), Params(spec.params), spec.frame, list(spec.frames),
                      Path(spec.base_dir), objects=engine.objects,
                      device=lambda: device_for(node_type.device),
                      on_progress=lambda p, m: emit("task_progress", progress=p, message=m, **ident),
                      cancelled=stopping,
                      input_keys={r.name: {f: f"{k}:{out}:{f}" for k, out, f, _ in r.refs} for r in spec.reads},
                      memo=lambda parts, fn, owner=None, ram=True: engine.memo(
                          owner or node_type, parts, fn, use_cache=spec.use_cache and not spec.check, ram=ram),
                      wants=spec.wants or None)
        inputs = _inputs(spec, node_type, load)
        loaded = time.perf_counter()

        def compute():              # timed where it runs: a wait for the torch thread is not compute
            ctx.check_cancelled()   # (and the run may have stopped during that wait)
            t = time.perf_counter()
            return ctx.type.compute(ctx, **inputs), time.perf_counter() - t
        raw, seconds = on_torch_thread(compute) if ctx.type.uses_torch(ctx.params) else compute()
        seconds += loaded - t0
        value = _check_outputs(spec, node_type, raw)
    except Cancelled:
        raise
    except NodeFailed:
        raise
    except Exception as e:
        raise NodeFailed(spec.node, spec.type_id, spec.frame, e) from e
    if spec.check and node_type.deterministic:
        cached = engine.store.get(spec.key) if engine.store is not None else None
        if cached is not None and not _equal({k: cached[k] for k in value if k in cached},
                                             {k: value[k] for k in value if k in cached}):
            raise NodeFailed(spec.node, spec.type_id, spec.frame, CacheCheckFailed(
                f"check: {spec.label} recomputed differs from its cache entry {spec.key[:12]} — the node's "
                "hash misses something it depends on"))
    t1 = time.perf_counter()
    if spec.use_cache and not spec.check:
        engine.keep(spec.key, value, {"type": spec.type_id, "version": node_type.version, "node": spec.node,
                                      "params": spec.params, "frame": spec.frame},
                    partial=len(value) < len(node_type.outputs), replace=node_type.side_effect)
    stored = time.perf_counter() - t1
    emit("task_finished", key=spec.key, seconds=seconds, **ident)
    return value, seconds, stored


def _inputs(spec: TaskSpec, node_type, load) -> dict[str, Any]:
    out: dict[str, Any] = {port.name: None for port in node_type.inputs}
    for read in spec.reads:
        vals = {}
        for key, output, f, from_clip in read.refs:
            outputs = load(key, (output,))
            if outputs is None:
                raise CelgraphError(f"the cache entry {key[:12]} that {spec.label} reads vanished during the run "
                                    "(cache cleared by another process?); run again")
            value = outputs[output]
            vals[f] = value[f] if from_clip else value
        out[read.name] = next(iter(vals.values())) if read.per_frame else vals
    return out


def _check_outputs(spec: TaskSpec, node_type, raw: Any) -> dict:
    """The outputs a compute returned, checked and frozen: every wanted one (ctx.wants), and any
    others it made anyway (they are stored too)."""
    names = [o.name for o in node_type.outputs]
    wanted = spec.wants or names
    if not isinstance(raw, dict) or not set(wanted) <= set(raw) or not set(raw) <= set(names):
        if len(names) == 1 and not (isinstance(raw, dict) and names[0] in raw):
            raw = {names[0]: raw}
        else:
            got = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
            raise TypeError(f"compute() must return outputs {names}" + (
                f" (at least the wanted {list(wanted)})" if len(wanted) < len(names) else "") + f", got {got}")
    out = {}
    for port in node_type.outputs:
        if port.name not in raw:
            continue
        v = raw[port.name]
        try:
            if spec.frame is None:
                if not isinstance(v, dict) or set(v) != set(spec.frames):
                    raise PortTypeError(f"a clip node must return {{frame: value}} for frames "
                                        f"{spec.frames[0]}..{spec.frames[-1]}")
                out[port.name] = {f: freeze(port.type.coerce(v[f])) for f in spec.frames}
            else:
                out[port.name] = freeze(port.type.coerce(v))
        except PortTypeError as e:
            raise TypeError(f"output '{port.name}': {e}") from None
    return out


def _equal(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and set(a) == set(b) and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
    return a == b

"""The runtime: an Engine owns the caches and runs plans on an executor.

The CLI, the Python API (`Graph.run` / `Graph.evaluate`) and the gRPC service all call
`Engine.run`, so none has features the others lack.
"""
from __future__ import annotations

import heapq
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import Cancelled, CelgraphError, GraphInvalid, NodeFailed
from ..core.hashing import canonical_json, sha256_text
from ..core.registry import registry as default_registry
from ..graph.frames import parse_frames
from ..graph.scene import OutputRef
from ..graph.validate import ResolvedGraph, resolve
from .cache import DiskStore, ObjectCache, RamCache, default_cache_dir, freeze
from .events import EventBus, Listener
from .planner import Plan, Task, TaskId, gc_paused, hook_context, make_plan
from . import workerenv
from .task import CacheCheckFailed, run_task, spec_of  # noqa: F401 (CacheCheckFailed re-exported)


class CancelToken:
    """Set it (from any thread, or Ctrl-C) to stop a run between tasks."""

    def __init__(self):
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass
class RunResult:
    status: str                                    # succeeded | failed | cancelled | invalid
    plan: Plan | None                              # None when the scene was invalid
    computed: int = 0
    cached: int = 0
    seconds: float = 0.0
    compute_seconds: float = 0.0
    store_seconds: float = 0.0                     # time spent writing results to the disk store
    error: CelgraphError | None = None
    _load: Any = field(default=None, repr=False)     # key → outputs (this run's memory, then the caches)

    def value(self, node: str, output: str, frame: int | None = None):
        """A target's output at a frame (read-only), from this run or the cache."""
        if self.status != "succeeded":
            raise CelgraphError(f"the run {self.status}; it has no values") from self.error
        task = self.plan.tasks[(node, None) if (node, None) in self.plan.tasks else (node, frame)]
        outputs = self._load(task.key, (output,))
        if outputs is None:
            raise CelgraphError(f"{task.label}: output '{output}' is not in memory or in the cache" + (
                "" if output in task.wants else f" (this run did not ask for it: target '{node}' asks for "
                                                f"every output, '{node}.{output}' for this one)"))
        v = outputs[output]
        return v[frame] if task.frame is None and frame is not None else v


class Engine:
    """Caches (objects, RAM, disk) plus planning and local execution."""

    def __init__(self, cache_dir: str | os.PathLike | None = None, use_disk_cache: bool = True,
                 ram_bytes: int = 2 << 30, registry=None):
        self.registry = registry or default_registry
        self.store = DiskStore(cache_dir or default_cache_dir()) if use_disk_cache else None
        self.ram = RamCache(ram_bytes)
        self.objects = ObjectCache()
        self._memo_locks: dict[str, threading.Lock] = {}
        self._memo_locks_lock = threading.Lock()

    # ---- cache lookups ----------------------------------------------------------------
    def _lookup(self, key: str, outputs=()):
        """A task's (or memo's) cached value holding every one of `outputs`, from RAM or the disk
        store; None when neither has all of them."""
        v = self.ram.get(key)
        if v is not None and all(o in v for o in outputs):
            return v
        if self.store is not None:
            stored = self.store.get(key)
            if stored is not None and all(o in stored for o in outputs):
                self.ram.put(key, {**v, **stored} if v is not None else stored)
                return stored
        return None

    def keep(self, key: str, value: dict, made_by: dict, partial: bool, replace: bool = False) -> None:
        """Store a computed task's outputs (`partial`: some of its outputs) in the disk store and the
        RAM cache; an entry there with other outputs of the task grows to hold the union."""
        if self.store is not None:
            self.store.put(key, value, made_by, replace=replace, partial=partial)
        old = self.ram.get(key) if partial and not replace else None
        self.ram.put(key, {**old, **value} if old is not None else value)

    def _is_cached(self, task: Task, resolved: ResolvedGraph) -> bool:
        value = self.ram.get(task.key)
        if value is None or not task.wants.issubset(value):          # not in RAM with every wanted output
            if self.store is None or not self.store.has(task.key, task.wants):
                return False
            value = self.store.get(task.key) if task.type.side_effect else True
        if task.type.side_effect:
            return value is not None and bool(task.type.verify(hook_context(resolved, task.node, task.frame), value))
        return True

    def memo(self, node_type, parts, compute, use_cache: bool = True, ram: bool = True):
        """Sub-results of a node with their own cache entries (see Context.cached). ram=False: kept in
        the disk store only (when there is one), not in the RAM cache — for checkpoints, read back only
        when a run resumes."""
        if not use_cache:
            return freeze(compute())
        key = sha256_text(canonical_json({"memo": node_type.id, "version": node_type.version,
                                          "parts": parts}))
        value = self._lookup(key)
        if value is not None:
            return value
        with self._memo_locks_lock:
            lock = self._memo_locks.setdefault(key, threading.Lock())
        with lock:      # single flight: tasks racing for one sub-result compute it once
            value = self._lookup(key)
            if value is None:
                value = freeze(compute())
                if self.store is not None:
                    self.store.put(key, value, {"type": node_type.id, "version": node_type.version,
                                                "memo": parts})
                if ram or self.store is None:
                    self.ram.put(key, value)
        with self._memo_locks_lock:
            self._memo_locks.pop(key, None)
        return value

    def resolve(self, graph, targets=None, frames=None) -> ResolvedGraph:
        """The scene checked and resolved against this engine's registry (GraphInvalid otherwise)."""
        return graph if isinstance(graph, ResolvedGraph) else resolve(graph, self.registry, targets, frames)

    def plan(self, graph, targets=None, frames=None, use_cache: bool = True) -> Plan:
        """Plan a scene (or an already resolved graph, whose own targets and frames then count)."""
        with gc_paused():
            resolved = self.resolve(graph, targets, frames)
            return make_plan(resolved, is_cached=(lambda t: self._is_cached(t, resolved)) if use_cache else None)

    # ---- running ----------------------------------------------------------------------------
    def run(self, graph, targets=None, frames=None, workers: int | None = None, use_cache: bool = True,
            on_event: Listener | list[Listener] | None = None, cancel: CancelToken | None = None,
            check: bool = False, raise_on_error: bool = True, executor=None,
            threads: int | None = None) -> RunResult:
        """Plan and execute. use_cache=False recomputes everything and leaves the caches as they
        were. check=True recomputes cache hits and compares them (a wrong hash fails the run).
        executor: None runs on this process's thread pool (`workers` threads); a DaskExecutor runs
        the tasks on a Dask cluster through the shared disk store.

        threads: the thread budget of each task on the local executor — OpenCV's, torch's and
        OpenImageIO's pools and the OpenMP/MKL/OpenBLAS variables are set to it for the run (and
        restored after). Default: the cores shared out among the tasks that run at once (cores ÷
        workers, see engine/workerenv.py), where only OpenCV's pool is set: one task alone keeps
        every pool as wide as the machine. threads=1 with workers=1 is the serial, one-core run.
        (Dask workers get theirs from the DaskExecutor.)

        `graph` is a scene or a ResolvedGraph (then its own targets and frames count). With
        raise_on_error=False every problem is reported in the result, none raised: an invalid
        scene (or targets, frames) as status "invalid" with a GraphInvalid error, a node failing
        while planning (a fingerprint reading a vanished file) as "failed"; neither emits events."""
        t0 = time.perf_counter()
        try:
            plan = self.plan(graph, targets, frames, use_cache=use_cache and not check)
        except (GraphInvalid, NodeFailed) as e:
            if raise_on_error:
                raise
            return RunResult("invalid" if isinstance(e, GraphInvalid) else "failed", None, error=e,
                             seconds=time.perf_counter() - t0)
        listeners = on_event if isinstance(on_event, list) else [on_event]
        bus = EventBus(listeners)
        cancel = cancel or CancelToken()
        bus.emit("run_started", data={"tasks": len(plan.tasks), "compute": plan.n_compute,
                                      "cached": len(plan.cached), "frames": plan.requested,
                                      "targets": plan.targets})
        for tid in plan.cached:
            t = plan.tasks[tid]
            bus.emit("task_cached", node=t.node, type=type(t.type).id, frame=t.frame, key=t.key)
        result = RunResult("succeeded", plan, cached=len(plan.cached))
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        run = _Run(self, plan, bus, cancel, workers or min(4, os.cpu_count() or 1), use_cache, check, threads)
        try:
            if executor is None:
                run.execute()
            elif plan.n_compute:
                run.computed, run.compute_seconds, run.store_seconds = executor.execute(
                    self, plan, bus, cancel, use_cache, check)
        except KeyboardInterrupt:
            cancel.cancel()
            run.drain()
            result.status, result.error = "cancelled", Cancelled("cancelled by Ctrl-C")
        except Cancelled as e:
            result.status, result.error = "cancelled", e
        except CelgraphError as e:
            result.status, result.error = "failed", e
        result.computed = run.computed
        result.compute_seconds = run.compute_seconds
        result.store_seconds = run.store_seconds
        result._load = run.load
        result.seconds = time.perf_counter() - t0
        bus.emit("run_finished", seconds=result.seconds,
                 data={"status": result.status, "computed": result.computed, "cached": result.cached,
                       **({"error": str(result.error)} if result.error else {})})
        if raise_on_error and result.error is not None:
            raise result.error
        return result

    def evaluate(self, graph, output, frame: int | None = None, **options):
        ref = OutputRef.parse(output) if isinstance(output, str) else output
        if frame is None:
            frame = parse_frames(graph.frames)[0]
        result = self.run(graph, targets=[str(ref)], frames=[frame], **options)
        return result.value(ref.node, ref.output, frame)


class _Run:
    """One execution of a plan on a thread pool. Values of computed tasks are kept (by key) until
    their last consumer has read them; the caches hold them beyond that."""

    def __init__(self, engine: Engine, plan: Plan, bus: EventBus, cancel: CancelToken, workers: int,
                 use_cache: bool, check: bool, threads: int | None = None):
        self.engine, self.plan, self.bus, self.cancel = engine, plan, bus, cancel
        self.workers, self.use_cache, self.check = max(1, workers), use_cache, check
        self.threads = threads
        self.values: dict[str, dict] = {}          # task key → outputs
        self.lock = threading.Lock()
        self.computed = 0
        self.compute_seconds = 0.0
        self.store_seconds = 0.0
        self.pool: ThreadPoolExecutor | None = None
        self.running: dict[Future, TaskId] = {}
        dag = plan.dag
        self.waiting = {t: dag.in_degree(t) for t in dag.nodes}
        self.consumers_left = {t: dag.out_degree(t) for t in dag.nodes}
        self.keep = set(plan.target_tasks)
        self.aborted = False        # a task failed: running tasks stop at their next progress point
        self.done = 0

    @property
    def stopping(self) -> bool:
        return self.aborted or self.cancel.cancelled

    def load(self, key: str, outputs=()) -> dict | None:
        v = self.values.get(key)
        return v if v is not None and all(o in v for o in outputs) else self.engine._lookup(key, outputs)

    def value_of(self, tid: TaskId) -> dict:
        task = self.plan.tasks[tid]
        v = self.load(task.key, task.wants)
        if v is None:
            raise CelgraphError(f"cache entry of {task.label} vanished (cache cleared by another process?); "
                                "run again")
        return v

    def _compute(self, task: Task) -> dict:
        spec = spec_of(self.plan, task, self.use_cache, self.check)
        value, seconds, stored = run_task(self.engine, spec, self.load, self.bus.emit, lambda: self.stopping,
                                          node_type=type(task.type))
        with self.lock:
            self.computed += 1
            self.compute_seconds += seconds
            self.store_seconds += stored
        return value

    def _release_inputs(self, tid: TaskId) -> None:
        for dep in self.plan.tasks[tid].deps:
            if dep in self.consumers_left:
                self.consumers_left[dep] -= 1
                if self.consumers_left[dep] == 0 and dep not in self.keep:
                    self.values.pop(self.plan.tasks[dep].key, None)

    def execute(self) -> None:
        dag = self.plan.dag
        if dag.number_of_nodes() == 0:
            return
        # ready tasks, lowest frame first (so a sequence fills in order and memory stays flat)
        ready = [(_order(t), t) for t, n in self.waiting.items() if n == 0]
        heapq.heapify(ready)
        busy_types: set[str] = set()
        error: BaseException | None = None
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="celgraph")
        # N task threads share the cores: OpenCV's pool gets cores ÷ N (torch keeps its setting:
        # its tasks run one at a time on the torch thread, see task.on_torch_thread); an explicit
        # `threads` budget sets every pool
        at_once = min(self.workers, dag.number_of_nodes())
        if self.threads is not None:
            threads = workerenv.apply_thread_budget(self.threads)
        elif at_once > 1:
            threads = workerenv.apply_thread_budget(workerenv.thread_budget(at_once), pools=("opencv",))
        else:
            threads = None
        try:
            while ready or self.running:
                if not self.stopping:
                    deferred = []
                    while ready and len(self.running) < self.workers:
                        item = heapq.heappop(ready)
                        tid = item[1]
                        task = self.plan.tasks[tid]
                        tname = type(task.type).id
                        if not type(task.type).thread_safe and tname in busy_types:
                            deferred.append(item)
                            continue
                        if not type(task.type).thread_safe:
                            busy_types.add(tname)
                        self.running[self.pool.submit(self._compute, task)] = tid
                    for item in deferred:
                        heapq.heappush(ready, item)
                if not self.running:
                    break
                done, _ = wait(list(self.running), return_when=FIRST_COMPLETED)
                for fut in done:
                    tid = self.running.pop(fut)
                    busy_types.discard(type(self.plan.tasks[tid].type).id)
                    # exception(), not try/result(): a Ctrl-C landing here must reach the handler
                    # below as a cancel, not be taken for this task failing
                    e = fut.exception()
                    if e is not None:
                        t = self.plan.tasks[tid]
                        if not isinstance(e, Cancelled):
                            err = e if isinstance(e, NodeFailed) else NodeFailed(t.node, type(t.type).id, t.frame, e)
                            self.bus.emit("task_failed", node=t.node, type=type(t.type).id, frame=t.frame,
                                          key=t.key, message=str(err), data=err.to_dict())
                            e = err
                        error = error or e
                        self.aborted = True
                        continue
                    self.values[self.plan.tasks[tid].key] = fut.result()
                    self.done += 1
                    self._release_inputs(tid)
                    for succ in dag.successors(tid):
                        self.waiting[succ] -= 1
                        if self.waiting[succ] == 0:
                            heapq.heappush(ready, (_order(succ), succ))
        except BaseException:           # Ctrl-C lands here, in the main thread: stop the workers too
            self.cancel.cancel()
            raise
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
            if threads is not None:
                workerenv.restore_threads(threads)
        if error is not None:
            raise error
        if self.stopping and self.done < dag.number_of_nodes():
            raise Cancelled("run cancelled; finished tasks are cached, nothing was half-written")

    def drain(self) -> None:
        """After Ctrl-C: let running tasks finish (their writes are atomic) and stop."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _order(tid: TaskId):
    return (tid[1] if tid[1] is not None else -(1 << 62), tid[0])


_engines: dict[Any, Engine] = {}
_engines_lock = threading.Lock()


def default_engine(cache_dir=None) -> Engine:
    """One Engine per cache folder per process, so the Python API reuses RAM and model caches."""
    key = str(Path(cache_dir).expanduser().resolve()) if cache_dir else str(default_cache_dir())
    with _engines_lock:
        if key not in _engines:
            _engines[key] = Engine(key)
        return _engines[key]

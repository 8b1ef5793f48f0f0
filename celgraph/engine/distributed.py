"""Run a plan on a Dask cluster (`pip install celgraph[dask]`).

Each task becomes one Dask task whose key is the engine's cache key, so Dask deduplicates what the
cache would. Values never travel as pickled arrays: a worker loads its inputs by key from the
shared content-addressed store and writes its result there; only a `TaskSpec` (small, plain data)
goes out and a few numbers come back. Hence the store must be on storage every worker sees — this
is checked before anything runs.

Events are the same as with the local executor: workers publish task_started/task_progress on a
Dask topic; the client emits task_finished/task_failed as results arrive. Cancellation sets a Dask
Event the workers poll at every `ctx.progress()` and cancels the futures not yet started. A task
whose worker dies is rescheduled by the scheduler (its `allowed-failures`); node errors are not
retried — they are deterministic.
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

from ..core.errors import Cancelled, CelgraphError, NodeFailed
from . import workerenv
from .runtime import Engine
from .task import run_task, spec_of

_worker_engines: dict[str, object] = {}
_worker_lock = threading.Lock()


def _worker_engine(store_root: str, tasks_at_once: int = 1):
    """One Engine per worker process and store: its object cache keeps models loaded between tasks.
    The first call also sets the process up for compute (see engine/workerenv.py): its thread budget
    (CELGRAPH_WORKER_THREADS, which a LocalCluster sets; else the cores shared by the worker's task
    threads) and the allocator setting Dask's nanny undid."""
    with _worker_lock:
        if not _worker_engines:
            threads = os.environ.get("CELGRAPH_WORKER_THREADS")
            workerenv.apply_thread_budget(int(threads) if threads else workerenv.thread_budget(tasks_at_once))
            workerenv.keep_freed_memory()
        if store_root not in _worker_engines:
            _worker_engines[store_root] = Engine(store_root)
        return _worker_engines[store_root]


def _probe_store(store_root: str, token: str) -> str | None:
    """Run on each worker: None if it sees the client's token file in the store and can write there."""
    root = Path(store_root)
    if not (root / "tmp" / f"probe-{token}").is_file():
        return f"cannot see {root} (or it is another folder with that name)"
    try:
        mine = root / "tmp" / f"probe-{token}-{uuid.uuid4().hex}"
        mine.write_text("ok")
        mine.unlink()
    except OSError as e:
        return f"cannot write to {root}: {e}"
    return None


def _dask_task(spec, store_root: str, run_id: str, *_deps):
    """The function Dask runs: compute one celgraph task on a worker. `_deps` only order it."""
    from distributed import Event, get_worker
    worker = get_worker()
    engine = _worker_engine(store_root, worker.state.nthreads)
    topic = f"celgraph-{run_id}"
    cancel_event = Event(f"celgraph-cancel-{run_id}")
    last_poll = [0.0, False]

    def emit(kind, **fields):
        if kind in ("task_started", "task_progress"):
            worker.log_event(topic, {"kind": kind, **fields})

    def stopping() -> bool:      # a round trip to the scheduler: at most twice a second
        now = time.monotonic()
        if now - last_poll[0] > 0.5:
            last_poll[0], last_poll[1] = now, cancel_event.is_set()
        return last_poll[1]

    _value, seconds, stored = run_task(engine, spec, engine._lookup, emit, stopping)
    return {"key": spec.key, "seconds": seconds, "stored": stored, "worker": worker.address}


class DaskExecutor:
    """Executes plans on a Dask cluster: an existing scheduler (`scheduler="tcp://host:8786"`),
    a `distributed.Client` you made, or a local cluster of `n_workers` processes."""

    def __init__(self, scheduler: str | None = None, client=None, n_workers: int | None = None,
                 gpu_resource: str = "GPU"):
        try:
            import dask
            import distributed
        except ImportError as e:  # pragma: no cover - depends on the extra being installed
            raise CelgraphError("the Dask executor needs the dask extra: pip install 'celgraph[dask]'") from e
        self.gpu_resource = gpu_resource
        self._cluster = None
        if client is not None:
            self.client = client
        elif scheduler is not None:
            self.client = distributed.Client(scheduler)
        else:
            # one task per worker process and an equal share of the cores for each (OpenCV, torch,
            # OpenMP), so N workers use the machine's cores instead of N times as many threads
            n = n_workers or 2
            budget = str(workerenv.thread_budget(n))
            env = {"CELGRAPH_WORKER_THREADS": budget, **{v: budget for v in workerenv.THREAD_VARIABLES}}
            # and no statistical profiler: it samples every thread's stack 100 times a second,
            # 1.2 % of a core per idle worker measured, more while a task holds the GIL
            with dask.config.set({"distributed.worker.profile.enabled": False}):
                self._cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1,
                                                         processes=True, dashboard_address=None, env=env)
            self.client = distributed.Client(self._cluster)

    def close(self) -> None:
        if self._cluster is not None:
            self.client.close()
            self._cluster.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- checks before running -------------------------------------------------------------
    def check_store(self, store_root: Path) -> None:
        token = uuid.uuid4().hex
        probe = store_root / "tmp" / f"probe-{token}"
        probe.write_text("celgraph")
        try:
            answers = self.client.run(_probe_store, str(store_root), token)
        finally:
            probe.unlink(missing_ok=True)
        bad = {w: why for w, why in answers.items() if why}
        if bad:
            lines = "\n".join(f"  {w}: {why}" for w, why in bad.items())
            raise CelgraphError(f"Dask workers cannot use the cache store {store_root}: values travel through "
                                f"it, so it must be on storage every worker mounts at the same path.\n{lines}")

    def _check_resources(self, plan) -> None:
        needs_gpu = [t for t in plan.dag if type(plan.tasks[t].type).device == "cuda"]
        if not needs_gpu:
            return
        workers = self.client.scheduler_info()["workers"].values()
        if not any(w.get("resources", {}).get(self.gpu_resource) for w in workers):
            node = plan.tasks[needs_gpu[0]].node
            raise CelgraphError(f"node '{node}' needs a GPU but no Dask worker advertises the "
                                f"'{self.gpu_resource}' resource (start workers with --resources {self.gpu_resource}=1)")

    # ---- running -------------------------------------------------------------------------------
    def execute(self, engine, plan, bus, cancel, use_cache: bool, check: bool):
        """Run every task of plan.dag; returns (computed, compute seconds, store seconds)."""
        import networkx as nx
        from distributed import Event, as_completed
        if engine.store is None or not use_cache:
            raise CelgraphError("the Dask executor passes values through the disk cache: it cannot run "
                                "with --no-cache")
        self.check_store(engine.store.root)
        self._check_resources(plan)
        run_id = uuid.uuid4().hex
        store_root = str(engine.store.root)
        started: set[str] = set()
        done: set[str] = set()
        lock = threading.Lock()
        by_key = {plan.tasks[t].key: plan.tasks[t] for t in plan.dag}

        def on_worker_event(event):
            _ts, msg = event
            with lock:
                key = msg.get("key")
                if msg["kind"] == "task_started":
                    if key in started or key in done:
                        return
                    started.add(key)
                elif key in done:
                    return
            fields = {k: msg[k] for k in ("node", "type", "frame", "key", "progress", "message") if k in msg}
            bus.emit(msg["kind"], **fields)

        topic = f"celgraph-{run_id}"
        self.client.subscribe_topic(topic, on_worker_event)
        cancel_event = Event(f"celgraph-cancel-{run_id}", client=self.client)
        futures = {}
        for tid in nx.topological_sort(plan.dag):
            task = plan.tasks[tid]
            deps = [futures[d] for d in plan.dag.predecessors(tid)]
            resources = {self.gpu_resource: 1} if type(task.type).device == "cuda" else None
            futures[tid] = self.client.submit(
                _dask_task, spec_of(plan, task, use_cache, check), store_root, run_id, *deps,
                key=f"celgraph-{task.key}", resources=resources, pure=False, retries=0)
        computed, compute_s, store_s = 0, 0.0, 0.0
        error: BaseException | None = None
        pending = as_completed(list(futures.values()), with_results=False)
        try:
            while True:
                if cancel.cancelled and error is None:
                    error = Cancelled("run cancelled; finished tasks are cached, nothing was half-written")
                    cancel_event.set()
                    self.client.cancel(list(futures.values()))
                    break
                batch = pending.next_batch(block=False) if pending.has_ready() else []
                if not batch:
                    if pending.is_empty():
                        break
                    time.sleep(0.01)
                    continue
                for fut in batch:
                    task = by_key[fut.key[len("celgraph-"):]]
                    ident = dict(node=task.node, type=type(task.type).id, frame=task.frame, key=task.key)
                    if fut.status == "error":
                        exc = fut.exception()
                        err = exc if isinstance(exc, (NodeFailed, Cancelled)) else \
                            NodeFailed(task.node, type(task.type).id, task.frame, exc)
                        if isinstance(err, NodeFailed):
                            bus.emit("task_failed", message=str(err), data=err.to_dict(), **ident)
                        if error is None:
                            error = err
                            cancel_event.set()
                            self.client.cancel([f for f in futures.values() if not f.done()])
                        continue
                    if fut.status == "cancelled":
                        continue
                    info = fut.result()
                    with lock:
                        first = task.key not in started
                        started.add(task.key)
                        done.add(task.key)
                    if first:
                        bus.emit("task_started", **ident)
                    bus.emit("task_finished", seconds=info["seconds"], **ident)
                    computed += 1
                    compute_s += info["seconds"]
                    store_s += info["stored"]
                if error is not None and all(f.done() for f in futures.values()):
                    break
        except KeyboardInterrupt:
            cancel_event.set()
            self.client.cancel(list(futures.values()))
            raise
        finally:
            self.client.unsubscribe_topic(topic)
            for f in futures.values():
                f.release()
        if error is not None:
            raise error
        return computed, compute_s, store_s


def executor_from_cli(kind: str, scheduler: str | None, workers: int | None) -> DaskExecutor:
    if kind == "dask":
        if not scheduler:
            raise CelgraphError("--executor dask needs --scheduler tcp://HOST:8786 "
                                "(or use --executor dask-local --workers N)")
        return DaskExecutor(scheduler=scheduler)
    return DaskExecutor(n_workers=workers or os.cpu_count() or 2)

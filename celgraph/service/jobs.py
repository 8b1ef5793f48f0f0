"""The job manager of the service: queues jobs and runs them on the shared Engine, emits their
events and recovers what a stopped server left. Nothing here knows gRPC; `server.py` maps it onto
the wire. The records and their on-disk store are `service/records.py`.

A server that starts finds records left queued or running by a server that stopped or died: they
become "interrupted" (with a final `job_finished` event), so a job never vanishes and GetJob always
answers.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from ..core.errors import CelgraphError, GraphInvalid, Issue, NodeFailed
from ..core.registry import registry as default_registry
from ..engine.runtime import CancelToken
from ..graph.frames import FrameRangeError, parse_frames
from ..graph.scene import Graph
from ..graph.validate import resolve
from .records import FINAL_EVENT, MAX_LABEL, STATES, TERMINAL, JobRecord, JobStore  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)


class JobNotFound(CelgraphError):
    def __init__(self, job_id: str):
        self.job_id = job_id
        super().__init__(f"no job {job_id!r} on this server")


class QueueFull(CelgraphError):
    """More jobs are waiting than the server accepts (`--max-queue`)."""


class ServerStopping(CelgraphError):
    """The server is shutting down and takes no new jobs."""


class Job:
    """A job in memory: its record, its events (seq 1..n, no gaps) and a condition to wait on."""

    def __init__(self, record: JobRecord, store: JobStore, events: list[dict] | None = None):
        self.record = record
        self.store = store
        self.cond = threading.Condition()
        self.cancel = CancelToken()
        self._events: list[dict] | None = events if events is not None else (
            [] if record.state not in TERMINAL else None)
        self._log = None
        self.graph = None          # the resolved scene (ResolvedGraph) while queued/running

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def terminal(self) -> bool:
        return self.record.state in TERMINAL

    def snapshot(self) -> JobRecord:
        with self.cond:
            r = replace(self.record)
            r.targets, r.outputs = list(r.targets), [dict(o) for o in r.outputs]
            r.error = dict(r.error) if r.error else None
            return r

    def _event_list(self) -> list[dict]:
        if self._events is None:        # evicted from memory (or loaded from disk): read the log
            self._events = self.store.read_events(self.id)
        return self._events

    def emit(self, kind: str, **fields) -> dict:
        """Append an event (numbered, logged, watchers woken). Thread-safe."""
        with self.cond:
            events = self._event_list()
            ev = {"seq": len(events) + 1, "kind": kind, "time": fields.pop("time", None) or time.time(),
                  **fields, "state": self.record.state}
            events.append(ev)
            self.record.last_seq = ev["seq"]
            try:
                if self._log is None:
                    self._log = self.store.open_log(self.id)
                self._log.write(json.dumps(ev, default=str) + "\n")
                self._log.flush()
            except OSError as e:   # a full disk must not stop the job; watchers still get it
                log.warning("cannot log event of job %s: %s", self.id, e)
            self.cond.notify_all()
            return ev

    def close_log(self) -> None:
        with self.cond:
            if self._log is not None:
                try:
                    self._log.close()
                except OSError:
                    pass
                self._log = None

    def drop_events(self) -> None:
        """Free the in-memory events of a finished job (the log on disk keeps them)."""
        with self.cond:
            if self.terminal and self._log is None:
                self._events = None

    def wait_events(self, after: int, timeout: float) -> tuple[list[dict], bool]:
        """Events with seq > after (waiting up to `timeout` s for one), and whether the final event
        is among those now known (so the caller can stop after sending them)."""
        with self.cond:
            if self.record.last_seq <= after and not self.terminal:
                self.cond.wait(timeout)
            # a job turns terminal and emits its final event under this lock: terminal ⇒ logged
            return self._event_list()[after:], self.terminal

    def wake(self) -> None:
        with self.cond:
            self.cond.notify_all()


def check_submission(scene_text: str, base_dir: Path, targets: list[str] | None, frames: str | None,
                     registry=None, access=None):
    """Parse and resolve what a client sent: (ResolvedGraph or None, issues). `access`: the
    FileAccess every file the scene names must keep to (service/access.py); the nodes it refuses
    are not checked further, so a client cannot learn whether a file outside exists."""
    registry = registry or default_registry
    try:
        data = json.loads(scene_text)
    except (ValueError, TypeError) as e:
        return None, [Issue("bad_scene", f"the scene is not valid JSON: {e}")]
    if "\x00" in str(base_dir):
        return None, [Issue("bad_path", "base_dir holds a NUL character", field="base_dir")]
    # a base_dir outside the allowed folders is not looked at (that would tell whether it exists):
    # the relative paths that resolve against it are refused below
    if (access is None or access.allows(base_dir)) and not base_dir.is_dir():
        return None, [Issue("file_not_found", f"base_dir {str(base_dir)!r} is not a folder on the server",
                            field="base_dir")]
    try:
        graph = Graph.from_dict(data, base_dir=base_dir)
    except GraphInvalid as e:
        return None, e.issues
    refused_issues, refused = [], set()
    if access is not None:
        try:
            scene_frames = parse_frames(graph.frames)
        except FrameRangeError:
            scene_frames = None                 # resolve reports it
        refused_issues, refused = access.check_graph(graph, scene_frames, registry)
    try:
        resolved = resolve(graph, registry, targets or None, frames or None, skip_checks=refused)
    except GraphInvalid as e:
        return None, refused_issues + e.issues
    return (None, refused_issues) if refused_issues else (resolved, [])


class JobManager:
    """Queues jobs and runs them, at most `max_jobs` at once, on one shared Engine (shared caches)."""

    KEEP_EVENTS_IN_MEMORY = 64      # finished jobs whose events stay in RAM (older ones: read the log)

    def __init__(self, engine, store: JobStore, max_jobs: int = 2, max_queue: int = 1000,
                 keep_jobs: int = 1000, base_dir: str | os.PathLike | None = None, executor=None, access=None):
        self.engine = engine
        self.access = access              # FileAccess, or None: scenes may touch any file (tests, embedding)
        self.executor = executor          # None: the engine's local threads; or a DaskExecutor
        self.store = store
        self.max_jobs = max(1, int(max_jobs))
        self.max_queue = max(1, int(max_queue))
        self.keep_jobs = max(1, int(keep_jobs))
        self.base_dir = Path(base_dir or os.getcwd()).expanduser().resolve()
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.max_jobs, thread_name_prefix="celgraph-job")
        self._with_events: deque[Job] = deque()
        self._stopping = False

    # ---- start-up ---------------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Load the records left by earlier servers; unfinished ones become "interrupted"."""
        interrupted = []
        for rec in self.store.load_all():
            if rec.state not in STATES:
                continue
            if len(rec.label or "") > MAX_LABEL:      # written before labels were bounded
                rec.label = rec.label[:MAX_LABEL]
                self.store.save(rec)
            if rec.state in TERMINAL:
                job = Job(rec, self.store)
                self._jobs[rec.id] = job
                last = self.store.last_event(rec.id)
                if last is None or last.get("kind") != FINAL_EVENT or last.get("seq") != rec.last_seq:
                    # died between saving the final record and logging the final event
                    events = self.store.read_events(rec.id)
                    if not events or events[-1]["kind"] != FINAL_EVENT:
                        self.store.rewrite_events(rec.id, events)
                        job._events = events
                        job.emit(FINAL_EVENT, data={"state": rec.state, "error": rec.error,
                                                    "outputs": len(rec.outputs)})
                        job.close_log()
                        self.store.save(job.record)
                continue
            events = self.store.read_events(rec.id)
            self.store.rewrite_events(rec.id, events)       # drop a line cut short by a crash
            job = Job(rec, self.store, events)
            self._jobs[rec.id] = job
            self._finish(job, "interrupted", {
                "code": "interrupted",
                "message": f"the server stopped while the job was {rec.state}; submit it again "
                           "(finished tasks are cached)"})
            interrupted.append(rec.id)
        self._prune()
        return interrupted

    # ---- queries -----------------------------------------------------------------------------
    def resolve_base_dir(self, base_dir: str | None) -> Path:
        if not base_dir:
            return self.base_dir
        p = Path(base_dir).expanduser()
        return (p if p.is_absolute() else self.base_dir / p).resolve()

    def validate(self, scene_text: str, base_dir: str | None = None, targets=None, frames=None) -> list[Issue]:
        return check_submission(scene_text, self.resolve_base_dir(base_dir), targets, frames,
                                self.engine.registry, self.access)[1]

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def list(self, limit: int = 0) -> list[Job]:
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda j: -j.record.created)
        return jobs[:limit] if limit > 0 else jobs

    def count(self, state: str) -> int:
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.record.state == state)

    # ---- submitting, running, cancelling --------------------------------------------------------
    def submit(self, scene_text: str, base_dir: str | None = None, targets: list[str] | None = None,
               frames: str | None = None, workers: int = 0, no_cache: bool = False, label: str = "") -> Job:
        """Validate (GraphInvalid with every issue) and queue; returns at once."""
        if self._stopping:
            raise ServerStopping("the server is shutting down")
        base = self.resolve_base_dir(base_dir)
        if label and len(label) > MAX_LABEL:
            raise GraphInvalid([Issue("bad_label", f"the label is {len(label):,} characters long; "
                                                   f"at most {MAX_LABEL} are accepted", field="label")])
        resolved, issues = check_submission(scene_text, base, targets, frames, self.engine.registry, self.access)
        if issues:
            raise GraphInvalid(issues)
        if self.count("queued") >= self.max_queue:
            raise QueueFull(f"{self.max_queue} jobs are already queued; try again later")
        rec = JobRecord(uuid.uuid4().hex, "queued", created=time.time(), targets=list(targets or []),
                        frames=frames or "", base_dir=str(base), label=label or "", workers=max(0, int(workers)),
                        no_cache=bool(no_cache), scene=scene_text)
        job = Job(rec, self.store, [])
        job.graph = resolved        # resolved once, here: the engine plans it as it is
        self.store.save(rec)
        with self._lock:
            self._jobs[rec.id] = job
        job.emit("job_queued", data={"targets": rec.targets, "frames": rec.frames, "label": rec.label})
        self._pool.submit(self._run, job)
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        with job.cond:
            if job.terminal:
                return job
            job.record.cancel_requested = True
            job.cancel.cancel()
            if job.record.state == "queued":
                self._finish(job, "cancelled", {"code": "cancelled", "message": "cancelled before it started"})
            else:
                self.store.save(job.record)
        return job

    def _run(self, job: Job) -> None:
        with job.cond:
            if job.record.state != "queued":        # cancelled or interrupted while queued
                return
            job.record.state = "running"
            job.record.started = time.time()
            self.store.save(job.record)
        rec = job.record
        try:
            if self.access is not None:     # again: a folder may have become a symlink since the submit
                refused = self.access.check_graph(job.graph.graph, job.graph.frames, self.engine.registry)[0]
                if refused:
                    raise GraphInvalid(refused)
            result = self.engine.run(job.graph, workers=rec.workers or None, use_cache=not rec.no_cache,
                                     on_event=lambda ev: self._on_engine_event(job, ev), cancel=job.cancel,
                                     raise_on_error=False,
                                     executor=self.executor if not rec.no_cache else None)
        except GraphInvalid as e:          # the allowed-roots check again at start: a path now leads outside
            self._finish(job, "failed", {"code": "graph_invalid", "message": str(e),
                                         "issues": [i.to_dict() for i in e.issues]})
        except Exception as e:             # noqa: BLE001 — a bug must not leave the job "running"
            log.exception("job %s crashed", job.id)
            self._finish(job, "failed", {"code": "internal", "message": f"{type(e).__name__}: {e}",
                                         "exception": type(e).__name__})
        else:
            if result.status == "succeeded":
                try:
                    outputs = self._outputs(result)
                except Exception as e:     # noqa: BLE001
                    log.exception("job %s: cannot list outputs", job.id)
                    self._finish(job, "failed", {"code": "internal", "message": f"listing outputs: {e}",
                                                 "exception": type(e).__name__})
                    return
                self._finish(job, "succeeded", None, outputs)
            elif result.status == "cancelled":
                if self._stopping and not rec.cancel_requested:
                    self._finish(job, "interrupted", {"code": "interrupted",
                                                      "message": "the server shut down while the job ran"})
                else:
                    self._finish(job, "cancelled", {"code": "cancelled", "message": str(result.error)})
            else:
                err = result.error
                self._finish(job, "failed", _node_failed(err) if isinstance(err, NodeFailed) else {
                    "code": "failed", "message": str(err), "exception": type(err).__name__})
        finally:
            job.graph = None

    def _on_engine_event(self, job: Job, ev) -> None:
        d = ev.to_dict()
        d.pop("seq", None)
        kind = d.pop("kind")
        if "type" in d:
            d["node_type"] = d.pop("type")
        rec = job.record
        with job.cond:
            if kind == "run_started":
                rec.tasks_total = int(ev.data.get("compute", 0))
                rec.tasks_cached = int(ev.data.get("cached", 0))
                if not rec.targets:
                    rec.targets = list(ev.data.get("targets", []))
            elif kind == "task_finished":
                rec.tasks_done += 1
            job.emit(kind, **d)

    def _outputs(self, result) -> list[dict]:
        """Where a succeeded job's target values are: files written (Write) and store entries."""
        plan = result.plan
        store = self.engine.store
        out: list[dict] = []
        for tid in plan.target_tasks:
            task = plan.tasks[tid]
            ntype = type(task.type)
            frames = [task.frame] if task.frame is not None else plan.requested
            for port in ntype.outputs:
                if port.name not in task.wants:
                    continue                         # not asked for ("node.output" targets)
                for f in frames:
                    v = result.value(task.node, port.name, f)
                    row = {"node": task.node, "output": port.name, "frame": f, "key": task.key}
                    if port.type.name == "FileRef" and isinstance(v, dict) and "path" in v:
                        out.append({**row, "kind": "file", "path": str(v["path"]),
                                    "sha256": str(v.get("sha256", "")), "bytes": int(v.get("bytes", 0))})
                        continue
                    if store is None or task.key not in store:
                        continue                     # no_cache: the value lived in memory only
                    out.append({**row, **_store_location(store, task.key, port.name,
                                                         f if task.frame is None else None)})
        return out

    def _finish(self, job: Job, state: str, error: dict | None, outputs: list[dict] | None = None) -> bool:
        """Move a job to a final state once (later calls are no-ops), log it, emit `job_finished`."""
        with job.cond:
            if job.terminal:
                return False
            rec = job.record
            rec.state = state
            rec.finished = time.time()
            rec.error = error
            rec.outputs = list(outputs or [])
            rec.last_seq += 1                   # the final event's seq, saved with the final record
            try:                                # record first: a crash before the event is repaired at start
                self.store.save(rec)
            except OSError as e:
                log.warning("cannot save job %s: %s", job.id, e)
            rec.last_seq -= 1
            job.emit(FINAL_EVENT, data={"state": state, "error": error, "outputs": len(rec.outputs)})
            job.close_log()
        with self._lock:
            self._with_events.append(job)
            evict = []
            while len(self._with_events) > self.KEEP_EVENTS_IN_MEMORY:
                evict.append(self._with_events.popleft())
        for old in evict:
            old.drop_events()
        self._prune()
        return True

    def _prune(self) -> None:
        with self._lock:
            done = sorted((j for j in self._jobs.values() if j.terminal), key=lambda j: j.record.created)
            drop = done[:max(0, len(done) - self.keep_jobs)]
            for j in drop:
                del self._jobs[j.id]
        for j in drop:
            self.store.delete(j.id)

    # ---- shutting down -----------------------------------------------------------------------------
    def shutdown(self, grace: float = 5.0) -> None:
        """Stop taking jobs; queued jobs and those still running after `grace` s become interrupted."""
        self._stopping = True
        for job in self.list():
            if job.record.state == "queued":
                self._finish(job, "interrupted", {"code": "interrupted",
                                                  "message": "the server shut down before the job started"})
            elif job.record.state == "running":
                job.cancel.cancel()
        deadline = time.monotonic() + max(0.0, grace)
        for job in self.list():
            with job.cond:
                while not job.terminal and time.monotonic() < deadline:
                    job.cond.wait(min(0.1, max(0.0, deadline - time.monotonic())))
        for job in self.list():
            if not job.terminal:
                self._finish(job, "interrupted", {"code": "interrupted",
                                                  "message": "the server shut down while the job ran"})
        self._pool.shutdown(wait=False, cancel_futures=True)


def _node_failed(e: NodeFailed) -> dict:
    return {"code": "node_failed", "message": str(e), "node": e.node, "node_type": e.type_id,
            "frame": e.frame, "exception": type(e.exc).__name__}


def _store_location(store, key: str, output: str, frame: int | None) -> dict:
    """The .npy file holding one output (at one frame, for clip tasks) in a store entry, or the entry
    folder when the value is structured (a dict of arrays)."""
    kind, path = store.locate(key, output, frame) or ("entry", store.path(key))
    try:
        size = path.stat().st_size if kind == "array" else 0
    except OSError:
        size = 0
    return {"kind": kind, "path": str(path), "sha256": "", "bytes": size}


def issues_by_node(issues: list[Issue]) -> dict[str, list[Issue]]:
    out: dict[str, list[Issue]] = {}
    for i in issues:
        out.setdefault(i.node or "", []).append(i)
    return out

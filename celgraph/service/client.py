"""The Python client of `graph serve`, for pipeline TDs (and what `graph remote` uses).

    from celgraph.service.client import Client
    with Client("gpubox:50051", token="...") as c:
        job = c.submit("shots/sh010/scene.json", frames="1-24")
        for ev in c.watch(job):              # reconnects and resumes by itself
            print(ev["seq"], ev["kind"], ev.get("node"), ev.get("frame"))
        print(c.job(job)["outputs"])

Everything comes back as plain dicts and lists (JSON-able). Errors are `ServiceError`s with a
`code` (the gRPC status name, lower case); an invalid scene raises `GraphInvalid` with every issue,
exactly as `Graph.run` does. The token defaults to `$CELGRAPH_TOKEN`.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

import grpc

from ..core.atomic import atomic_write
from ..core.errors import CelgraphError, GraphInvalid, Issue
from ..graph.scene import Graph
from ._gen import graph_service_pb2 as pb
from ._gen import graph_service_pb2_grpc as pb_grpc

DEFAULT_ADDRESS = "127.0.0.1:50051"
STATUS_DETAILS_KEY = "grpc-status-details-bin"
STATE_NAMES = {pb.JOB_STATE_UNSPECIFIED: "unspecified", pb.JOB_STATE_QUEUED: "queued",
               pb.JOB_STATE_RUNNING: "running", pb.JOB_STATE_SUCCEEDED: "succeeded",
               pb.JOB_STATE_FAILED: "failed", pb.JOB_STATE_CANCELLED: "cancelled",
               pb.JOB_STATE_INTERRUPTED: "interrupted"}
TERMINAL = {"succeeded", "failed", "cancelled", "interrupted"}
# stream errors after which a watcher reconnects and resumes from its last seq
_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN,
              grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED,
              grpc.StatusCode.RESOURCE_EXHAUSTED}


class ServiceError(CelgraphError):
    """A call to the server failed. `code`: "unavailable", "unauthenticated", "not_found", ..."""

    def __init__(self, code: str, message: str):
        self.code, self.message = code, message
        super().__init__(f"{code}: {message}")


class ServerUnavailable(ServiceError):
    """The server cannot be reached (not running, wrong address, network down)."""


def _error(e: grpc.RpcError) -> CelgraphError:
    code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
    details = (e.details() if hasattr(e, "details") else "") or str(e)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        issues = _issues_from_details(e)
        if issues:
            return GraphInvalid(issues)
    cls = ServerUnavailable if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) else ServiceError
    return cls(code.name.lower(), details)


def _issues_from_details(e: grpc.RpcError) -> list[Issue]:
    for key, value in (e.trailing_metadata() or ()) if hasattr(e, "trailing_metadata") else ():
        if key == STATUS_DETAILS_KEY:
            status = pb.RpcStatus.FromString(value)
            for d in status.details:
                resp = pb.ValidateGraphResponse()
                if d.Unpack(resp):
                    return [issue_dict_to_issue(issue_to_dict(i)) for i in resp.issues]
    return []


# ---- messages → dicts ----------------------------------------------------------------------------

def value_to_python(v, kind: str = "any") -> Any:
    which = v.WhichOneof("kind")
    if which in (None, "null_value"):
        return None
    if which == "bool_value":
        return v.bool_value
    if which == "number_value":
        n = v.number_value
        return int(n) if kind in ("int", "int_list", "choice") and float(n).is_integer() else n
    if which == "string_value":
        return v.string_value
    if which == "list_value":
        return [value_to_python(x, kind) for x in v.list_value.values]
    return {k: value_to_python(x) for k, x in v.struct_value.fields.items()}


def node_type_to_dict(m) -> dict:
    """A NodeTypeDescriptor as the dict `NodeType.describe()` gives (built from the typed fields)."""
    params = []
    for p in m.params:
        d = {"name": p.name, "kind": p.kind, "default": value_to_python(p.default_value, p.kind), "help": p.help}
        num = int if p.kind in ("int", "int_list") else float
        if p.HasField("min"):
            d["min"] = num(p.min)
        if p.HasField("max"):
            d["max"] = num(p.max)
        if p.kind == "choice":
            d["choices"] = [value_to_python(c, "choice") for c in p.choices]
        if p.file:
            d["file"] = p.file
        params.append(d)
    return {"id": m.id, "name": m.name, "version": m.version, "category": m.category, "doc": m.doc,
            "scope": m.scope, "device": m.device, "deterministic": m.deterministic, "side_effect": m.side_effect,
            "inputs": [{"name": i.name, "type": i.type, "optional": i.optional, "help": i.help,
                        "accepts": list(i.accepts)} for i in m.inputs],
            "outputs": [{"name": o.name, "type": o.type, "help": o.help} for o in m.outputs],
            "params": params}


def issue_to_dict(i) -> dict:
    return {"code": i.code, "message": i.message, "node": i.node or None, "field": i.field or None}


def issue_dict_to_issue(d: dict) -> Issue:
    return Issue(d["code"], d["message"], d.get("node"), d.get("field"))


def job_to_dict(m) -> dict:
    err = None
    if m.HasField("error"):
        e = m.error
        err = {"code": e.code, "message": e.message, "node": e.node or None, "node_type": e.node_type or None,
               "frame": e.frame if e.HasField("frame") else None, "exception": e.exception or None}
        if e.issues:
            err["issues"] = [issue_to_dict(i) for i in e.issues]
    return {"job_id": m.job_id, "state": STATE_NAMES.get(m.state, "unspecified"),
            "created": m.created_time or None, "started": m.started_time or None,
            "finished": m.finished_time or None, "targets": list(m.targets), "frames": m.frames,
            "base_dir": m.base_dir, "label": m.label, "error": err,
            "outputs": [{"node": o.node, "output": o.output, "frame": o.frame if o.HasField("frame") else None,
                         "kind": o.kind, "path": o.path, "sha256": o.sha256, "bytes": o.bytes, "key": o.key}
                        for o in m.outputs],
            "tasks_total": m.tasks_total, "tasks_done": m.tasks_done, "tasks_cached": m.tasks_cached,
            "last_seq": m.last_seq, "cancel_requested": m.cancel_requested}


def event_to_dict(m) -> dict:
    d: dict[str, Any] = {"job_id": m.job_id, "seq": m.seq, "kind": m.kind, "time": m.time,
                         "state": STATE_NAMES.get(m.state, "unspecified")}
    for name in ("node", "node_type", "key", "message"):
        if getattr(m, name):
            d[name] = getattr(m, name)
    for name in ("frame", "progress", "seconds"):
        if m.HasField(name):
            d[name] = getattr(m, name)
    if m.data_json:
        d["data"] = json.loads(m.data_json)
    return d


# ---- the client ----------------------------------------------------------------------------------

class Client:
    """A connection to `graph serve`. Thread-safe; one per thread is not needed."""

    def __init__(self, address: str = DEFAULT_ADDRESS, token: str | None = None, timeout: float = 30.0,
                 max_message_bytes: int = 64 << 20):
        self.address = address
        self.token = token if token is not None else os.environ.get("CELGRAPH_TOKEN") or None
        self.timeout = timeout
        self._channel = grpc.insecure_channel(address, options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_metadata_size", 1 << 20),
            ("grpc.initial_reconnect_backoff_ms", 50),
            ("grpc.min_reconnect_backoff_ms", 50),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ])
        self._stub = pb_grpc.GraphServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {self.token}"),) if self.token else ()

    # ---- plumbing ----
    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method: str, request, timeout: float | None = None):
        try:
            return getattr(self._stub, method)(request, timeout=timeout or self.timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise _error(e) from None

    @staticmethod
    def _scene(scene, base_dir) -> tuple[str, str]:
        """scene.json text and base_dir from a path, a Graph, a dict or JSON text."""
        if isinstance(scene, Graph):
            return scene.dumps(), base_dir or (str(scene.base_dir) if scene.path is not None else "")
        if isinstance(scene, dict):
            return json.dumps(scene), base_dir or ""
        if isinstance(scene, (str, os.PathLike)) and not str(scene).lstrip().startswith("{"):
            p = Path(scene)
            return p.read_text(encoding="utf-8"), base_dir or str(p.resolve().parent)
        return str(scene), base_dir or ""

    # ---- node types and validation ----
    def nodes(self, types: list[str] | None = None) -> list[dict]:
        """Node type descriptors (as `NodeType.describe()`): ports, params, defaults, ranges, choices."""
        resp = self._call("ListNodeTypes", pb.ListNodeTypesRequest(types=types or []))
        return [node_type_to_dict(t) for t in resp.node_types]

    def validate(self, scene, base_dir: str | None = None, targets: list[str] | None = None,
                 frames: str | None = None) -> list[dict]:
        """Every problem of a scene (empty: valid). Paths resolve on the server (see submit)."""
        text, base = self._scene(scene, base_dir)
        resp = self._call("ValidateGraph", pb.ValidateGraphRequest(scene_json=text, base_dir=base,
                                                                   targets=targets or [], frames=frames or ""))
        return [issue_to_dict(i) for i in resp.issues]

    # ---- jobs ----
    def submit(self, scene, targets: list[str] | None = None, frames: str | int | None = None,
               base_dir: str | None = None, workers: int = 0, no_cache: bool = False, label: str = "") -> str:
        """Queue a job; returns its id. `scene`: a scene.json path (relative paths in it then resolve
        against its folder, as seen by the server: use shared storage), a Graph, a dict or JSON text
        (relative paths resolve against `base_dir`, default the server's base folder). Raises
        GraphInvalid with every issue when the scene, targets or frames are wrong."""
        text, base = self._scene(scene, base_dir)
        resp = self._call("SubmitJob", pb.SubmitJobRequest(
            scene_json=text, base_dir=base, targets=targets or [], frames="" if frames is None else str(frames),
            workers=workers, no_cache=no_cache, label=label))
        return resp.job_id

    def job(self, job_id: str) -> dict:
        return job_to_dict(self._call("GetJob", pb.GetJobRequest(job_id=job_id)))

    def jobs(self, limit: int = 0) -> list[dict]:
        return [job_to_dict(j) for j in self._call("ListJobs", pb.ListJobsRequest(limit=limit)).jobs]

    def cancel(self, job_id: str) -> dict:
        return job_to_dict(self._call("CancelJob", pb.CancelJobRequest(job_id=job_id)))

    def watch(self, job_id: str, from_seq: int = 0, reconnect: bool = True, retry_for: float = 30.0,
              timeout: float | None = None) -> Iterator[dict]:
        """The job's events with seq > from_seq, in order, ending with `job_finished`.

        A dropped connection or a restarting server is retried (for up to `retry_for` s without
        progress) from the last seq received, so nothing is missed or repeated. `timeout` bounds
        the whole watch (TimeoutError)."""
        last = int(from_seq)
        deadline = None if timeout is None else time.monotonic() + timeout
        backoff, stalled_since = 0.05, time.monotonic()
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"job {job_id} did not finish within {timeout} s")
            call = self._stub.WatchJob(pb.WatchJobRequest(job_id=job_id, from_seq=last), timeout=remaining,
                                       metadata=self._metadata)
            try:
                for batch in call:
                    for m in batch.events:
                        if m.seq <= last:          # never hand out a duplicate
                            continue
                        if m.seq != last + 1:
                            raise ServiceError("data_loss", f"event {last + 1} of job {job_id} is missing "
                                                            f"(got {m.seq})")
                        last = m.seq
                        backoff, stalled_since = 0.05, time.monotonic()
                        yield event_to_dict(m)
                        if m.kind == "job_finished":
                            return
                # the stream ended without the final event (server shutting down): resume
                code = grpc.StatusCode.UNAVAILABLE
            except grpc.RpcError as e:
                code = e.code()
                if deadline is not None and code == grpc.StatusCode.DEADLINE_EXCEEDED \
                        and time.monotonic() >= deadline:
                    raise TimeoutError(f"job {job_id} did not finish within {timeout} s") from None
                if not reconnect or code not in _RETRYABLE:
                    raise _error(e) from None
            finally:
                call.cancel()
            if not reconnect or time.monotonic() - stalled_since > retry_for:
                raise ServerUnavailable(code.name.lower(), f"lost the event stream of job {job_id} at seq {last}")
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    def wait(self, job_id: str, timeout: float | None = None) -> dict:
        """Block until the job is finished; returns its final record (GetJob)."""
        for _ in self.watch(job_id, timeout=timeout):
            pass
        return self.job(job_id)

    # ---- outputs ----
    def read_output(self, path: str, job_id: str = "", dest: str | os.PathLike | None = None,
                    chunk_size: int = 0) -> bytes | dict:
        """Stream an output file (a path from job()["outputs"], or a file in the server's store).
        Returns the bytes, or with `dest` writes the file atomically and returns {path, bytes, sha256}."""
        call = self._stub.ReadOutput(pb.ReadOutputRequest(job_id=job_id, path=str(path), chunk_size=chunk_size),
                                     timeout=None, metadata=self._metadata)
        digest = hashlib.sha256()

        def receive(write) -> int:
            n, total = 0, None
            for chunk in call:
                total = chunk.total_bytes if total is None else total
                digest.update(chunk.data)
                n += len(chunk.data)
                write(chunk.data)
                if chunk.last:
                    break
            if total is not None and n != total:
                raise ServiceError("data_loss", f"{path}: got {n} of {total} bytes")
            return n
        try:
            if dest is None:
                parts: list[bytes] = []
                receive(parts.append)
                return b"".join(parts)
            with atomic_write(dest, "wb") as out:     # a broken stream leaves no file behind
                n = receive(out.write)
            return {"path": str(path), "dest": str(dest), "bytes": n, "sha256": digest.hexdigest()}
        except grpc.RpcError as e:
            raise _error(e) from None
        finally:
            call.cancel()

    # ---- cache ----
    def cache_du(self) -> dict:
        r = self._call("CacheUsage", pb.CacheUsageRequest())
        return {"root": r.root, "entries": r.entries, "bytes": r.bytes}

    def cache_ls(self, limit: int = 0) -> list[dict]:
        r = self._call("ListCache", pb.ListCacheRequest(limit=limit))
        return [{"key": e.key, "bytes": e.bytes, "last_used": e.last_used, "node_type": e.node_type or None,
                 "node": e.node or None, "frame": e.frame if e.HasField("frame") else None, "path": e.path}
                for e in r.entries]

    def cache_clear(self, force: bool = False) -> dict:
        r = self._call("ClearCache", pb.ClearCacheRequest(force=force))
        return {"root": r.root, "removed": r.removed}

    def cache_gc(self, max_bytes: int | None = None, older_than: float | None = None, force: bool = False) -> dict:
        req = pb.GcCacheRequest(force=force)
        if max_bytes is not None:
            req.max_bytes = int(max_bytes)
        if older_than is not None:
            req.older_than_seconds = float(older_than)
        r = self._call("GcCache", req)
        return {"root": r.root, "removed": r.removed, "bytes": r.bytes}

    # ---- server ----
    def server_info(self) -> dict:
        r = self._call("GetServerInfo", pb.GetServerInfoRequest())
        return {"version": r.version, "store_root": r.store_root, "state_dir": r.state_dir, "base_dir": r.base_dir,
                "max_jobs": r.max_jobs, "max_message_bytes": r.max_message_bytes,
                "token_required": r.token_required, "jobs_running": r.jobs_running, "jobs_queued": r.jobs_queued,
                "issue_codes": dict(r.issue_codes), "allowed_roots": list(r.allowed_roots)}

    def health(self, service: str = "") -> str:
        """"SERVING", "NOT_SERVING", ... from the standard grpc.health.v1 service."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc
        try:
            r = health_pb2_grpc.HealthStub(self._channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise _error(e) from None
        return health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)

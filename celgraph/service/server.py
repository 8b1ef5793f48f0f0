"""`graph serve`: the gRPC server (celgraph.v1.GraphService, plus grpc.health.v1 and reflection).

    from celgraph.service.server import GraphServer
    with GraphServer(port=0, cache_dir="cache", state_dir="state") as server:
        print(server.address)        # 127.0.0.1:<free port>
        server.wait_for_termination()

Binding anything but loopback needs a token; with a token every call must carry
`authorization: Bearer <token>` metadata (the health service excepted, so load balancers can probe).
Jobs run on one Engine shared by all clients (shared RAM and disk caches), at most `max_jobs` at a
time. See docs/service.md.
"""
from __future__ import annotations

import collections
import hmac
import ipaddress
import json
import logging
import os
import stat
import threading
from concurrent import futures
from pathlib import Path

import grpc
from google.protobuf import any_pb2, struct_pb2

from .. import __version__
from ..core.errors import CODES, CelgraphError, GraphInvalid, Issue
from ..core.types import PORT_TYPES
from ..engine import Engine
from ._gen import graph_service_pb2 as pb
from .access import FileAccess, default_shared_folder
from ._gen import graph_service_pb2_grpc as pb_grpc
from .jobs import JobManager, JobNotFound, QueueFull, ServerStopping, issues_by_node
from .records import JobStore, default_state_dir, valid_job_id

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["GraphService"].full_name     # "celgraph.v1.GraphService"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 50051
DEFAULT_MAX_MESSAGE = 64 << 20          # bytes, both directions
DEFAULT_CHUNK = 1 << 20
STATUS_DETAILS_KEY = "grpc-status-details-bin"
MAX_DETAILS_BYTES = 6 << 10             # stay under the 8 KiB metadata limit of default clients
HEALTH_PREFIX = "/grpc.health.v1.Health/"
STATES = {"queued": pb.JOB_STATE_QUEUED, "running": pb.JOB_STATE_RUNNING,
          "succeeded": pb.JOB_STATE_SUCCEEDED, "failed": pb.JOB_STATE_FAILED,
          "cancelled": pb.JOB_STATE_CANCELLED, "interrupted": pb.JOB_STATE_INTERRUPTED}


class ServiceConfigError(CelgraphError):
    """The server cannot start as configured (no token off-loopback, port taken, ...)."""


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach: localhost, 127.0.0.0/8, ::1."""
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False            # a host name, "0.0.0.0", "::" or "" : reachable from outside


def format_address(host: str, port: int) -> str:
    h = host.strip("[]")
    return f"[{h}]:{port}" if ":" in h else f"{h}:{port}"


# ---- descriptors and records → messages --------------------------------------------------------------

def to_value(v) -> struct_pb2.Value:
    """A JSON-able Python value as google.protobuf.Value."""
    out = struct_pb2.Value()
    if v is None:
        out.null_value = struct_pb2.NULL_VALUE
    elif isinstance(v, bool):
        out.bool_value = v
    elif isinstance(v, (int, float)):
        out.number_value = float(v)
    elif isinstance(v, str):
        out.string_value = v
    elif isinstance(v, (list, tuple)):
        out.list_value.values.extend(to_value(x) for x in v)
    elif isinstance(v, dict):
        for k, x in v.items():
            out.struct_value.fields[str(k)].CopyFrom(to_value(x))
    else:
        out.string_value = str(v)
    return out


def node_type_message(t) -> pb.NodeTypeDescriptor:
    d = t.describe()
    msg = pb.NodeTypeDescriptor(
        id=d["id"], name=d["name"], version=int(d["version"]), category=d["category"], doc=d["doc"],
        scope=d["scope"], device=d["device"], deterministic=bool(d["deterministic"]),
        side_effect=bool(d["side_effect"]), descriptor_json=json.dumps(d, default=str),
        inputs=[pb.InputPort(name=i["name"], type=i["type"], optional=i["optional"], help=i["help"],
                             accepts=i["accepts"]) for i in d["inputs"]],
        outputs=[pb.OutputPort(name=o["name"], type=o["type"], help=o["help"]) for o in d["outputs"]])
    for p in d["params"]:
        pm = pb.ParamDescriptor(name=p["name"], kind=p["kind"], help=p.get("help", ""),
                                default_value=to_value(p.get("default")), file=p.get("file", "") or "")
        if p.get("min") is not None:
            pm.min = float(p["min"])
        if p.get("max") is not None:
            pm.max = float(p["max"])
        pm.choices.extend(to_value(c) for c in p.get("choices", []) or [])
        msg.params.append(pm)
    return msg


def issue_message(i: Issue) -> pb.Issue:
    return pb.Issue(code=i.code, message=i.message, node=i.node or "", field=i.field or "")


def validation_message(issues: list[Issue]) -> pb.ValidateGraphResponse:
    resp = pb.ValidateGraphResponse(valid=not issues, issues=[issue_message(i) for i in issues])
    for node, items in issues_by_node(issues).items():
        resp.node_issues[node].issues.extend(issue_message(i) for i in items)
    return resp


def job_message(rec) -> pb.Job:
    msg = pb.Job(job_id=rec.id, state=STATES.get(rec.state, pb.JOB_STATE_UNSPECIFIED),
                 created_time=rec.created, started_time=rec.started, finished_time=rec.finished,
                 targets=rec.targets, frames=rec.frames, base_dir=rec.base_dir, label=rec.label,
                 tasks_total=rec.tasks_total, tasks_done=rec.tasks_done, tasks_cached=rec.tasks_cached,
                 last_seq=rec.last_seq, cancel_requested=rec.cancel_requested)
    if rec.error:
        e = rec.error
        msg.error.CopyFrom(pb.JobError(code=str(e.get("code", "")), message=str(e.get("message", "")),
                                       node=str(e.get("node") or ""), node_type=str(e.get("node_type") or ""),
                                       exception=str(e.get("exception") or ""),
                                       issues=[issue_message(Issue(**i)) for i in e.get("issues", [])]))
        if e.get("frame") is not None:
            msg.error.frame = int(e["frame"])
    for o in rec.outputs:
        om = pb.JobOutput(node=o["node"], output=o["output"], kind=o["kind"], path=o["path"],
                          sha256=o.get("sha256", ""), bytes=int(o.get("bytes", 0)), key=o.get("key", ""))
        if o.get("frame") is not None:
            om.frame = int(o["frame"])
        msg.outputs.append(om)
    return msg


def event_message(job_id: str, ev: dict) -> pb.JobEvent:
    msg = pb.JobEvent(job_id=job_id, seq=ev["seq"], kind=ev["kind"], time=float(ev.get("time", 0.0)),
                      node=ev.get("node") or "", node_type=ev.get("node_type") or "", key=ev.get("key") or "",
                      message=ev.get("message") or "", state=STATES.get(ev.get("state"), 0),
                      data_json=json.dumps(ev["data"], default=str) if ev.get("data") else "")
    if ev.get("frame") is not None:
        msg.frame = int(ev["frame"])
    if ev.get("progress") is not None:
        msg.progress = float(ev["progress"])
    if ev.get("seconds") is not None:
        msg.seconds = float(ev["seconds"])
    return msg


class _Status(collections.namedtuple("_Status", ("code", "details", "trailing_metadata")), grpc.Status):
    pass


def abort_invalid(context, issues: list[Issue]):
    """INVALID_ARGUMENT with the issues in the standard rich-status details (as many as fit)."""
    code = grpc.StatusCode.INVALID_ARGUMENT
    head = "; ".join(str(i) for i in issues[:5]) + (f"; … {len(issues) - 5} more" if len(issues) > 5 else "")
    message = f"scene is invalid ({len(issues)} problem{'s' if len(issues) != 1 else ''}): {head}"[:2000]
    kept = list(issues)
    while True:
        packed = any_pb2.Any()
        packed.Pack(validation_message(kept))
        status = pb.RpcStatus(code=code.value[0], message=message, details=[packed])
        blob = status.SerializeToString()
        if len(blob) <= MAX_DETAILS_BYTES or len(kept) <= 1:
            break
        kept = kept[:len(kept) // 2]
    context.abort_with_status(_Status(code, message, ((STATUS_DETAILS_KEY, blob),)))


# ---- auth ----------------------------------------------------------------------------------------

class TokenAuth(grpc.ServerInterceptor):
    """Refuses every call (but health checks) whose metadata lacks `authorization: Bearer <token>`."""

    def __init__(self, token: str):
        self._expected = f"Bearer {token}".encode()

    def _ok(self, metadata) -> bool:
        for k, v in metadata or ():
            if k == "authorization":
                got = v.encode() if isinstance(v, str) else bytes(v)
                return hmac.compare_digest(got, self._expected)
        return False

    def intercept_service(self, continuation, handler_call_details):
        if handler_call_details.method.startswith(HEALTH_PREFIX) or self._ok(handler_call_details.invocation_metadata):
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        if handler is None:
            return None

        def deny(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED,
                          "this server needs a token: send metadata 'authorization: Bearer <token>'")

        def deny_stream(request, context):
            deny(request, context)
            yield from ()

        kw = dict(request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(deny, **kw)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(deny_stream, **kw)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(deny, **kw)
        return grpc.stream_stream_rpc_method_handler(deny_stream, **kw)


# ---- the service -------------------------------------------------------------------------------------

class GraphServicer(pb_grpc.GraphServiceServicer):
    WATCH_POLL = 0.5            # s: how often a waiting watcher checks that its client is still there
    WATCH_BATCH = 256           # events per stream message at most (a backlog goes out in batches)

    def __init__(self, server: "GraphServer"):
        self.server = server
        self.manager: JobManager = server.manager
        self.engine = server.engine

    def _job(self, job_id: str, context):
        if not valid_job_id(job_id):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{job_id!r} is not a job id (32 hex digits)")
        try:
            return self.manager.get(job_id)
        except JobNotFound as e:
            context.abort(grpc.StatusCode.NOT_FOUND, str(e))

    def ListNodeTypes(self, request, context):
        reg = self.engine.registry
        if request.types:
            types = []
            for name in request.types:
                t = reg.get(name)
                if t is None:
                    context.abort(grpc.StatusCode.NOT_FOUND, f"no node type {name!r}")
                types.append(t)
        else:
            types = reg.all()
        return pb.ListNodeTypesResponse(
            node_types=[node_type_message(t) for t in types],
            port_types=[pb.PortTypeDescriptor(name=p.name, doc=p.doc, accepts=list(p.accepts))
                        for p in PORT_TYPES.values()])

    def ValidateGraph(self, request, context):
        issues = self.manager.validate(request.scene_json, request.base_dir, list(request.targets),
                                       request.frames or None)
        return validation_message(issues)

    def SubmitJob(self, request, context):
        try:
            job = self.manager.submit(request.scene_json, request.base_dir, list(request.targets),
                                      request.frames or None, request.workers, request.no_cache, request.label)
        except GraphInvalid as e:
            abort_invalid(context, e.issues)
        except QueueFull as e:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(e))
        except ServerStopping as e:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(e))
        return pb.SubmitJobResponse(job_id=job.id, job=job_message(job.snapshot()))

    def GetJob(self, request, context):
        return job_message(self._job(request.job_id, context).snapshot())

    def ListJobs(self, request, context):
        return pb.ListJobsResponse(jobs=[job_message(j.snapshot()) for j in self.manager.list(request.limit)])

    def CancelJob(self, request, context):
        job = self._job(request.job_id, context)
        self.manager.cancel(job.id)
        return job_message(job.snapshot())

    def WatchJob(self, request, context):
        job = self._job(request.job_id, context)
        after = int(request.from_seq)
        context.add_callback(job.wake)          # a client that goes away wakes its waiting thread
        while context.is_active():
            events, done = job.wait_events(after, self.WATCH_POLL)
            for i in range(0, len(events), self.WATCH_BATCH):
                batch = events[i:i + self.WATCH_BATCH]
                yield pb.JobEvents(events=[event_message(job.id, ev) for ev in batch])
                after = batch[-1]["seq"]
            if done and after >= job.record.last_seq:
                return
            if self.server.stopping and not events:
                context.abort(grpc.StatusCode.UNAVAILABLE, "the server is shutting down; reconnect and resume")

    # ---- outputs ----
    def _allowed(self, real: str, job) -> bool:
        objects = os.path.realpath(self.engine.store.objects)
        if os.path.commonpath([real, objects]) == objects and real != objects:
            return True
        if job is not None:
            return any(o["kind"] == "file" and o["path"] == real for o in job.record.outputs)
        return False

    def ReadOutput(self, request, context):
        job = self._job(request.job_id, context) if request.job_id else None
        path = request.path
        if not path or "\x00" in path:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "give the path of an output file")
        if request.chunk_size < 0 or request.offset < 0 or request.length < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "chunk_size, offset and length must not be negative "
                                                            "(0: the defaults)")
        p = Path(path)
        if not p.is_absolute():
            p = self.engine.store.root / p            # relative paths point into the store only
        real = os.path.realpath(p)
        if not self._allowed(real, job):
            context.abort(grpc.StatusCode.PERMISSION_DENIED,
                          f"{path!r} is not an output of this job nor a file in the server's store")
        try:
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{path!r} does not exist (any more)")
        except OSError as e:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"cannot open {path!r}: {e.strerror}")
        st = os.fstat(fd)
        opened = f"/proc/self/fd/{fd}"        # what was really opened (Linux): re-check it
        moved = os.path.exists(opened) and not self._allowed(os.path.realpath(opened), job)
        if moved or not stat.S_ISREG(st.st_mode):
            os.close(fd)
            if moved:
                context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{path!r} moved out of the store while opening")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{path!r} is not a regular file")
        with os.fdopen(fd, "rb") as f:
            total = st.st_size
            offset = max(0, int(request.offset))
            end = total if request.length <= 0 else min(total, offset + int(request.length))
            chunk = int(request.chunk_size) or DEFAULT_CHUNK
            chunk = max(1, min(chunk, self.server.max_message_bytes - 1024, 4 << 20))
            f.seek(offset)
            pos = offset
            while True:
                data = f.read(min(chunk, max(0, end - pos)))
                last = pos + len(data) >= end or not data
                yield pb.OutputChunk(data=data, offset=pos, total_bytes=total, last=last)
                pos += len(data)
                if last or not context.is_active():
                    return

    # ---- cache ----
    def CacheUsage(self, request, context):
        store = self.engine.store
        n, size = store.du()
        return pb.CacheUsageResponse(root=str(store.root), entries=n, bytes=size)

    def ListCache(self, request, context):
        store = self.engine.store
        entries = sorted(store.entries(), key=lambda e: -e.last_used)
        if request.limit > 0:
            entries = entries[:request.limit]
        out = pb.ListCacheResponse(root=str(store.root))
        for e in entries:
            made = e.meta.get("made_by", {}) or {}
            ce = pb.CacheEntry(key=e.key, bytes=e.bytes, last_used=e.last_used, node_type=str(made.get("type") or ""),
                               node=str(made.get("node") or ""), path=str(store.path(e.key)))
            if isinstance(made.get("frame"), int):
                ce.frame = made["frame"]
            out.entries.append(ce)
        return out

    def ClearCache(self, request, context):
        running = self.manager.count("running")
        if running and not request.force:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"{running} job(s) are running and read the cache; wait, or clear with force")
        store = self.engine.store
        n = store.clear()
        self.engine.ram.clear()
        return pb.CacheRemoved(root=str(store.root), removed=n)

    def GcCache(self, request, context):
        max_bytes = request.max_bytes if request.HasField("max_bytes") else None
        older = request.older_than_seconds if request.HasField("older_than_seconds") else None
        if max_bytes is None and older is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "give max_bytes and/or older_than_seconds")
        if max_bytes is not None and max_bytes <= 0 and not request.force:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"max_bytes={max_bytes} would empty the whole store, also under running jobs: "
                          "use ClearCache, or GcCache with force")
        if older is not None and older < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "older_than_seconds must not be negative")
        max_bytes = None if max_bytes is None else max(0, max_bytes)
        store = self.engine.store
        n, freed = store.gc(max_bytes, older)
        return pb.CacheRemoved(root=str(store.root), removed=n, bytes=freed)

    def GetServerInfo(self, request, context):
        s = self.server
        return pb.ServerInfo(version=__version__, store_root=str(self.engine.store.root),
                             state_dir=str(s.job_store.root), base_dir=str(self.manager.base_dir),
                             max_jobs=self.manager.max_jobs, max_message_bytes=s.max_message_bytes,
                             token_required=bool(s.token), jobs_running=self.manager.count("running"),
                             jobs_queued=self.manager.count("queued"), issue_codes=CODES,
                             allowed_roots=self.manager.access.roots if self.manager.access else [])


# ---- the server ---------------------------------------------------------------------------------------

class GraphServer:
    """GraphService + health + reflection on one port, jobs on one shared Engine."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, token: str | None = None,
                 max_jobs: int = 2, cache_dir=None, state_dir=None, base_dir=None,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE, max_queue: int = 1000, keep_jobs: int = 1000,
                 rpc_threads: int = 64, engine=None, executor=None, allow=None, ram_bytes: int = 2 << 30):
        """allow: the folders submitted scenes may read and write (default: the host plug-ins' shared
        folder and base_dir; see service/access.py). ram_bytes: the engine's RAM cache bound."""
        if not is_loopback(host) and not token:
            raise ServiceConfigError(f"refusing to listen on {host!r} without a token: anything but loopback "
                                     "needs --token (or $CELGRAPH_TOKEN)")
        self.host, self.port, self.token = host, int(port), token or None
        self.max_jobs, self.max_message_bytes = int(max_jobs), int(max_message_bytes)
        self.max_queue, self.keep_jobs, self.rpc_threads = max_queue, keep_jobs, int(rpc_threads)
        self.cache_dir, self.state_dir, self.base_dir = cache_dir, state_dir, base_dir
        self.engine = engine
        self.executor = executor
        self.allow, self.ram_bytes = allow, int(ram_bytes)
        self.manager: JobManager | None = None
        self.job_store: JobStore | None = None
        self._server: grpc.Server | None = None
        self._health = None
        self.stopping = False
        self._stopped = threading.Event()

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)

    def start(self) -> "GraphServer":
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc
        from grpc_reflection.v1alpha import reflection

        if self.engine is None:
            self.engine = Engine(self.cache_dir, ram_bytes=self.ram_bytes)
        if self.engine.store is None:
            raise ServiceConfigError("the server needs an engine with a disk store (outputs live there)")
        self.engine.registry.all()           # load node types now, not on the first request
        self.job_store = JobStore(self.state_dir or default_state_dir())
        base = Path(self.base_dir or os.getcwd()).expanduser().resolve()
        try:
            access = FileAccess(self.allow if self.allow else [default_shared_folder(), base])
        except (ValueError, OSError) as e:
            raise ServiceConfigError(f"--allow: {e}") from None
        self.manager = JobManager(self.engine, self.job_store, self.max_jobs, self.max_queue, self.keep_jobs,
                                  base, executor=self.executor, access=access)
        interrupted = self.manager.recover()
        if interrupted:
            log.warning("%d job(s) left unfinished by the previous server are now interrupted", len(interrupted))
        options = [("grpc.max_receive_message_length", self.max_message_bytes),
                   ("grpc.max_send_message_length", self.max_message_bytes),
                   ("grpc.so_reuseport", 0)]
        server = grpc.server(futures.ThreadPoolExecutor(self.rpc_threads, thread_name_prefix="celgraph-rpc"),
                             interceptors=[TokenAuth(self.token)] if self.token else [],
                             options=options, maximum_concurrent_rpcs=self.rpc_threads)
        pb_grpc.add_GraphServiceServicer_to_server(GraphServicer(self), server)
        self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            server)
        try:
            bound = server.add_insecure_port(format_address(self.host, self.port))
        except RuntimeError as e:
            self.manager.shutdown(0)
            raise ServiceConfigError(f"cannot listen on {self.address}: {e}") from None
        if not bound:
            self.manager.shutdown(0)
            raise ServiceConfigError(f"cannot listen on {self.address} (in use?)")
        self.port = bound
        server.start()
        self._server = server
        for name in ("", SERVICE_NAME):
            self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("celgraph serving on %s (store %s, state %s)", self.address, self.engine.store.root,
                 self.job_store.root)
        return self

    def stop(self, grace: float = 5.0) -> None:
        """Stop: no new jobs; running ones get `grace` s to stop (then they are interrupted);
        watchers receive each job's final event before the port closes."""
        if self._server is None or self.stopping:
            return
        self.stopping = True
        if self._health is not None:
            self._health.enter_graceful_shutdown()
        self.manager.shutdown(grace)
        self._server.stop(min(grace, 1.0)).wait(5)
        self._stopped.set()

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def __enter__(self) -> "GraphServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

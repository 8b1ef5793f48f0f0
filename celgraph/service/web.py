"""`graph serve --http PORT`: a browser page and a JSON/SSE API on the gRPC server's own job manager.

    from celgraph.service.server import GraphServer
    from celgraph.service.web import WebServer
    with GraphServer(port=0) as grpc_server, WebServer(grpc_server, port=0) as web:
        print(web.url)               # http://127.0.0.1:<port>/

No second job system: every answer reads the `JobManager` that the gRPC service uses (jobs, their
event logs, Cancel), and pictures are read through the gRPC servicer's own path policy
(`GraphServicer._allowed`, the check ReadOutput makes). The standard library's `ThreadingHTTPServer`
runs in daemon threads beside gRPC; the page is plain HTML/JS from package data (no build step, no
downloaded assets). API (JSON unless noted; see docs/service.md):

    GET  /api/info                       server version, limits, token_required
    GET  /api/nodes                      the node catalogue (NodeType.describe() of every type)
    GET  /api/jobs[?limit=N]             jobs, newest first (records without the scene, outputs counted)
    GET  /api/jobs/<id>                  one job
    POST /api/jobs/<id>/cancel           CancelJob
    GET  /api/jobs/<id>/events?from=SEQ  text/event-stream: WatchJob's events (id: = seq; resumes
                                         from `Last-Event-ID` too), then `event: end`
    GET  /api/jobs/<id>/events.json?from=SEQ   the events known now, as a list
    GET  /api/jobs/<id>/graph            the scene as a laid-out node graph (nodes, typed links)
    GET  /api/jobs/<id>/pictures         frames, and the written / preview outputs per frame
    GET  /api/jobs/<id>/thumb?node=N&output=O&frame=F[&size=S]   a PNG, downsampled on the server
    GET  /api/jobs/<id>/thumb?path=P[&size=S]                   the same, for a path ReadOutput serves
    POST /api/login                      Authorization: Bearer T → a same-site cookie for the page

Same rules as gRPC: binding anything but loopback needs a token; with a token every /api call
needs `Authorization: Bearer <token>` (or the cookie /api/login sets; EventSource and <img> cannot
send headers). Without a token, requests must name a loopback Host (a web page elsewhere cannot
reach the API by DNS rebinding), and a POST from another origin is refused.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import stat
import threading
import time
from collections import OrderedDict
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np

from ..core.errors import CelgraphError
from .jobs import JobNotFound, _store_location
from .records import valid_job_id

log = logging.getLogger(__name__)

COOKIE = "celgraph_token"
IMAGE_PORTS = {"Image", "Mask", "LineArt", "Flow", "Labels"}      # port types a thumbnail can show
THUMB_DEFAULT, THUMB_MIN, THUMB_MAX = 192, 16, 1024                # longest side, pixels
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/app.css": ("app.css", "text/css; charset=utf-8")}


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = int(status), message


# ---- layout ------------------------------------------------------------------------------------------

def layout(nodes: list[str], links: list[tuple[str, str]], sweeps: int = 4) -> dict[str, tuple[int, int]]:
    """Layered drawing of a DAG: column = longest path from a source, rows ordered by the barycentre
    of each node's neighbours in the previous column (a few sweeps, fewer crossings). → (col, row)."""
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in links:
        if a in preds and b in preds and a != b:
            preds[b].append(a)
            succs[a].append(b)
    col: dict[str, int] = {}
    visiting: set[str] = set()

    def depth(n: str) -> int:             # memoised longest path; a cycle (invalid scene) is cut
        if n in col:
            return col[n]
        if n in visiting:
            return 0
        visiting.add(n)
        col[n] = max((depth(p) + 1 for p in preds[n]), default=0)
        visiting.discard(n)
        return col[n]

    for n in nodes:
        depth(n)
    columns: dict[int, list[str]] = {}
    for n in nodes:                       # scene order first: stable for equal barycentres
        columns.setdefault(col[n], []).append(n)
    row = {n: i for c in columns.values() for i, n in enumerate(c)}
    for sweep in range(sweeps):
        order = sorted(columns) if sweep % 2 == 0 else sorted(columns, reverse=True)
        for c in order:
            nbrs = preds if sweep % 2 == 0 else succs
            def bary(n: str) -> float:
                near = [row[m] for m in nbrs[n]]
                return sum(near) / len(near) if near else row[n]
            columns[c].sort(key=bary)
            for i, n in enumerate(columns[c]):
                row[n] = i
    return {n: (col[n], row[n]) for n in nodes}


# ---- pictures ----------------------------------------------------------------------------------------

_PALETTE = (np.random.default_rng(0).random((256, 3)) * 0.7 + 0.3).astype(np.float32)


def to_rgb8(a: np.ndarray, port: str = "") -> np.ndarray:
    """Any image-like value → H×W×3 uint8 for display: flow on the colour wheel, labels in palette
    colours, masks and line art in grey, RGBA composited over a checkerboard."""
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or a.size == 0 or (a.ndim == 3 and a.shape[2] > 4):
        raise ValueError(f"not an image: shape {a.shape}")
    if port == "Labels" or (a.ndim == 2 and np.issubdtype(a.dtype, np.integer)):
        lab = a.astype(np.int64)
        rgb = np.where((lab > 0)[..., None], _PALETTE[lab % 256], 0.0)
    elif a.ndim == 3 and a.shape[2] == 2:
        from ..models.flow_viz import flow_to_color
        rgb = flow_to_color(a.astype(np.float32))
    elif a.ndim == 2:
        rgb = np.repeat(a.astype(np.float32)[..., None], 3, axis=2)
        if port == "LineArt":
            rgb = 1.0 - rgb                   # ink coverage: black lines on white
    else:
        rgb = a[:, :, :3].astype(np.float32)
        if a.shape[2] == 4:                   # premultiplied: over a grey checkerboard
            h, w = a.shape[:2]
            yy, xx = np.mgrid[0:h, 0:w]
            check = np.where(((yy // 8 + xx // 8) % 2)[..., None] == 0, 0.8, 0.6).astype(np.float32)
            rgb = rgb + (1.0 - np.clip(a[:, :, 3:4], 0, 1)) * check
    rgb = np.nan_to_num(rgb.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def thumbnail_png(pixels: np.ndarray, size: int, port: str = "") -> bytes:
    """Downsample (area average) to at most `size` px on the longest side, then encode PNG."""
    import cv2
    rgb = to_rgb8(pixels, port)
    h, w = rgb.shape[:2]
    scale = min(1.0, size / max(h, w))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def _read_pixels(fd: int, real: str) -> np.ndarray:
    """The picture in an opened file: a .npy array or any image OpenImageIO reads. The descriptor is
    what was checked, so that is what is read (through /proc/self/fd where it exists)."""
    name = f"/proc/self/fd/{fd}" if os.path.exists(f"/proc/self/fd/{fd}") else real
    if real.endswith(".npy"):
        with os.fdopen(os.dup(fd), "rb") as f:
            return np.load(f, allow_pickle=False)
    from ..nodes.io import read_image
    try:
        return read_image(name)
    except OSError:
        return read_image(real)


# ---- the server ----------------------------------------------------------------------------------------

class WebServer:
    """The page and its API, on a GraphServer's job manager, engine and path policy."""

    SSE_POLL = 0.5          # s: how often a waiting event stream checks that the server still runs
    SSE_PING = 10.0         # s: a comment line so a closed tab is noticed (the write fails)
    THUMB_CACHE = 256       # rendered thumbnails kept (keyed by file identity and size)
    MAX_STREAMS = 64        # open event streams (each holds a thread); more: 503, EventSource retries

    def __init__(self, grpc_server, host: str | None = None, port: int = 8080, token: str | None = None):
        from .server import GraphServicer, ServiceConfigError, is_loopback
        if grpc_server.manager is None:
            raise ServiceConfigError("start the gRPC server before its web page")
        self.grpc = grpc_server
        self.host = host if host is not None else grpc_server.host
        self.port = int(port)
        self.token = (token if token is not None else grpc_server.token) or None
        if not is_loopback(self.host) and not self.token:
            raise ServiceConfigError(f"refusing to serve the web page on {self.host!r} without a token: anything "
                                     "but loopback needs --token (or $CELGRAPH_TOKEN)")
        self.manager = grpc_server.manager
        self.engine = grpc_server.engine
        self.policy = GraphServicer(grpc_server)        # ReadOutput's path checks, one place
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._thumbs: OrderedDict = OrderedDict()
        self._thumb_lock = threading.Lock()        # guards the caches
        self._graphs: OrderedDict = OrderedDict()
        self._keys: OrderedDict = OrderedDict()
        self._streams = threading.BoundedSemaphore(self.MAX_STREAMS)

    @property
    def url(self) -> str:
        from .server import format_address
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else "[::1]" if self.host == "::" else self.host
        return f"http://{format_address(host, self.port)}/"

    def start(self) -> "WebServer":
        from .server import ServiceConfigError
        web = self

        class Handler(_Handler):
            server_ref = web

        cls = ThreadingHTTPServer
        if ":" in self.host.strip("[]"):
            import socket

            class cls(ThreadingHTTPServer):          # noqa: N801 — an IPv6 variant
                address_family = socket.AF_INET6
        try:
            self._httpd = cls((self.host.strip("[]"), self.port), Handler)
        except OSError as e:
            raise ServiceConfigError(f"cannot serve the web page on {self.host}:{self.port}: {e.strerror}") from None
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="celgraph-web", daemon=True)
        self._thread.start()
        log.info("celgraph web page on %s", self.url)
        return self

    def stop(self) -> None:
        """Close the port; open event streams end at their next poll."""
        self._stopping.set()
        for job in self.manager.list():
            job.wake()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "WebServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- auth ----
    def authorized(self, headers) -> bool:
        if not self.token:
            return True
        expected = f"Bearer {self.token}".encode()
        got = headers.get("Authorization")
        if got is not None:
            return hmac.compare_digest(got.encode(), expected)
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("Cookie") or "")
        except Exception:        # noqa: BLE001 — a malformed cookie header is no token
            return False
        morsel = cookie.get(COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), self.cookie_value().encode())

    def cookie_value(self) -> str:
        """What the login cookie holds: a digest of the token (any characters fit, and the token
        itself never sits in the browser's cookie jar)."""
        return hashlib.sha256(b"celgraph-web-cookie\0" + self.token.encode()).hexdigest()

    # ---- jobs ----
    def job(self, job_id: str):
        if not valid_job_id(job_id):
            raise HttpError(HTTPStatus.BAD_REQUEST, f"{job_id!r} is not a job id (32 hex digits)")
        try:
            return self.manager.get(job_id)
        except JobNotFound as e:
            raise HttpError(HTTPStatus.NOT_FOUND, str(e)) from None

    @staticmethod
    def job_dict(job, brief: bool = False) -> dict:
        """The record without the scene text, plus `progress`; `brief` (the polled queue): the
        outputs as a count, so a page polling a long queue stays cheap."""
        d = job.snapshot().to_dict()
        d.pop("scene", None)
        if brief:
            d["outputs"] = len(d["outputs"])
        total, done = d["tasks_total"], d["tasks_done"]
        d["progress"] = 1.0 if d["state"] == "succeeded" else (done / total if total else 0.0)
        return d

    def cancel(self, job_id: str) -> dict:
        job = self.job(job_id)
        self.manager.cancel(job.id)
        return self.job_dict(job)

    def graph(self, job) -> dict:
        """The submitted scene as nodes (type, params with defaults, typed ports, state-free) and
        typed links, laid out in columns. A job's scene never changes: computed once per job."""
        with self._thumb_lock:
            if job.id in self._graphs:
                return self._graphs[job.id]
        g = self._graph(job)
        with self._thumb_lock:
            self._graphs[job.id] = g
            while len(self._graphs) > self.THUMB_CACHE:
                self._graphs.popitem(last=False)
        return g

    def _graph(self, job) -> dict:
        try:
            scene = json.loads(job.record.scene or "{}")
        except ValueError:
            scene = {}
        specs = scene.get("nodes") if isinstance(scene.get("nodes"), dict) else {}
        reg = self.engine.registry
        nodes, links = [], []
        for name, spec in specs.items():
            spec = spec if isinstance(spec, dict) else {}
            t = reg.get(spec.get("type", "")) if isinstance(spec.get("type"), str) else None
            d = t.describe() if t is not None else {"id": spec.get("type"), "inputs": [], "outputs": [],
                                                    "params": [], "category": "", "scope": "frame"}
            given = spec.get("params") if isinstance(spec.get("params"), dict) else {}
            params = [{"name": p["name"], "kind": p.get("kind"), "value": given.get(p["name"], p.get("default")),
                       "default": p.get("default"), "set": p["name"] in given} for p in d["params"]]
            params += [{"name": k, "kind": "unknown", "value": v, "default": None, "set": True}
                       for k, v in given.items() if k not in {p["name"] for p in d["params"]}]
            out_types = {o["name"]: o["type"] for o in d["outputs"]}
            nodes.append({"name": name, "type": d["id"], "category": d["category"], "scope": d["scope"],
                          "inputs": d["inputs"], "outputs": d["outputs"], "params": params,
                          "image_outputs": [o for o, ty in out_types.items() if ty in IMAGE_PORTS]})
            for port, ref in (spec.get("inputs") or {}).items():
                if isinstance(ref, str) and "." in ref:
                    src, out = ref.rsplit(".", 1)
                    links.append({"from": src, "output": out, "to": name, "input": port})
        types = {n["name"]: {o["name"]: o["type"] for o in n["outputs"]} for n in nodes}
        for link in links:
            link["type"] = types.get(link["from"], {}).get(link["output"], "")
        pos = layout([n["name"] for n in nodes], [(l["from"], l["to"]) for l in links])
        for n in nodes:
            n["col"], n["row"] = pos[n["name"]]
        return {"job_id": job.id, "frames": scene.get("frames"), "nodes": nodes, "links": links}

    def _task_keys(self, job) -> dict:
        """(node, frame or None) → cache key of the task, from the job's events (read once: each
        call adds only the events logged since the last)."""
        with self._thumb_lock:
            seq, keys = self._keys.get(job.id, (0, {}))
        events, _ = job.wait_events(seq, 0)
        if events:
            keys = dict(keys)
            for ev in events:
                if ev.get("kind") in ("task_finished", "task_cached") and ev.get("key") and ev.get("node"):
                    keys[(ev["node"], ev.get("frame"))] = ev["key"]
            with self._thumb_lock:
                self._keys[job.id] = (events[-1]["seq"], keys)
                while len(self._keys) > self.THUMB_CACHE:
                    self._keys.popitem(last=False)
        return keys

    def pictures(self, job) -> dict:
        """What the frame slider shows: per frame, the job's written files and array outputs (once
        it finished) and every node's `preview` output whose task is done (live)."""
        events, _ = job.wait_events(0, 0)
        frames: list[int] = []
        for ev in events:
            if ev.get("kind") == "run_started":
                frames = [int(f) for f in (ev.get("data") or {}).get("frames", [])]
        graph = self.graph(job)
        image_outputs = {n["name"]: {o["name"]: o["type"] for o in n["outputs"]} for n in graph["nodes"]}
        items, seen = [], set()
        for o in job.snapshot().outputs:
            port = image_outputs.get(o["node"], {}).get(o["output"], "")
            if o["kind"] == "file" or (o["kind"] == "array" and port in IMAGE_PORTS):
                items.append({"node": o["node"], "output": o["output"], "frame": o.get("frame"), "kind": o["kind"],
                              "path": o["path"]})
                seen.add((o["node"], o["output"], o.get("frame")))
        keys = self._task_keys(job)
        for name, outs in image_outputs.items():
            if outs.get("preview") not in IMAGE_PORTS:
                continue
            for f in frames:
                if ((name, f) in keys or (name, None) in keys) and (name, "preview", f) not in seen:
                    items.append({"node": name, "output": "preview", "frame": f, "kind": "preview"})
        items.sort(key=lambda i: (i["frame"] if i["frame"] is not None else -1, i["node"], i["output"]))
        for i in items:
            i["src"] = (f"/api/jobs/{job.id}/thumb?node={i['node']}&output={i['output']}"
                        + (f"&frame={i['frame']}" if i["frame"] is not None else ""))
        return {"job_id": job.id, "frames": frames, "items": items}

    def resolve_output(self, job, node: str, output: str, frame: int | None) -> tuple[str, str]:
        """(path, port type) of one output value of the job: a reported output, else its task's
        store entry (live, while the job runs)."""
        ports = {n["name"]: {o["name"]: o["type"] for o in n["outputs"]} for n in self.graph(job)["nodes"]}
        if output not in ports.get(node, {}):
            raise HttpError(HTTPStatus.NOT_FOUND, f"node {node!r} of job {job.id} has no output {output!r}")
        port = ports[node][output]
        if port == "FileRef":        # a written file: draw it as what was written (ink as ink, flow as flow)
            fed = [l["type"] for l in self.graph(job)["links"] if l["to"] == node]
            port = fed[0] if len(fed) == 1 else ""
        for o in job.snapshot().outputs:
            if o["node"] == node and o["output"] == output and o.get("frame") == frame and o["kind"] in ("file", "array"):
                return o["path"], port
        keys = self._task_keys(job)
        key, clip = keys.get((node, frame)), False
        if key is None and (node, None) in keys:
            key, clip = keys[(node, None)], True
        store = self.engine.store
        if key is None or key not in store:
            raise HttpError(HTTPStatus.NOT_FOUND, f"{node}.{output} at frame {frame} is not computed (yet) "
                                                  f"in job {job.id}")
        loc = _store_location(store, key, output, frame if clip else None)
        if loc["kind"] != "array":
            raise HttpError(HTTPStatus.NOT_FOUND, f"{node}.{output} at frame {frame} is not a picture")
        return loc["path"], port

    def open_checked(self, path: str, job) -> tuple[int, str]:
        """Open a file exactly as ReadOutput does: resolve symlinks, apply the server's policy,
        open without following a last symlink, re-check what was really opened."""
        if not path or "\x00" in path:
            raise HttpError(HTTPStatus.BAD_REQUEST, "give the path of an output file")
        p = Path(path)
        if not p.is_absolute():
            p = self.engine.store.root / p
        real = os.path.realpath(p)
        if not self.policy._allowed(real, job):
            raise HttpError(HTTPStatus.FORBIDDEN,
                            f"{path!r} is not an output of this job nor a file in the server's store")
        try:
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            raise HttpError(HTTPStatus.NOT_FOUND, f"{path!r} does not exist (any more)") from None
        except OSError as e:
            raise HttpError(HTTPStatus.FORBIDDEN, f"cannot open {path!r}: {e.strerror}") from None
        opened = f"/proc/self/fd/{fd}"
        moved = os.path.exists(opened) and not self.policy._allowed(os.path.realpath(opened), job)
        if moved or not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            if moved:
                raise HttpError(HTTPStatus.FORBIDDEN, f"{path!r} moved out of the store while opening")
            raise HttpError(HTTPStatus.BAD_REQUEST, f"{path!r} is not a regular file")
        return fd, real

    def thumbnail(self, job, path: str, size: int, port: str = "") -> bytes:
        fd, real = self.open_checked(path, job)
        try:
            st = os.fstat(fd)
            ident = (real, st.st_ino, st.st_mtime_ns, st.st_size, size, port)
            with self._thumb_lock:
                if ident in self._thumbs:
                    self._thumbs.move_to_end(ident)
                    return self._thumbs[ident]
            try:
                png = thumbnail_png(_read_pixels(fd, real), size, port)
            except (OSError, ValueError) as e:
                raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, f"{path!r} is not a picture: {e}") from None
        finally:
            os.close(fd)
        with self._thumb_lock:
            self._thumbs[ident] = png
            while len(self._thumbs) > self.THUMB_CACHE:
                self._thumbs.popitem(last=False)
        return png

    def info(self) -> dict:
        from .. import __version__
        return {"version": __version__, "token_required": bool(self.token), "max_jobs": self.manager.max_jobs,
                "jobs_running": self.manager.count("running"), "jobs_queued": self.manager.count("queued"),
                "grpc_address": self.grpc.address, "store_root": str(self.engine.store.root)}

    def nodes(self) -> list[dict]:
        return [t.describe() for t in self.engine.registry.all()]


class _Handler(BaseHTTPRequestHandler):
    server_ref: WebServer
    server_version = "celgraph"
    protocol_version = "HTTP/1.0"          # one request per connection: event streams end by closing

    def log_message(self, fmt, *args):     # access log at debug level, not on stderr
        log.debug("%s %s", self.address_string(), fmt % args)

    # ---- plumbing ----
    def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", (headers or {}).pop("Cache-Control", "no-store"))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, obj, status: int = 200, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj, default=str).encode(), "application/json", headers)

    def _error(self, status: int, message: str) -> None:
        self._json({"error": HTTPStatus(status).phrase.lower().replace(" ", "_"), "message": message}, status)

    def _host_ok(self) -> bool:
        """Without a token, only a loopback Host (DNS rebinding: a page elsewhere naming our port)."""
        web = self.server_ref
        if web.token:
            return True
        from .server import is_loopback
        host = (self.headers.get("Host") or "").strip()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return is_loopback(name)

    def _dispatch(self, method: str) -> None:
        web = self.server_ref
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if not self._host_ok():
                raise HttpError(HTTPStatus.FORBIDDEN, "open the page through localhost or 127.0.0.1")
            if method == "GET" and url.path in STATIC:
                name, ctype = STATIC[url.path]
                body = resources.files("celgraph.service").joinpath("static", name).read_bytes()
                return self._send(200, body, ctype, {"Content-Security-Policy":
                                                     "default-src 'self'; img-src 'self' data:; style-src 'self'"})
            if not url.path.startswith("/api/"):
                raise HttpError(HTTPStatus.NOT_FOUND, f"no page {url.path!r}")
            if method == "POST":
                origin = self.headers.get("Origin")
                if origin and urlsplit(origin).netloc != (self.headers.get("Host") or ""):
                    raise HttpError(HTTPStatus.FORBIDDEN, f"requests from {origin} are not accepted")
            if url.path == "/api/login" and method == "POST":
                if not web.token:
                    return self._json({"token_required": False})
                if not web.authorized(self.headers) or not self.headers.get("Authorization"):
                    raise HttpError(HTTPStatus.UNAUTHORIZED, "wrong token")
                cookie = f"{COOKIE}={web.cookie_value()}; HttpOnly; SameSite=Strict; Path=/"
                return self._json({"token_required": True}, headers={"Set-Cookie": cookie})
            if not web.authorized(self.headers):
                raise HttpError(HTTPStatus.UNAUTHORIZED,
                                "this server needs a token: send 'Authorization: Bearer <token>'")
            self._api(method, url.path.split("/")[2:], q)
        except HttpError as e:
            self._error(e.status, e.message)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except CelgraphError as e:
            self._error(HTTPStatus.BAD_REQUEST, str(e))
        except Exception as e:      # noqa: BLE001 — answer, log, keep serving
            log.exception("web request %s failed", self.path)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(e).__name__}: {e}")

    def _api(self, method: str, parts: list[str], q: dict) -> None:
        web = self.server_ref
        if method == "GET" and parts == ["info"]:
            return self._json(web.info())
        if method == "GET" and parts == ["nodes"]:
            return self._json(web.nodes(), headers={"Cache-Control": "private, max-age=60"})
        if method == "GET" and parts == ["jobs"]:
            limit = _int(q.get("limit", "200"), "limit")
            return self._json([web.job_dict(j, brief=True) for j in web.manager.list(limit)])
        if len(parts) < 2 or parts[0] != "jobs":
            raise HttpError(HTTPStatus.NOT_FOUND, f"no API {'/'.join(parts)!r}")
        job = web.job(parts[1])
        rest = parts[2:]
        if method == "POST" and rest == ["cancel"]:
            return self._json(web.cancel(job.id))
        if method != "GET":
            raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed here")
        if rest == []:
            return self._json(web.job_dict(job))
        if rest == ["events.json"]:
            events, _ = job.wait_events(_int(q.get("from", "0"), "from"), 0)
            return self._json(events)
        if rest == ["events"]:
            after = _int(q.get("from") or "0", "from")
            # EventSource resends Last-Event-ID on reconnecting (the URL keeps its first from=)
            if self.headers.get("Last-Event-ID"):
                after = max(after, _int(self.headers["Last-Event-ID"], "Last-Event-ID"))
            if not web._streams.acquire(blocking=False):
                raise HttpError(HTTPStatus.SERVICE_UNAVAILABLE, f"{web.MAX_STREAMS} event streams are open")
            try:
                return self._stream(job, after)
            finally:
                web._streams.release()
        if rest == ["graph"]:
            return self._json(web.graph(job))
        if rest == ["pictures"]:
            return self._json(web.pictures(job))
        if rest == ["thumb"]:
            size = min(THUMB_MAX, max(THUMB_MIN, _int(q.get("size", str(THUMB_DEFAULT)), "size")))
            if "path" in q:
                path, port = q["path"], ""
            elif "node" in q and "output" in q:
                frame = _int(q["frame"], "frame") if q.get("frame") not in (None, "") else None
                path, port = web.resolve_output(job, q["node"], q["output"], frame)
            else:
                raise HttpError(HTTPStatus.BAD_REQUEST, "give path=..., or node=..., output=... and frame=...")
            return self._send(200, web.thumbnail(job, path, size, port), "image/png",
                              {"Cache-Control": "private, max-age=5"})
        raise HttpError(HTTPStatus.NOT_FOUND, f"no API {'/'.join(parts)!r}")

    def _stream(self, job, after: int) -> None:
        """Server-sent events: WatchJob's events with seq > after (id: seq, so EventSource resumes
        by itself), then `event: end` once the final event went out."""
        web = self.server_ref
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Accel-Buffering", "no")
        self.end_headers()
        self.wfile.write(b"retry: 500\n\n")
        self.wfile.flush()
        last_write = time.monotonic()
        while True:
            events, done = job.wait_events(after, web.SSE_POLL)
            if events:
                chunk = "".join(f"id: {ev['seq']}\ndata: {json.dumps(ev, default=str)}\n\n" for ev in events)
                self.wfile.write(chunk.encode())
                self.wfile.flush()
                after, last_write = events[-1]["seq"], time.monotonic()
            if done and after >= job.record.last_seq:
                self.wfile.write(b"event: end\ndata: {}\n\n")
                self.wfile.flush()
                return
            if web._stopping.is_set():
                return
            if time.monotonic() - last_write > web.SSE_PING:
                self.wfile.write(b": ping\n\n")
                self.wfile.flush()
                last_write = time.monotonic()

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        length = _int(self.headers.get("Content-Length") or "0", "Content-Length")
        if 0 < length <= 65536:
            self.rfile.read(length)          # no API reads a body; drain it so the reply is clean
        self._dispatch("POST")


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise HttpError(HTTPStatus.BAD_REQUEST, f"{name} must be an integer, got {text!r}") from None



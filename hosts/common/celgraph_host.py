"""What the Natron and Nuke plug-ins of celgraph share. Standard library only (Python 3.7+).

Natron and Nuke embed their own Python and protobuf, and loading grpcio there breaks or cannot be
installed. So this module reaches a `graph serve` server through the bridge, `graph remote ...`
run as a subprocess from celgraph's own environment (JSON lines on stdout), or through
`celgraph.service.client` where the host's Python can import it (never at import time). Frames
travel as EXR files on shared storage; only scenes and paths cross the wire.

    settings = load_settings(address="gpubox:50051")       # env, ~/.celgraph/host.json, defaults
    types = fetch_types(settings)                           # ListNodeTypes, cached per address
    session = Session(post=nuke.executeInMainThread, on_status=show)
    plan = plan_node_run(settings, desc, values, inputs, "image", 1, 24, "Blur1")
    ...  # the host renders each plan["inputs"][port]["local"] to EXR, on its UI thread
    check_rendered(plan)
    session.submit(settings, plan, on_result=apply)         # a worker thread; apply() via post

Nothing here touches a host object: hosts pass callables. `Session` never raises into the host:
every failure (server down, invalid scene, failed node, missing bridge) becomes the status line.

Settings, strongest first: what the panel says (server address, shared folder), the environment
(CELGRAPH_ADDRESS, CELGRAPH_BRIDGE, CELGRAPH_TOKEN, CELGRAPH_TRANSPORT, CELGRAPH_SHARED,
CELGRAPH_PATH_MAP, CELGRAPH_TIMEOUT), the JSON file $CELGRAPH_HOST_CONFIG (default
~/.celgraph/host.json, same keys in lower case without the prefix), then the defaults.
"""
from __future__ import print_function

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

DEFAULT_ADDRESS = "127.0.0.1:50051"
DEFAULT_BRIDGE = "graph"
IMAGE_TYPES = ("Image", "Mask", "LineArt", "Flow", "Labels")   # what an EXR can carry (Write's AnyImage)
TERMINAL = ("succeeded", "failed", "cancelled", "interrupted")
TYPES_TTL = 300.0                  # seconds a ListNodeTypes answer is reused for a new node
STATUS_INTERVAL = 0.1              # at most this often a progress line goes to the host UI
INTERNAL_NODES = ("cg_node", "cg_ink", "cg_out")   # node_scene's names: the wrapped node, Ink, the Write
# What a host's Read should make of each output type's EXR: a drawing / picture in RGBA (LineArt
# arrives as an Ink drawing), a matte in alpha (one-channel Mask and Labels), two flow channels.
READ_COMPONENTS = {"Image": "RGBA", "LineArt": "RGBA", "Mask": "Alpha", "Labels": "Alpha", "Flow": "RGB"}
PARAM_PREFIX = "cgp_"              # host param/knob names: cgp_<type slug>_<param>; UI ones are cg_*
_ENV = {"address": "CELGRAPH_ADDRESS", "bridge": "CELGRAPH_BRIDGE", "token": "CELGRAPH_TOKEN",
        "transport": "CELGRAPH_TRANSPORT", "shared": "CELGRAPH_SHARED", "path_map": "CELGRAPH_PATH_MAP",
        "timeout": "CELGRAPH_TIMEOUT", "colorspace": "CELGRAPH_COLORSPACE"}
# the embedded interpreter's variables would break the Python that runs the bridge
_SCRUB_ENV = ("PYTHONHOME", "PYTHONPATH", "PYTHONEXECUTABLE", "PYTHONSTARTUP", "PYTHONNOUSERSITE")


class HostError(Exception):
    """A failure the status line shows. code: unavailable, invalid, no_bridge, bridge_failed,
    render_failed, not_shared, bad_param, busy, no_type, ... (or the server's gRPC code)."""

    def __init__(self, code, message, issues=None):
        Exception.__init__(self, message)
        self.code, self.message, self.issues = code, message, list(issues or [])

    def status(self):
        if self.code == "invalid" and self.issues:
            parts = []
            for i in self.issues[:3]:
                node = None if i.get("node") in INTERNAL_NODES else i.get("node")   # the user knows params
                where = ".".join(x for x in (node, i.get("field")) if x)
                parts.append("%s%s" % (where + ": " if where else "", i.get("message", i.get("code", "?"))))
            more = " (+%d more)" % (len(self.issues) - 3) if len(self.issues) > 3 else ""
            return one_line("invalid: " + "; ".join(parts) + more)
        if self.code in ("unavailable", "timeout"):
            return one_line("no server: " + self.message)
        if self.code in ("cancelled", "interrupted", "failed"):
            return one_line("%s: %s" % (self.code, self.message))
        return one_line("error (%s): %s" % (self.code, self.message))


def one_line(text, limit=400):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


# ---- settings ------------------------------------------------------------------------------------

def load_settings(default_transport="auto", **overrides):
    """The settings dict: address, bridge, token, transport (auto|bridge|grpc), shared, path_map,
    timeout, colorspace (the OCIO space of the EXRs the host writes and reads back: its linear). Empty overrides (a blank panel field) fall through to the environment and the file."""
    cfg = {}
    path = os.environ.get("CELGRAPH_HOST_CONFIG") or os.path.join(os.path.expanduser("~"), ".celgraph",
                                                                  "host.json")
    if os.path.isfile(path):
        try:
            with open(path) as f:
                cfg = json.load(f)
        except (OSError, ValueError) as e:
            print("celgraph: ignoring %s: %s" % (path, e), file=sys.stderr)
        if not isinstance(cfg, dict):
            cfg = {}
    defaults = {"address": DEFAULT_ADDRESS, "bridge": DEFAULT_BRIDGE, "token": "",
                "transport": default_transport,
                "shared": os.path.join(tempfile.gettempdir(), "celgraph_shared"), "path_map": "",
                "timeout": 30.0, "colorspace": "linear"}
    s = {}
    for key, default in defaults.items():
        value = overrides.get(key)
        if value in (None, ""):
            value = os.environ.get(_ENV[key]) or cfg.get(key) or default
        s[key] = value
    s["timeout"] = float(s["timeout"])
    if s["transport"] not in ("auto", "bridge", "grpc"):
        s["transport"] = default_transport
    return s


class PathMap(object):
    """How this machine and the server name the same shared folders.

    "LOCAL=SERVER;LOCAL2=SERVER2", e.g. "/Volumes/show=/mnt/show;S:\\show=/mnt/show". Paths that
    match no prefix are the same on both sides."""

    def __init__(self, spec=""):
        self.pairs = []
        for part in (spec or "").split(";"):
            if "=" in part:
                local, server = part.split("=", 1)
                if local.strip() and server.strip():
                    self.pairs.append((local.strip().rstrip("/\\"), server.strip().rstrip("/\\")))

    @staticmethod
    def _swap(path, src, dst):
        if path == src:
            return dst
        if path.startswith(src) and path[len(src)] in "/\\":
            rest = path[len(src):]
            return dst + (rest.replace("/", "\\") if "\\" in dst and "/" not in dst else rest.replace("\\", "/"))
        return None

    def to_server(self, path):
        for local, server in self.pairs:
            mapped = self._swap(path, local, server)
            if mapped is not None:
                return mapped
        return path

    def to_local(self, path):
        for local, server in self.pairs:
            mapped = self._swap(path, server, local)
            if mapped is not None:
                return mapped
        return path


# ---- transports ----------------------------------------------------------------------------------

def grpc_importable():
    """True where this Python could talk gRPC itself (celgraph and grpcio importable). Looks only:
    importing grpc inside Nuke can clash with Nuke's own protobuf."""
    try:
        return importlib.util.find_spec("grpc") is not None and importlib.util.find_spec("celgraph") is not None
    except (ImportError, ValueError):
        return False


def make_transport(settings):
    """GrpcTransport when asked for (or 'auto' and importable), else BridgeTransport."""
    kind = settings.get("transport", "auto")
    if kind == "grpc" or (kind == "auto" and grpc_importable()):
        try:
            return GrpcTransport(settings)
        except ImportError as e:
            if kind == "grpc":
                raise HostError("no_grpc", "transport 'grpc' asked for, but celgraph's client cannot be "
                                           "imported here: %s" % e)
    return BridgeTransport(settings)


def bridge_command(bridge):
    """The bridge as an argv prefix: a list as is; a path to an existing file (spaces and all); else
    a command line ('graph', '/opt/cg/bin/python -m celgraph.cli')."""
    if isinstance(bridge, (list, tuple)):
        return list(bridge)
    if os.path.isfile(bridge):
        return [bridge]
    words = shlex.split(bridge, posix=os.name != "nt")
    return [w[1:-1] if len(w) > 1 and w[0] == w[-1] == '"' else w for w in words]


class BridgeTransport(object):
    """`graph remote ...` in a subprocess, one JSON object per stdout line."""
    name = "bridge"

    def __init__(self, settings):
        self.settings = settings
        self.command = bridge_command(settings.get("bridge") or DEFAULT_BRIDGE)
        self.address = settings.get("address") or DEFAULT_ADDRESS
        self.timeout = float(settings.get("timeout") or 30.0)
        self._procs = set()
        self._lock = threading.Lock()

    def _argv(self, args):
        return list(self.command) + ["remote", "--address", self.address, "--timeout", "%g" % self.timeout] + list(args)

    def _env(self):
        env = dict(os.environ)
        for k in _SCRUB_ENV:
            env.pop(k, None)
        if self.settings.get("token"):
            env["CELGRAPH_TOKEN"] = self.settings["token"]       # not on the command line (ps)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONIOENCODING"] = "utf-8"
        return env

    def stream(self, args, stdin_text=None, on_line=None, limit=None):
        """Run the bridge; on_line(obj) for each JSON line as it comes. Returns (rc, lines, stderr tail).
        `limit`: seconds before the process is killed (None: no limit)."""
        argv = self._argv(args)
        try:
            p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self._env(),
                                 creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
        except OSError as e:
            raise HostError("no_bridge", "cannot start the bridge %r: %s. Set CELGRAPH_BRIDGE to celgraph's "
                                         "`graph` command (e.g. /opt/celgraph/venv/bin/graph)"
                            % (" ".join(self.command), e))
        with self._lock:
            self._procs.add(p)
        err_chunks = []
        drain = threading.Thread(target=_drain, args=(p.stderr, err_chunks), name="celgraph-bridge-stderr")
        drain.daemon = True
        drain.start()
        killer, killed = None, []
        if limit:
            killer = threading.Timer(limit, lambda: (killed.append(True), _kill(p)))
            killer.daemon = True
            killer.start()
        lines = []
        try:
            if stdin_text is not None:
                try:
                    p.stdin.write(stdin_text.encode("utf-8"))
                    p.stdin.close()
                except OSError:
                    pass                       # it died early; its exit status and stderr say why
            for raw in iter(p.stdout.readline, b""):
                try:
                    obj = json.loads(raw.decode("utf-8", "replace"))
                except ValueError:
                    continue                   # not ours (a library printing to stdout)
                if not isinstance(obj, dict):
                    continue
                lines.append(obj)
                if on_line is not None:
                    on_line(obj)
            rc = p.wait()
        finally:
            if killer is not None:
                killer.cancel()
            if p.poll() is None:
                _kill(p)
                p.wait()
            p.stdout.close()
            drain.join(5)
            with self._lock:
                self._procs.discard(p)
        if killed:
            raise HostError("bridge_timeout", "the bridge (%s) did not finish within %g s"
                            % (" ".join(self.command + list(args[:1])), limit))
        return rc, lines, b"".join(err_chunks).decode("utf-8", "replace")[-2000:]

    @staticmethod
    def _fail(rc, lines, stderr, what):
        errors = [o for o in lines if o.get("type") == "error"]
        if errors:
            e = errors[-1]
            raise HostError(e.get("code") or "error", e.get("message") or "", e.get("issues"))
        tail = one_line(stderr.strip().splitlines()[-1] if stderr.strip() else "no output")
        raise HostError("bridge_failed", "%s: the bridge exited with status %s (%s)" % (what, rc, tail))

    def nodes(self):
        rc, lines, err = self.stream(["nodes"], limit=self.timeout + 60)
        if rc != 0:
            self._fail(rc, lines, err, "nodes")
        return [_strip_type(o) for o in lines if o.get("type") == "node_type"]

    def submit_watch(self, scene_text, base_dir, frames=None, targets=None, label="", on_job=None,
                     on_event=None):
        args = ["submit", "-", "--watch", "--base-dir", base_dir]
        if frames:
            args += ["--frames", frames]
        if targets:
            args += ["--targets", ",".join(targets)]
        if label:
            args += ["--label", label]
        seen = []

        def on_line(obj):
            kind = obj.get("type")
            if kind == "job":
                seen.append(obj)
                if len(seen) == 1 and on_job is not None:
                    on_job(_strip_type(obj))
            elif kind == "event" and on_event is not None:
                on_event(_strip_type(obj))

        rc, lines, err = self.stream(args, stdin_text=scene_text, on_line=on_line)
        if len(seen) >= 2 and seen[-1].get("state") in TERMINAL:
            return _strip_type(seen[-1])
        self._fail(rc, lines, err, "submit")

    def cancel(self, job_id):
        rc, lines, err = self.stream(["cancel", job_id], limit=self.timeout + 60)
        if rc != 0:
            self._fail(rc, lines, err, "cancel")
        jobs = [o for o in lines if o.get("type") == "job"]
        return _strip_type(jobs[-1]) if jobs else None

    def close(self):
        with self._lock:
            procs = list(self._procs)
        for p in procs:
            _kill(p)


class GrpcTransport(object):
    """celgraph.service.client in this process, for hosts whose Python has grpcio and celgraph."""
    name = "grpc"

    def __init__(self, settings):
        from celgraph.service import client as grpc_client          # only here, only when asked
        self._client = grpc_client.Client(settings.get("address") or DEFAULT_ADDRESS,
                                          token=settings.get("token") or None,
                                          timeout=float(settings.get("timeout") or 30.0))

    @staticmethod
    def _host_error(e):
        issues = getattr(e, "issues", None)
        if issues is not None:
            return HostError("invalid", "%d problem(s) found" % len(issues),
                             [i.to_dict() if hasattr(i, "to_dict") else dict(i) for i in issues])
        return HostError(getattr(e, "code", None) or type(e).__name__, getattr(e, "message", None) or str(e))

    def nodes(self):
        try:
            return self._client.nodes()
        except Exception as e:
            raise self._host_error(e)

    def submit_watch(self, scene_text, base_dir, frames=None, targets=None, label="", on_job=None,
                     on_event=None):
        try:
            job_id = self._client.submit(json.loads(scene_text), targets=targets or None, frames=frames or None,
                                         base_dir=base_dir, label=label or "")
            if on_job is not None:
                on_job(self._client.job(job_id))
            for ev in self._client.watch(job_id):
                if on_event is not None:
                    on_event(ev)
            return self._client.job(job_id)
        except Exception as e:
            raise self._host_error(e)

    def cancel(self, job_id):
        try:
            return self._client.cancel(job_id)
        except Exception as e:
            raise self._host_error(e)

    def close(self):
        self._client.close()


def _drain(stream, chunks):
    try:
        for chunk in iter(lambda: stream.read(4096), b""):
            chunks.append(chunk)
            if len(chunks) > 64:
                del chunks[:32]
    except (OSError, ValueError):
        pass
    finally:
        try:
            stream.close()
        except OSError:
            pass


def _kill(p):
    try:
        p.kill()
    except OSError:
        pass


def _strip_type(obj):
    return dict((k, v) for k, v in obj.items() if k != "type")


# ---- node types and params -----------------------------------------------------------------------

_TYPES_CACHE = {}
_TYPES_LOCK = threading.Lock()


def fetch_types(settings, force=False):
    """The server's node type descriptors (ListNodeTypes), cached per address for TYPES_TTL seconds.
    Call it from a worker thread. Raises HostError."""
    address = settings.get("address") or DEFAULT_ADDRESS
    with _TYPES_LOCK:
        hit = _TYPES_CACHE.get(address)
    if hit and not force and time.time() - hit[0] < TYPES_TTL:
        return hit[1]
    transport = make_transport(settings)
    try:
        types = transport.nodes()
    finally:
        transport.close()
    with _TYPES_LOCK:
        _TYPES_CACHE[address] = (time.time(), types)
    return types


def runnable_types(descs):
    """The node types a host node can wrap: at least one output an EXR can carry, no side effect
    (Read and Write are the wrapper's own). Sorted by category, then name."""
    out = [d for d in descs if not d.get("side_effect") and image_outputs(d)]
    return sorted(out, key=lambda d: (d.get("category", ""), d.get("name", ""), d["id"]))


def type_labels(descs):
    """[(menu label, type id)]: 'Blur (Filter)', or the id where two types share a name."""
    names = {}
    for d in descs:
        names[d["name"]] = names.get(d["name"], 0) + 1
    return [("%s (%s)" % (d["name"], d.get("category") or "-") if names[d["name"]] == 1 else d["id"], d["id"])
            for d in descs]


def image_outputs(desc):
    return [o["name"] for o in desc.get("outputs", []) if o.get("type") in IMAGE_TYPES]


def output_type(desc, output):
    """The port type name of one output of a node type ("" when unknown)."""
    return next((o.get("type", "") for o in (desc or {}).get("outputs", []) if o.get("name") == output), "")


def slug(text):
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def param_name(type_id, param):
    """Host param/knob name of a node param: prefixed and type-qualified, so it can clash neither
    with the host's own names nor with another type's param of the same name."""
    return PARAM_PREFIX + slug(type_id) + "_" + slug(param)


def _fmt(x):
    return ("%d" % x) if isinstance(x, int) else ("%g" % x)


def param_specs(desc):
    """One dict per param of a node type, what a host needs to build its widget:
    name (host name), param, widget (int float bool choice string file_in file_out), kind, label,
    default (in host terms: a choice's index, an int list as text), min, max, options, choices,
    help (with the range and the accepted values)."""
    specs = []
    for p in desc.get("params", []):
        kind = p.get("kind", "any")
        widget = {"int": "int", "float": "float", "bool": "bool", "choice": "choice"}.get(kind, "string")
        if kind == "path":
            widget = "file_out" if p.get("file") == "out" else "file_in"
        spec = {"name": param_name(desc["id"], p["name"]), "param": p["name"], "kind": kind, "widget": widget,
                "label": p["name"].replace("_", " "), "min": p.get("min"), "max": p.get("max"),
                "choices": list(p.get("choices") or []), "help": p.get("help") or ""}
        spec["options"] = [str(c) for c in spec["choices"]]
        spec["default"] = value_to_host(spec, p.get("default"))
        extra = []
        if spec["min"] is not None or spec["max"] is not None:
            extra.append("range %s .. %s" % ("-inf" if spec["min"] is None else _fmt(spec["min"]),
                                             "inf" if spec["max"] is None else _fmt(spec["max"])))
        if kind == "int_list":
            extra.append("integers separated by commas")
        elif kind == "any":
            extra.append("a JSON value")
        spec["help"] = (spec["help"] + (" (" + "; ".join(extra) + ")" if extra else "")).strip()
        specs.append(spec)
    return specs


def value_to_host(spec, value):
    """A scene value as the host widget holds it."""
    w, kind = spec["widget"], spec["kind"]
    if w == "choice":
        return spec["choices"].index(value) if value in spec["choices"] else 0
    if w == "int":
        return int(value or 0)
    if w == "float":
        return float(value or 0.0)
    if w == "bool":
        return bool(value)
    if kind == "int_list":
        return ", ".join(str(v) for v in (value or []))
    if kind == "any":
        return "" if value is None else json.dumps(value)
    return "" if value is None else str(value)


def value_to_scene(spec, raw):
    """What the host widget holds, as a scene value. Raises HostError(bad_param) for text that
    cannot be parsed; ranges and choices are the server's to check."""
    w, kind = spec["widget"], spec["kind"]
    if w == "choice":
        if isinstance(raw, bool):
            raw = int(raw)
        if isinstance(raw, int):
            if 0 <= raw < len(spec["choices"]):
                return spec["choices"][raw]
            raise HostError("bad_param", "%s: choice %d is not one of %s" % (spec["param"], raw, spec["options"]))
        label = str(raw)
        return spec["choices"][spec["options"].index(label)] if label in spec["options"] else label
    if w == "int":
        f = float(raw)
        return int(f) if f.is_integer() else f
    if w == "float":
        return float(raw)
    if w == "bool":
        return bool(raw)
    text = "" if raw is None else str(raw)
    if kind == "int_list":
        try:
            return [int(t) for t in re.split(r"[,\s]+", text.strip()) if t]
        except ValueError:
            raise HostError("bad_param", "%s: %r is not a list of integers (e.g. 1, 2, 4)" % (spec["param"], text))
    if kind == "any":
        try:
            return json.loads(text) if text.strip() else None
        except ValueError as e:
            raise HostError("bad_param", "%s: not JSON: %s" % (spec["param"], e))
    return text


def scene_params(desc, read):
    """{param: scene value} for a node type, `read(host_name, spec)` giving each widget's value."""
    return dict((s["param"], value_to_scene(s, read(s["name"], s))) for s in param_specs(desc))


def schema_from_text(text):
    """The node type description a host node keeps as JSON text; None when empty or unreadable."""
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def require(param, kind, name):
    """``param``, a host param or knob looked up by ``name`` (None when the node has none): a node
    saved with another node type's params is stale, which the user fixes by choosing the type again."""
    if param is None:
        raise HostError("stale", "%s %s is missing: choose the node type again" % (kind, name))
    return param


def describe_ports(desc):
    """[(port name, optional, help)] for the inputs a host node shows as input arrows."""
    return [(i["name"], bool(i.get("optional")), i.get("help") or i.get("type", "")) for i in desc.get("inputs", [])]


# ---- frames, folders, scenes ---------------------------------------------------------------------

_HASHES = re.compile(r"#+")


def frame_file(pattern, frame):
    """The file of `frame` in a '####' pattern (one # per digit; '#' alone: no padding)."""
    return _HASHES.sub(lambda m: "%0*d" % (len(m.group(0)), frame), pattern)


def frames_spec(first, last):
    first, last = int(first), int(last)
    if last < first:
        raise HostError("bad_frames", "the last frame (%d) is before the first (%d)" % (last, first))
    return str(first) if first == last else "%d-%d" % (first, last)


def missing_frames(pattern, first, last):
    return [f for f in range(int(first), int(last) + 1) if not os.path.isfile(frame_file(pattern, f))]


def new_run_dir(shared, node_name):
    """<shared>/<node>/<yyyymmdd-hhmmss>-<6 hex>: a fresh folder per run, so a Read still showing the
    last result never sees its files replaced under it."""
    stamp = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
    path = os.path.join(os.path.abspath(os.path.expanduser(shared)), slug(node_name or "node"), stamp)
    try:
        os.makedirs(path)
    except OSError as e:
        raise HostError("shared_storage", "cannot create %s: %s (set the shared folder, or CELGRAPH_SHARED)"
                        % (path, e))
    return path


def node_scene(desc, params, inputs, output, out_pattern, frames, label="", colorspace="linear"):
    """scene.json for one node type: each input port fed by an EXR sequence (celgraph.Read), the
    chosen output written as a float EXR sequence (celgraph.Write, the target "cg_out"). A LineArt
    output goes through celgraph.Ink first, so the host shows a drawing, not white. `colorspace`:
    the space of the host's EXRs, both ways (celgraph converts to and from its working space)."""
    nodes, links = {}, {}
    for port in sorted(inputs):
        reader = "cg_in_" + slug(port)
        nodes[reader] = {"type": "celgraph.Read", "params": {"path": inputs[port], "colorspace": colorspace}}
        links[port] = reader + ".image"
    nodes["cg_node"] = {"type": desc["id"], "inputs": links, "params": params}
    source = "cg_node." + output
    if output_type(desc, output) == "LineArt":
        nodes["cg_ink"] = {"type": "celgraph.Ink", "inputs": {"lines": source}, "params": {"paper": "white"}}
        source = "cg_ink.image"
    nodes["cg_out"] = {"type": "celgraph.Write", "inputs": {"image": source},
                       "params": {"path": out_pattern, "bit_depth": "float", "colorspace": colorspace}}
    return {"celgraph": 1, "frames": frames, "nodes": nodes, "ui": {"made_by": "celgraph host plug-in",
                                                                     "label": label}}


def plan_node_run(settings, desc, params, connected, output, first, last, node_name):
    """Everything a node-mode run needs, decided on the UI thread before anything is rendered.

    desc: the node type; params: scene values (scene_params); connected: the input ports with
    something plugged in; output: which output to bring back. Returns a dict: mode, frames,
    run_dir, inputs {port: {"local", "server"}} (EXR patterns the host renders to), out_pattern
    (local), scene_text, base_dir (server), targets, label. Raises HostError."""
    if not desc:
        raise HostError("no_type", "choose a node type first (press Refresh if the list is empty)")
    missing = [name for name, optional, _ in describe_ports(desc) if not optional and name not in connected]
    if missing:
        raise HostError("missing_input", "connect the input%s %s" % ("s" if len(missing) > 1 else "",
                                                                     ", ".join(missing)))
    outputs = image_outputs(desc)
    if output not in outputs:
        raise HostError("bad_output", "%s has no image output %r (it has %s)" % (desc["id"], output, outputs))
    frames = frames_spec(first, last)
    pmap = PathMap(settings.get("path_map"))
    run_dir = new_run_dir(settings.get("shared"), node_name)
    inputs = {}
    for port in connected:
        local = os.path.join(run_dir, "in_%s.####.exr" % slug(port))
        inputs[port] = {"local": local, "server": pmap.to_server(local)}
    out_local = os.path.join(run_dir, "out_%s.####.exr" % slug(output))
    label = "%s %s" % (node_name, desc["id"])
    scene = node_scene(desc, params, dict((p, v["server"]) for p, v in inputs.items()), output,
                       pmap.to_server(out_local), frames, label, settings.get("colorspace") or "linear")
    return {"mode": "node", "frames": frames, "first": int(first), "last": int(last), "run_dir": run_dir,
            "inputs": inputs, "out_pattern": out_local, "scene_text": json.dumps(scene, indent=1),
            "base_dir": pmap.to_server(run_dir), "targets": ["cg_out"], "label": label,
            "result_node": "cg_out", "output_type": output_type(desc, output)}


def plan_scene_run(settings, scene_path, targets, first, last, node_name, result_node=""):
    """A scene-file run: the scene goes as is; relative paths resolve against its folder as the
    server sees it. frames None/None: the scene's own range."""
    path = os.path.abspath(os.path.expanduser(scene_path or ""))
    if not scene_path or not os.path.isfile(path):
        raise HostError("no_scene", "scene file %r not found" % (scene_path or ""))
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
        json.loads(text)
    except (OSError, ValueError) as e:
        raise HostError("bad_scene", "cannot read %s: %s" % (path, e))
    frames = frames_spec(first, last) if first is not None and last is not None else None
    pmap = PathMap(settings.get("path_map"))
    targets = [t.strip() for t in re.split(r"[,\s]+", targets or "") if t.strip()]
    return {"mode": "scene", "frames": frames, "first": first, "last": last, "run_dir": None, "inputs": {},
            "out_pattern": None, "scene_text": text, "base_dir": pmap.to_server(os.path.dirname(path)),
            "targets": targets, "label": "%s %s" % (node_name, os.path.basename(path)),
            "result_node": (result_node or "").strip()}


def check_rendered(plan):
    """After the host rendered its inputs: every frame must be on disk (Natron's renderer exits 0
    even when it wrote nothing). Raises HostError(render_failed)."""
    for port, paths in sorted(plan["inputs"].items()):
        missing = missing_frames(paths["local"], plan["first"], plan["last"])
        if missing:
            raise HostError("render_failed", "input %s: frame%s %s not written to %s" % (
                port, "s" if len(missing) > 1 else "", ",".join(str(f) for f in missing[:8]),
                os.path.dirname(paths["local"])))


def sequence_pattern(paths):
    """A '####' pattern that names every {frame: path}, or None. 'a/out.0007.exr' at frame 7 →
    'a/out.####.exr'; an unpadded '%d' sequence → '#'."""
    frames = sorted(paths)
    if not frames:
        return None
    first = paths[frames[0]]
    head, base = os.path.split(first)
    for m in reversed(list(re.finditer(r"\d+", base))):
        if int(m.group(0)) != frames[0]:
            continue
        for hashes in ("#" * len(m.group(0)), "#"):
            candidate = os.path.join(head, base[:m.start()] + hashes + base[m.end():])
            if all(frame_file(candidate, f) == paths[f] for f in frames):
                return candidate
    return None


def job_result(job, plan, path_map=""):
    """What the host's Read should show after a successful job: {"pattern", "first", "last",
    "files", "node", "output"} with local paths that exist. Raises HostError when the job wrote no
    file or this machine cannot see what it wrote."""
    rows = [o for o in job.get("outputs") or [] if o.get("kind") == "file" and o.get("path")]
    if not rows:
        raise HostError("no_output", "the job wrote no file: target a Write node (targets: %s)"
                        % (", ".join(job.get("targets") or []) or "the scene's end nodes"))
    groups = {}
    for o in rows:
        groups.setdefault((o.get("node"), o.get("output")), []).append(o)
    wanted = plan.get("result_node")
    keys = sorted(groups, key=lambda k: (k[0] != wanted, str(k[0]), str(k[1])))
    if wanted and keys[0][0] != wanted:
        raise HostError("no_output", "node %r wrote no file (files came from %s)"
                        % (wanted, ", ".join(sorted(set(str(k[0]) for k in keys)))))
    node, output = keys[0]
    pmap = PathMap(path_map)
    files = dict((o.get("frame") if o.get("frame") is not None else 0, pmap.to_local(o["path"]))
                 for o in groups[(node, output)])
    unseen = [p for p in files.values() if not os.path.isfile(p)]
    if unseen:
        raise HostError("not_shared", "the server wrote %s but this machine cannot see it: put the shared "
                                      "folder on storage both see, or set CELGRAPH_PATH_MAP" % unseen[0])
    frames = sorted(files)
    pattern = sequence_pattern(files) or files[frames[0]]
    return {"pattern": pattern, "first": frames[0], "last": frames[-1], "files": [files[f] for f in frames],
            "node": node, "output": output, "components": READ_COMPONENTS.get(plan.get("output_type"), "RGBA")}


# ---- the session: one host node's worker ---------------------------------------------------------

class Session(object):
    """One host node's link to the server: a background worker thread, the job it follows and the
    status line. `post(fn)` must run fn on the host's UI thread (nuke.executeInMainThread) or, on
    hosts without one, right away; `on_status(text)` shows the line. The host never sees an
    exception from here: failures end up in the status line and in `last_error`."""

    def __init__(self, post, on_status, name="node"):
        self._post = post
        self._on_status = on_status
        self.name = name
        self._lock = threading.Lock()
        self._thread = None
        self._transport = None
        self._cancel = threading.Event()
        self._last_post = 0.0
        self.job_id = None
        self._settings = None
        self.status = ""
        self.last_error = None
        self.last_job = None
        self.last_result = None
        self.progress = {}
        self.types = []

    # -- status --
    def set_status(self, text, final=True):
        """Show a line (throttled for progress: at most every STATUS_INTERVAL s unless final)."""
        text = one_line(text)
        with self._lock:
            self.status = text
            now = time.time()
            if not final and now - self._last_post < STATUS_INTERVAL:
                return
            self._last_post = now
        self._call_ui(self._on_status, text)

    def _call_ui(self, fn, *args):
        def run():
            try:
                fn(*args)
            except Exception:                       # a host error must not kill the worker
                traceback.print_exc()
        try:
            self._post(run)
        except Exception:
            traceback.print_exc()

    def fail(self, error):
        """Record a failure and show it (a HostError, or anything else)."""
        self.last_error = error
        self.set_status(error.status() if isinstance(error, HostError)
                        else "error: %s: %s" % (type(error).__name__, error))

    # -- the worker --
    def busy(self):
        t = self._thread
        return t is not None and t.is_alive()

    def start(self, name, work, on_done=None):
        """Run work() on a worker thread; on_done(result) goes to the UI thread through post.
        False (and a status line) when a previous task is still running."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                busy = True
            else:
                busy = False
                self._cancel.clear()
                self.last_error = None
                self._thread = threading.Thread(target=self._run, args=(work, on_done),
                                                name="celgraph-%s-%s" % (name, self.name))
                self._thread.daemon = True
        if busy:
            self.set_status("busy: %s (press Cancel first)" % (("job " + self.job_id) if self.job_id else "working"))
            return False
        self._thread.start()
        return True

    def _run(self, work, on_done):
        try:
            result = work()
        except HostError as e:
            self.fail(e)
            return
        except Exception as e:
            traceback.print_exc()
            self.fail(e)
            return
        if on_done is not None:
            self._call_ui(on_done, result)

    def wait(self, timeout=None):
        """Block until the worker is idle (for scripts, background renders and tests)."""
        t = self._thread
        if t is not None:
            t.join(timeout)
            return not t.is_alive()
        return True

    def run_sync(self, work, on_done=None):
        """Like start() but in this thread (headless hosts)."""
        self._cancel.clear()
        self.last_error = None
        self._run(work, on_done)

    # -- node types --
    def fetch(self, settings, on_types, force=False, sync=False):
        """ListNodeTypes off the UI thread (in this thread when sync); on_types(the runnable
        descriptors) then runs on the UI thread. They are also kept in `types`."""
        def work():
            self.set_status("asking %s for node types\u2026" % settings.get("address"))
            descs = runnable_types(fetch_types(settings, force))
            self.types = descs
            self.set_status("ready: %d node types from %s" % (len(descs), settings.get("address")))
            return descs
        if sync:
            self.run_sync(work, on_types)
            return self.last_error is None
        return self.start("types", work, on_types)

    def find_type(self, type_id):
        for d in self.types:
            if d["id"] == type_id:
                return d
        return None

    # -- jobs --
    def submit(self, settings, plan, on_result, sync=False):
        """Send plan's scene, follow the job, then on_result(result dict) on the UI thread."""
        def work():
            self.job_id = None
            self.progress = {"total": 0, "done": 0, "cached": 0}
            self.set_status("submitting to %s\u2026" % settings.get("address"))
            transport = make_transport(settings)
            with self._lock:
                self._transport = transport
            try:
                job = transport.submit_watch(plan["scene_text"], plan["base_dir"], frames=plan.get("frames"),
                                             targets=plan.get("targets"), label=plan.get("label", ""),
                                             on_job=self._on_job, on_event=self._on_event)
            finally:
                with self._lock:
                    self._transport = None
                transport.close()
            self.last_job = job
            return self._finish(job, plan, settings)
        self._settings = settings
        if sync:
            self.run_sync(work, on_result)
            return self.last_error is None
        return self.start("job", work, on_result)

    def _on_job(self, job):
        self.job_id = job.get("job_id")
        self.set_status("queued: job %s" % (self.job_id or "?")[:12])
        if self._cancel.is_set():
            self._send_cancel()

    def _on_event(self, ev):
        p, kind = self.progress, ev.get("kind")
        if kind == "run_started":
            data = ev.get("data") or {}
            p["total"] = int(data.get("tasks") or 0)
        elif kind in ("task_finished", "task_cached"):
            p["done"] += 1
            p["cached"] += kind == "task_cached"
        elif kind == "task_failed":
            p["failed"] = ev.get("message")
        if kind in ("run_started", "task_started", "task_finished", "task_cached", "task_progress"):
            where = ev.get("node") or ""
            if ev.get("frame") is not None:
                where += " frame %s" % ev["frame"]
            self.set_status("running: %d/%s tasks%s" % (p["done"], p["total"] or "?",
                                                        (" \u00b7 " + where) if where else ""), final=False)

    def _finish(self, job, plan, settings):
        state = job.get("state")
        jid = (job.get("job_id") or "")[:12]
        if state == "succeeded":
            result = job_result(job, plan, settings.get("path_map"))
            result["job_id"] = job.get("job_id")
            took = (job.get("finished") or 0) - (job.get("started") or job.get("created") or 0)
            n = len(result["files"])
            self.last_result = result
            self.set_status("done: %d frame%s in %.1f s (job %s, %d/%d tasks cached) \u2192 %s" % (
                n, "" if n == 1 else "s", max(took, 0.0), jid, job.get("tasks_cached", 0),
                job.get("tasks_total", 0), result["pattern"]))
            return result
        err = job.get("error") or {}
        if state == "cancelled":
            raise HostError("cancelled", "job %s was cancelled" % jid)
        if state == "interrupted":
            raise HostError("interrupted", "the server stopped before job %s finished: run again "
                                           "(finished frames are cached)" % jid)
        where = ""
        if err.get("node"):
            where = "%s (%s)%s: " % (err["node"], err.get("node_type") or "?",
                                     " frame %s" % err["frame"] if err.get("frame") is not None else "")
        raise HostError("failed", "%s%s%s" % (where, (err.get("exception") + ": ") if err.get("exception") else "",
                                              err.get("message") or state))

    def cancel(self):
        """Ask the server to cancel the running job (from the UI thread; returns at once)."""
        if not self.busy():
            self.set_status("nothing to cancel")
            return
        self._cancel.set()
        if self.job_id:
            t = threading.Thread(target=self._send_cancel, name="celgraph-cancel-%s" % self.name)
            t.daemon = True
            t.start()
        self.set_status("cancelling\u2026")

    def _send_cancel(self):
        job_id = self.job_id
        if not job_id:
            return
        with self._lock:
            transport = self._transport
        try:
            if isinstance(transport, GrpcTransport):
                transport.cancel(job_id)              # the grpc client is thread-safe
            else:                                     # the watching bridge is busy: a second one
                BridgeTransport(self._settings or load_settings()).cancel(job_id)
        except HostError as e:
            self.set_status("cancel failed: " + e.status())
        except Exception as e:
            self.set_status("cancel failed: %s" % e)

    def close(self):
        """Stop following (the node is deleted); the server's job goes on unless cancelled."""
        with self._lock:
            transport = self._transport
        if transport is not None:
            transport.close()


_SESSIONS = {}
_SESSIONS_LOCK = threading.Lock()


def session_for(key, post, on_status, name="node"):
    """The Session of a host node (key: a uid the node keeps in a hidden param)."""
    with _SESSIONS_LOCK:
        s = _SESSIONS.get(key)
        if s is None:
            s = _SESSIONS[key] = Session(post, on_status, name)
        else:                       # the host may hand over fresh callables (a new Python wrapper)
            s._post, s._on_status, s.name = post, on_status, name
        return s


def get_session(key):
    """The Session of a host node if it has one (None otherwise); changes nothing."""
    with _SESSIONS_LOCK:
        return _SESSIONS.get(key)


def forget_session(key):
    with _SESSIONS_LOCK:
        s = _SESSIONS.pop(key, None)
    if s is not None:
        s.close()

"""The two ways to reach a `graph serve` server: the `graph remote` bridge subprocess (JSON lines
on stdout) and, where the host's Python has grpcio and celgraph, celgraph.service.client in process.

Standard library only (Python 3.7+).
"""
from __future__ import print_function

import importlib.util
import json
import os
import shlex
import subprocess
import threading

from .base import DEFAULT_ADDRESS, DEFAULT_BRIDGE, HostError, TERMINAL, one_line

# the embedded interpreter's variables would break the Python that runs the bridge
_SCRUB_ENV = ("PYTHONHOME", "PYTHONPATH", "PYTHONEXECUTABLE", "PYTHONSTARTUP", "PYTHONNOUSERSITE")


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

"""The session: one host node's worker thread, the job it follows and its status line.

Standard library only (Python 3.7+).
"""
from __future__ import print_function

import threading
import time
import traceback

from .base import HostError, STATUS_INTERVAL, one_line
from .settings import load_settings
from .transports import BridgeTransport, GrpcTransport, make_transport
from .panels import fetch_types, runnable_types
from .planning import job_result


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

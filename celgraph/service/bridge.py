"""`graph serve` and `graph remote ...`: the server's command line, and the bridge that lets hosts
whose Python cannot load grpcio (Natron, Nuke) drive a server from a subprocess.

`graph remote` prints JSON lines on stdout, one object per line, each with a "type" field:

    node_type    one per node type (NodeType.describe() fields)     nodes
    validation   {"valid", "issues"}                                 validate
    job          the job record (job_id, state, timestamps, error, outputs, ...)
    event        one job event (job_id, seq, kind, time, state, node, node_type, frame, ...)
    fetched      {"job_id", "path", "dest", "bytes", "sha256"}       fetch
    cache / cache_entry / health / server_info
    detached     Ctrl-C while watching: the job goes on; resume with `watch JOB --from SEQ`
    error        {"code", "message"[, "issues"]}: the command could not do its work

Exit codes (like `graph run`): 0 ok (a watched job succeeded) · 1 the watched job failed or was
interrupted · 2 invalid scene, targets or frames, or a bad command line · 3 the server cannot be
reached (or did not answer in time) · 4 the server refused the request (token, unknown job, path
outside the outputs, ...) · 130 the watched job was cancelled, or the bridge was interrupted.
grpc is imported only when a command runs, so `graph run` never loads it.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from ..core.errors import CelgraphError, GraphInvalid
from ..engine.cache import DEFAULT_RAM_CACHE, parse_age, parse_size

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_UNREACHABLE, EXIT_REFUSED, EXIT_CANCELLED = 0, 1, 2, 3, 4, 130
STATE_EXIT = {"succeeded": EXIT_OK, "failed": EXIT_FAILED, "interrupted": EXIT_FAILED,
              "cancelled": EXIT_CANCELLED}


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def _default_address() -> str:
    return os.environ.get("CELGRAPH_ADDRESS") or "127.0.0.1:50051"


# ---- graph serve --------------------------------------------------------------------------------

def cmd_serve(args) -> int:
    import logging
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .server import GraphServer, ServiceConfigError
    executor = None
    try:
        if args.executor != "local":
            from ..engine.distributed import executor_from_cli      # loads dask
            executor = executor_from_cli(args.executor, args.scheduler, args.dask_workers)
        server = GraphServer(host=args.host, port=args.port, token=args.token or None, max_jobs=args.max_jobs,
                             cache_dir=args.cache_dir, state_dir=args.state_dir, base_dir=args.base_dir,
                             max_message_bytes=int(args.max_message_mb * (1 << 20)), max_queue=args.max_queue,
                             keep_jobs=args.keep_jobs, executor=executor, allow=args.allow, ram_bytes=args.ram_cache)
        server.start()
        web = None
        if args.http is not None:              # the browser page, on the same job manager
            from .web import WebServer
            try:
                web = WebServer(server, port=args.http).start()
            except BaseException:
                server.stop(grace=0)
                raise
    except (ServiceConfigError, CelgraphError) as e:
        print(f"graph serve: {e}", file=sys.stderr)
        if executor is not None:
            executor.close()
        return EXIT_INVALID
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    _emit({"type": "serving", "address": server.address, "pid": os.getpid(), "token_required": bool(server.token),
           "store_root": str(server.engine.store.root), "state_dir": str(server.job_store.root),
           "base_dir": str(server.manager.base_dir), "max_jobs": server.max_jobs,
           "allowed_roots": server.manager.access.roots, **({"http": web.url} if web is not None else {})})
    while not stop.wait(0.5):
        pass
    print("graph serve: stopping (running jobs get 5 s, then they are interrupted)", file=sys.stderr)
    server.stop(grace=5.0)
    if web is not None:
        web.stop()
    if executor is not None:
        executor.close()
    return EXIT_OK


# ---- graph remote -------------------------------------------------------------------------------

def _client(args):
    from .client import Client
    return Client(args.address, token=args.token or None, timeout=args.timeout)


def _read_scene(path: str) -> tuple[str, str | None]:
    """(scene text, base folder) for a SCENE argument: a file (base: its folder) or - (stdin)."""
    if path == "-":
        return sys.stdin.read(), None
    with open(path, encoding="utf-8") as f:
        return f.read(), os.path.dirname(os.path.abspath(path))


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _watch(client, job_id: str, from_seq: int, args) -> int:
    last = from_seq
    try:
        for ev in client.watch(job_id, from_seq=from_seq, timeout=args.wait_timeout):
            last = ev["seq"]
            if ev["kind"] == "task_progress" and args.no_progress:
                continue
            _emit({"type": "event", **ev})
    except KeyboardInterrupt:
        _emit({"type": "detached", "job_id": job_id, "last_seq": last,
               "message": f"stopped watching; the job goes on (graph remote watch {job_id} --from {last})"})
        return EXIT_CANCELLED
    job = client.job(job_id)
    _emit({"type": "job", **job})
    return STATE_EXIT.get(job["state"], EXIT_FAILED)


def r_nodes(client, args) -> int:
    for d in client.nodes(args.types or None):
        _emit({"type": "node_type", **d})
    return EXIT_OK


def r_validate(client, args) -> int:
    text, base = _read_scene(args.scene)
    issues = client.validate(text, base_dir=args.base_dir or base or "", targets=_split(args.targets),
                             frames=args.frames)
    _emit({"type": "validation", "valid": not issues, "issues": issues})
    return EXIT_OK if not issues else EXIT_INVALID


def r_submit(client, args) -> int:
    text, base = _read_scene(args.scene)
    job_id = client.submit(text, targets=_split(args.targets), frames=args.frames,
                           base_dir=args.base_dir or base or "", workers=args.workers, no_cache=args.no_cache,
                           label=args.label or "")
    _emit({"type": "job", **client.job(job_id)})
    return _watch(client, job_id, 0, args) if args.watch else EXIT_OK


def r_status(client, args) -> int:
    _emit({"type": "job", **client.job(args.job)})
    return EXIT_OK


def r_jobs(client, args) -> int:
    for job in client.jobs(args.limit):
        _emit({"type": "job", **job})
    return EXIT_OK


def r_watch(client, args) -> int:
    return _watch(client, args.job, args.from_seq, args)


def r_cancel(client, args) -> int:
    _emit({"type": "job", **client.cancel(args.job)})
    return EXIT_OK


def r_fetch(client, args) -> int:
    dest = args.dest
    if os.path.isdir(dest):
        dest = os.path.join(dest, os.path.basename(args.path))
    job_id = "" if args.job == "-" else args.job
    _emit({"type": "fetched", "job_id": job_id or None, **client.read_output(args.path, job_id=job_id, dest=dest)})
    return EXIT_OK


def r_cache(client, args) -> int:
    if args.action == "du":
        _emit({"type": "cache", **client.cache_du()})
    elif args.action == "ls":
        for e in client.cache_ls(args.limit):
            _emit({"type": "cache_entry", **e})
    elif args.action == "clear":
        _emit({"type": "cache", **client.cache_clear(force=args.force)})
    else:
        if args.max_size is None and args.older_than is None:
            _emit({"type": "error", "code": "usage", "message": "cache gc: give --max-size and/or --older-than"})
            return EXIT_INVALID
        _emit({"type": "cache", **client.cache_gc(args.max_size, args.older_than, force=args.force)})
    return EXIT_OK


def r_health(client, args) -> int:
    status = client.health(args.service or "")
    _emit({"type": "health", "service": args.service or "", "status": status})
    return EXIT_OK if status == "SERVING" else EXIT_REFUSED


def r_info(client, args) -> int:
    _emit({"type": "server_info", "address": args.address, **client.server_info()})
    return EXIT_OK


def cmd_remote(args) -> int:
    try:
        from .client import ServerUnavailable, ServiceError
    except ImportError as e:          # grpcio missing from this Python
        _emit({"type": "error", "code": "no_grpc", "message": f"grpcio is not importable here: {e}"})
        return EXIT_UNREACHABLE
    client = None
    try:
        client = _client(args)
        return args.remote_func(client, args)
    except GraphInvalid as e:
        _emit({"type": "error", "code": "invalid", "message": f"{len(e.issues)} problem(s) found",
               "issues": [i.to_dict() for i in e.issues]})
        return EXIT_INVALID
    except ServerUnavailable as e:
        _emit({"type": "error", "code": "unavailable", "address": args.address,
               "message": f"cannot reach a celgraph server at {args.address}: {e.message}"})
        return EXIT_UNREACHABLE
    except TimeoutError as e:
        _emit({"type": "error", "code": "timeout", "message": str(e)})
        return EXIT_UNREACHABLE
    except ServiceError as e:
        _emit({"type": "error", "code": e.code, "message": e.message})
        return EXIT_INVALID if e.code == "invalid_argument" else EXIT_REFUSED
    except (OSError, UnicodeDecodeError) as e:      # the scene file or the fetch destination
        _emit({"type": "error", "code": "io", "message": str(e)})
        return EXIT_INVALID
    except KeyboardInterrupt:
        _emit({"type": "error", "code": "interrupted", "message": "interrupted"})
        return EXIT_CANCELLED
    finally:
        if client is not None:
            client.close()


def add_parsers(sub) -> None:
    """Register `serve` and `remote` on the `graph` command's sub-parsers."""
    s = sub.add_parser("serve", help="run the gRPC server (loopback by default; other addresses need --token)",
                       description="Serve celgraph.v1.GraphService (+ health, reflection). Prints one JSON line "
                                   "{\"type\": \"serving\", \"address\": ...} when ready; stop with Ctrl-C/SIGTERM.")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need --token)")
    s.add_argument("--port", type=int, default=50051, help="port (default 50051; 0 = any free port)")
    s.add_argument("--token", default=os.environ.get("CELGRAPH_TOKEN"),
                   help="require 'authorization: Bearer TOKEN' on every call (default $CELGRAPH_TOKEN)")
    s.add_argument("--http", type=int, metavar="PORT",
                   help="also serve the web page (queue, progress, graph, pictures) on this port, same host "
                        "and token rules (0 = any free port)")
    s.add_argument("--max-jobs", type=int, default=2, help="jobs run at once (default 2); others wait queued")
    s.add_argument("--max-queue", type=int, default=1000, help="queued jobs accepted (default 1000)")
    s.add_argument("--cache-dir", help="disk cache folder (default $CELGRAPH_CACHE or ~/.cache/celgraph)")
    s.add_argument("--state-dir", help="job records (default $CELGRAPH_STATE or ~/.local/state/celgraph/server)")
    s.add_argument("--base-dir", help="where relative scene paths resolve when a request gives no base_dir "
                                      "(default: the current folder)")
    s.add_argument("--allow", action="append", metavar="DIR",
                   help="a folder submitted scenes may read and write (repeatable; default: the host plug-ins' "
                        "shared folder, $CELGRAPH_SHARED or <tmp>/celgraph_shared, and --base-dir). "
                        "Paths outside are refused with path_not_allowed")
    s.add_argument("--ram-cache", type=parse_size, default=parse_size(DEFAULT_RAM_CACHE), metavar="SIZE",
                   help=f"bound of the shared in-memory result cache (default {DEFAULT_RAM_CACHE}; 0: none)")
    s.add_argument("--max-message-mb", type=float, default=64.0, help="largest request/response (default 64 MiB)")
    s.add_argument("--keep-jobs", type=int, default=1000, help="finished job records kept (default 1000)")
    s.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    s.add_argument("--executor", choices=("local", "dask", "dask-local"), default="local",
                   help="run jobs on local threads (default) or a Dask cluster (values through the shared cache)")
    s.add_argument("--scheduler", help="Dask scheduler address for --executor dask")
    s.add_argument("--dask-workers", type=int, help="worker processes for --executor dask-local")
    s.set_defaults(func=cmd_serve)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--address", default=argparse.SUPPRESS, help="server HOST:PORT")
    common.add_argument("--token", default=argparse.SUPPRESS, help="token")
    common.add_argument("--timeout", type=float, default=argparse.SUPPRESS, help="seconds per call")

    r = sub.add_parser("remote", help="talk to a celgraph server; prints JSON lines (for Natron/Nuke plug-ins)",
                       description="\n\n".join(__doc__.split("\n\n")[1:]) if __doc__ else None,
                       epilog="exit codes: 0 ok, 1 job failed/interrupted, 2 invalid, 3 server unreachable, "
                              "4 refused by the server, 130 cancelled",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--address", default=_default_address(),
                   help="server HOST:PORT (default $CELGRAPH_ADDRESS or 127.0.0.1:50051)")
    r.add_argument("--token", default=os.environ.get("CELGRAPH_TOKEN"), help="token (default $CELGRAPH_TOKEN)")
    r.add_argument("--timeout", type=float, default=30.0, help="seconds per call (default 30)")
    r.set_defaults(func=cmd_remote)
    rs = r.add_subparsers(dest="remote_command", required=True)

    def add(name, func, help_):
        p = rs.add_parser(name, help=help_, parents=[common])
        p.set_defaults(remote_func=func)
        return p

    def watch_opts(p):
        p.add_argument("--no-progress", action="store_true", help="leave task_progress events out")
        p.add_argument("--wait-timeout", type=float, default=None, help="give up watching after this many s")

    p = add("nodes", r_nodes, "node type descriptors, one JSON line each")
    p.add_argument("types", nargs="*", help="only these types")
    for name, func, help_ in (("validate", r_validate, "validate a scene on the server (exit 2 if invalid)"),
                              ("submit", r_submit, "submit a scene as a job; --watch to follow it")):
        p = add(name, func, help_)
        p.add_argument("scene", help="scene.json (relative paths resolve against its folder on the server), or -")
        p.add_argument("--targets", help="comma-separated node or node.output names (default: end nodes)")
        p.add_argument("--frames", help="frame range, e.g. 1-24 (default: the scene's)")
        p.add_argument("--base-dir", help="folder on the server that relative paths resolve against")
        if name == "submit":
            p.add_argument("--workers", type=int, default=0, help="tasks at once inside the job")
            p.add_argument("--no-cache", action="store_true", help="recompute everything")
            p.add_argument("--label", help="free text shown in job listings (at most 256 characters)")
            p.add_argument("--watch", action="store_true", help="print the job's events until it finishes")
            watch_opts(p)
    p = add("status", r_status, "the job's record")
    p.add_argument("job")
    p = add("jobs", r_jobs, "the jobs the server knows, newest first")
    p.add_argument("--limit", type=int, default=0)
    p = add("watch", r_watch, "the job's events until it finishes (exit code by its final state)")
    p.add_argument("job")
    p.add_argument("--from", dest="from_seq", type=int, default=0, help="last seq already seen (default 0)")
    watch_opts(p)
    p = add("cancel", r_cancel, "cancel a queued or running job")
    p.add_argument("job")
    p = add("fetch", r_fetch, "copy an output file from the server (for clients without shared storage)")
    p.add_argument("job", help="the job (or - for a file of the server's store)")
    p.add_argument("path", help="a path from the job's outputs")
    p.add_argument("dest", help="destination file or folder")
    p = add("cache", r_cache, "the server's cache: du, ls, clear, gc")
    p.add_argument("action", choices=("du", "ls", "clear", "gc"))
    p.add_argument("--limit", type=int, default=0, help="ls: at most this many entries")
    p.add_argument("--force", action="store_true", help="clear even while jobs run; gc: allow --max-size 0")
    p.add_argument("--max-size", type=parse_size, help="gc: shrink to this size (500M, 20G)")
    p.add_argument("--older-than", type=parse_age, help="gc: drop entries unused this long (12h, 30d)")
    p = add("health", r_health, "the standard health check (exit 0 when SERVING)")
    p.add_argument("--service", default="", help="service name (default: the whole server)")
    add("info", r_info, "server version, limits, store and base folders, issue codes")

"""The `graph` command (also installed as `celgraph`).

Exit codes: 0 success · 1 a node failed while running · 2 the scene is invalid or the command line
is wrong · 130 cancelled (Ctrl-C / SIGTERM; finished work stays cached, nothing is half-written).
"""
from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import time
from pathlib import Path

from . import __version__
from .api import Graph
from .core import Cancelled, CelgraphError, GraphInvalid, Issue, atomic_path, registry, write_text
from .engine import CancelToken, DiskStore, Engine, default_cache_dir
from .engine.cache import DEFAULT_RAM_CACHE, parse_age, parse_size
from .engine.farm import farm_jobs
from .graph import parse_frames, resolve

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_CANCELLED = 0, 1, 2, 130


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def _print_issues(issues, as_json: bool) -> None:
    if as_json:
        _print_json({"valid": False, "issues": [i.to_dict() for i in issues]})
        return
    print(f"{len(issues)} problem{'s' if len(issues) != 1 else ''} found:", file=sys.stderr)
    for i in issues:
        print(f"  {i}", file=sys.stderr)


def _load(path: str):
    return Graph.load(path)


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


class _Progress:
    """Progress bar on a terminal, one line per finished task otherwise, JSON lines with --json."""

    def __init__(self, as_json: bool):
        self.as_json = as_json
        self.tty = sys.stderr.isatty() and not as_json
        self.bar = None
        self.total = 0
        self.done = 0

    def __call__(self, ev) -> None:
        if self.as_json:
            _print_json(ev.to_dict())
            return
        if ev.kind == "run_started":
            self.total = ev.data["compute"]
            cached = ev.data["cached"]
            msg = f"{self.total} task{'s' if self.total != 1 else ''} to compute, {cached} cached"
            if self.tty and self.total:
                from tqdm import tqdm
                self.bar = tqdm(total=self.total, unit="task", desc="celgraph", file=sys.stderr,
                                dynamic_ncols=True)
                self.bar.write(msg)
            else:
                print(msg, file=sys.stderr)
        elif ev.kind == "task_finished":
            self.done += 1
            if self.bar is not None:
                self.bar.set_postfix_str(f"{ev.node}@{ev.frame if ev.frame is not None else 'clip'}")
                self.bar.update(1)
            else:
                at = "clip" if ev.frame is None else ev.frame
                print(f"[{self.done}/{self.total}] {ev.node}@{at} {ev.seconds:.2f}s", file=sys.stderr, flush=True)
        elif ev.kind == "task_progress" and self.bar is not None:
            self.bar.set_postfix_str(f"{ev.node} {ev.progress * 100:.0f}% {ev.message}"[:60])
        elif ev.kind == "task_failed":
            line = f"FAILED {ev.message}"
            (self.bar.write(line) if self.bar is not None else print(line, file=sys.stderr))
        elif ev.kind == "run_finished" and self.bar is not None:
            self.bar.close()


def cmd_run(args) -> int:
    try:
        graph = _load(args.scene)
        frames = parse_frames(args.frames) if args.frames is not None else None   # "" is an error, not "all"
    except GraphInvalid as e:
        _print_issues(e.issues, args.json)
        return EXIT_INVALID
    except ValueError as e:      # a malformed --frames: reported like any other problem (JSON too)
        _print_issues([Issue("bad_frames", f"--frames: {e}", field="frames")], args.json)
        return EXIT_INVALID
    if args.threads is not None and args.executor != "local":
        print("error: --threads sets the local executor's budget; Dask workers share their machine's cores "
              "among themselves (docs/engine.md)", file=sys.stderr)
        return EXIT_INVALID
    targets = [t.strip() for t in args.targets.split(",") if t.strip()] if args.targets else None
    engine = Engine(args.cache_dir, use_disk_cache=not args.no_cache, ram_bytes=args.ram_cache)
    cancel = CancelToken()
    signal.signal(signal.SIGTERM, lambda *_: cancel.cancel())      # farm managers stop jobs this way
    progress = _Progress(args.json)
    executor = None
    try:
        if args.executor != "local":
            from .engine.distributed import executor_from_cli      # loads dask
            executor = executor_from_cli(args.executor, args.scheduler, args.workers)
        result = engine.run(graph, targets=targets, frames=frames, workers=args.workers,
                            use_cache=not args.no_cache, on_event=progress, cancel=cancel,
                            check=args.check, raise_on_error=False, executor=executor, threads=args.threads)
    except CelgraphError as e:  # the executor cannot reach its cluster or store
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if executor is not None:
            executor.close()
    if result.status == "invalid":
        _print_issues(result.error.issues, args.json)
        return EXIT_INVALID
    if result.status == "cancelled" or isinstance(result.error, Cancelled):
        if not args.json:
            print("cancelled: finished tasks are cached; no output was half-written", file=sys.stderr)
        return EXIT_CANCELLED
    if result.error is not None:
        if not args.json:
            print(f"error: {result.error}", file=sys.stderr)
        return EXIT_FAILED
    if not args.json:
        print(f"done in {result.seconds:.2f}s: {result.computed} computed, {result.cached} cached",
              file=sys.stderr)
    return EXIT_OK


def cmd_plan(args) -> int:
    try:
        graph = _load(args.scene)
        frames = parse_frames(args.frames) if args.frames is not None else None
        targets = [t.strip() for t in args.targets.split(",") if t.strip()] if args.targets else None
        if args.chunk < 1:
            raise ValueError("--chunk must be at least 1")
        jobs = farm_jobs(resolve(graph, registry, targets, frames), args.scene, args.chunk, cache_dir=args.cache_dir)
    except GraphInvalid as e:
        _print_issues(e.issues, True)
        return EXIT_INVALID
    except ValueError as e:
        print(f"graph plan: {e}", file=sys.stderr)
        return EXIT_INVALID
    _print_json({"scene": args.scene, "jobs": jobs})
    return EXIT_OK


def cmd_validate(args) -> int:
    try:
        graph = _load(args.scene)
        resolve(graph, registry)
        issues = []
    except GraphInvalid as e:
        issues = e.issues
    if issues:
        _print_issues(issues, args.json)
        return EXIT_INVALID
    if args.json:
        _print_json({"valid": True, "issues": []})
    else:
        print(f"{args.scene}: valid ({len(graph.nodes)} nodes, frames {graph.frames})")
    return EXIT_OK


def cmd_nodes(args) -> int:
    if args.type:
        t = registry.get(args.type)
        if t is None:
            print(f"no node type '{args.type}' (see `graph nodes`)", file=sys.stderr)
            return EXIT_INVALID
        types = [t]
    else:
        types = registry.all()
    if args.json:
        _print_json([t.describe() for t in types] if not args.type else types[0].describe())
        return EXIT_OK
    if not args.type:
        width = max(len(t.name()) for t in types)
        for t in types:
            first = t.doc().splitlines()[0] if t.doc() else ""
            print(f"{t.name():<{width}}  {t.category:<8} {first}")
        return EXIT_OK
    d = types[0].describe()
    print(f"{d['name']} ({d['id']} v{d['version']}, {d['category']}, {d['scope']} scope, device {d['device']})")
    print(f"\n{d['doc']}\n")
    for title, ports in (("inputs", d["inputs"]), ("outputs", d["outputs"])):
        print(f"{title}:")
        for p in ports or [{"name": "(none)", "type": "", "help": ""}]:
            opt = " (optional)" if p.get("optional") else ""
            print(f"  {p['name']:<12} {p['type']:<10}{opt} {p['help']}")
    print("params:")
    for p in d["params"] or [{"name": "(none)", "kind": "", "default": "", "help": ""}]:
        rng = ""
        if "choices" in p:
            rng = f" one of {p['choices']}"
        elif "min" in p or "max" in p:
            rng = f" [{p.get('min', '')}..{p.get('max', '')}]"
        print(f"  {p['name']:<12} {p['kind']:<7} default {p['default']!r}{rng}  {p['help']}")
    return EXIT_OK


def cmd_cache(args) -> int:
    store = DiskStore(args.cache_dir or default_cache_dir())
    if args.action == "du":
        n, size = store.du()
        if args.json:
            _print_json({"root": str(store.root), "entries": n, "bytes": size})
        else:
            print(f"{store.root}: {n} entries, {_human(size)}")
    elif args.action == "ls":
        entries = sorted(store.entries(), key=lambda e: -e.last_used)
        for e in entries:
            made = e.meta.get("made_by", {})
            row = {"key": e.key, "bytes": e.bytes, "last_used": e.last_used, "type": made.get("type"),
                   "node": made.get("node"), "frame": made.get("frame")}
            if args.json:
                _print_json(row)
            else:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used))
                frame = "clip" if row["frame"] is None else row["frame"]
                print(f"{e.key[:16]}  {_human(e.bytes):>10}  {when}  {row['type']} ({row['node']}@{frame})")
    elif args.action == "clear":
        n = store.clear()
        if args.json:
            _print_json({"root": str(store.root), "removed": n})
        else:
            print(f"removed {n} entries from {store.root}")
    elif args.action == "gc":
        if args.max_size is None and args.older_than is None:
            print("graph cache gc: give --max-size and/or --older-than", file=sys.stderr)
            return EXIT_INVALID
        n, freed = store.gc(args.max_size, args.older_than)
        if args.json:
            _print_json({"root": str(store.root), "removed": n, "bytes": freed})
        else:
            print(f"removed {n} entries ({_human(freed)}) from {store.root}")
    return EXIT_OK


def cmd_synth(args) -> int:
    """Write a procedural clip and its ground truth: images to look at, arrays to compute with."""
    import numpy as np
    from .models.flow_viz import flow_to_color
    from .nodes.io import write_image
    from .synth import make_clip
    m = re.fullmatch(r"(\d+)[x×](\d+)", args.size)
    if not m:
        print(f"graph synth: --size must be WIDTHxHEIGHT, got {args.size!r}", file=sys.stderr)
        return EXIT_INVALID
    out = Path(args.out)
    clip = make_clip(args.seed, width=int(m[1]), height=int(m[2]), n_frames=args.frames,
                     n_sprites=args.sprites or None, deform=not args.no_deform)
    for i, fr in enumerate(clip.frames, start=1):
        write_image(out / f"color.{i:04d}.png", fr["color"])
        write_image(out / f"fill.{i:04d}.png", fr["fill"])
        write_image(out / f"lines.{i:04d}.png", 1.0 - fr["lines"])       # black ink on white paper
        write_image(out / f"flow_fw.{i:04d}.exr", fr["flow_fw"], "float")
        write_image(out / f"flow_bw.{i:04d}.exr", fr["flow_bw"], "float")
        write_image(out / f"flow_fw_preview.{i:04d}.png", flow_to_color(fr["flow_fw"]))
    write_image(out / "plate.png", clip.plate)
    arrays = clip.to_dict()
    meta = json.loads(str(arrays.pop("meta")))
    with atomic_path(out / "groundtruth.npz") as tmp:    # a unique temp name (two writers never share one)
        np.savez_compressed(tmp, **arrays)
    write_text(out / "meta.json", json.dumps({"seed": args.seed, "frames": args.frames, "size": args.size,
                                               "files": {"color.####.png": "colour frames",
                                                         "fill.####.png": "colour without lines",
                                                         "lines.####.png": "line layer, black ink on white",
                                                         "flow_fw/bw.####.exr": "exact flow to next/previous frame",
                                                         "groundtruth.npz": "every array (see docs/synth.md)"},
                                               "clip": meta}, indent=2, default=str))
    print(f"wrote {len(clip.frames)} frames of seed {args.seed} with ground truth to {out}")
    return EXIT_OK


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="graph", description="celgraph: node graphs for 2D animation production.",
                                epilog="exit codes: 0 ok, 1 a node failed, 2 invalid scene or usage, 130 cancelled")
    p.add_argument("--version", action="version", version=f"celgraph {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a scene (all end nodes, or --targets)")
    r.add_argument("scene")
    r.add_argument("--frames", help="frames to render, e.g. 1-24, 1-24x2, 5,7,9 (default: the scene's)")
    r.add_argument("--targets", help="comma-separated nodes to compute: node (all its outputs) or node.output "
                                      "(that one alone; default: every end node)")
    r.add_argument("--cache-dir", help="disk cache folder (default $CELGRAPH_CACHE or ~/.cache/celgraph)")
    r.add_argument("--no-cache", action="store_true", help="recompute everything; read and write no cache")
    r.add_argument("--workers", type=_positive, default=None,
                   help="tasks run at once, at least 1 (default min(4, cores)); with dask-local, worker processes")
    r.add_argument("--threads", type=_positive, default=None,
                   help="threads each task's libraries may use (OpenCV, torch, OpenImageIO, OpenMP), local executor; "
                        "default cores ÷ workers (one task alone: the whole machine); --workers 1 --threads 1 is one core")
    r.add_argument("--ram-cache", type=parse_size, default=parse_size(DEFAULT_RAM_CACHE), metavar="SIZE",
                   help=f"bound of the in-memory result cache, e.g. 500M, 8G (default {DEFAULT_RAM_CACHE}; 0: none)")
    r.add_argument("--executor", choices=("local", "dask", "dask-local"), default="local",
                   help="local threads (default), a Dask scheduler (--scheduler), or a local Dask cluster")
    r.add_argument("--scheduler", help="Dask scheduler address for --executor dask, e.g. tcp://farm:8786")
    r.add_argument("--json", action="store_true", help="one JSON event per line on stdout")
    r.add_argument("--check", action="store_true",
                   help="recompute cache hits and compare with the cache (debugging a node's hash)")
    r.set_defaults(func=cmd_run)

    pl = sub.add_parser("plan", help="farm chunking: print the jobs (commands + dependencies) as JSON")
    pl.add_argument("scene")
    pl.add_argument("--chunk", type=int, default=10, help="frames per chunk (default 10)")
    pl.add_argument("--frames", help="frames to render (default: the scene's)")
    pl.add_argument("--targets", help="comma-separated node or node.output names (default: end nodes)")
    pl.add_argument("--cache-dir", help="shared cache folder every job uses (default: each machine's)")
    pl.set_defaults(func=cmd_plan)

    v = sub.add_parser("validate", help="check a scene; exit 2 with every problem listed")
    v.add_argument("scene")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=cmd_validate)

    n = sub.add_parser("nodes", help="list node types, or describe one")
    n.add_argument("type", nargs="?")
    n.add_argument("--json", action="store_true")
    n.set_defaults(func=cmd_nodes)

    c = sub.add_parser("cache", help="inspect or clean the disk cache")
    c.add_argument("action", choices=("du", "ls", "clear", "gc"))
    c.add_argument("--cache-dir")
    c.add_argument("--max-size", type=parse_size, help="gc: shrink to this size, least recently used first")
    c.add_argument("--older-than", type=parse_age, help="gc: drop entries unused for this long (12h, 30d)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_cache)

    y = sub.add_parser("synth", help="write a procedural cartoon clip and its ground truth")
    y.add_argument("out", help="output folder")
    y.add_argument("--seed", type=int, default=0)
    y.add_argument("--frames", type=int, default=16)
    y.add_argument("--size", default="456x256", help="WIDTHxHEIGHT (default 456x256)")
    y.add_argument("--sprites", type=int, default=0, choices=range(0, 5), help="1-4; 0 = random")
    y.add_argument("--no-deform", action="store_true", help="rigid sprites (transforms then map exactly)")
    y.set_defaults(func=cmd_synth)

    for extra in _EXTRA_COMMANDS:
        extra(sub)
    _train_commands(sub, sys.argv[1:] if argv is None else argv)
    return p


_EXTRA_COMMANDS: list = []   # other modules (synth, train, serve) add their sub-commands here


def _service_commands(sub) -> None:
    from .service.bridge import add_parsers      # `serve` and `remote`; grpc loads only when they run
    add_parsers(sub)


_EXTRA_COMMANDS.append(_service_commands)


def _hosts_commands(sub) -> None:
    from .service.hostmenu import add_parser     # `graph hosts install`
    add_parser(sub)


_EXTRA_COMMANDS.append(_hosts_commands)


TRAINERS = ("celgraph.train.gapfill:add_gapfill_train_parser", "celgraph.train.sketch:add_sketch_train_parser",
            "celgraph.train.colorize:add_colorize_train_parser")


def _train_commands(sub, argv: list[str]) -> None:
    """`graph train flow|gapfill|sketch|colorize ...`. The trainers import torch, so they are only
    loaded when the command is `train` — every other command stays quick to start."""
    if argv[:1] != ["train"]:
        t = sub.add_parser("train", help="train the project's networks on synthetic data "
                                         "(flow, gapfill, sketch, colorize; see graph train -h)")
        t.add_argument("what", nargs=argparse.REMAINDER)
        return
    import importlib
    from .train.cli import add_train_parser
    extra = []
    for spec in TRAINERS:
        module, func = spec.split(":")
        extra.append(getattr(importlib.import_module(module), func))
    add_train_parser(sub, extra=extra)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

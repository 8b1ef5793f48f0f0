"""Planning cost, measured in CPU time so that other jobs on a shared machine disturb it little:
the bench/engine.py graph (100 nodes × 24 frames = 2,400 tasks) resolved and planned, and a fully
cached re-run (fresh Engine on a filled disk store: resolve, plan, a cache lookup per task).
Minimum over repeats of time.process_time().

    python bench/plan_speed.py [--repeats 15] [--out bench/results/plan_speed.md]

To compare two trees, run each tree's copy with PYTHONPATH pointing at that tree.
"""
from __future__ import annotations

import argparse
import gc
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import celgraph as cg
from engine import build            # bench/engine.py: the same graph (bench/ is this script's folder)


def cpu(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "plan_speed.md"))
    args = ap.parse_args(argv)
    g, _ = build(args.nodes, args.frames, 16)
    tmp = Path(tempfile.mkdtemp(prefix="celgraph-plan-"))
    try:
        no_store = cg.Engine(use_disk_cache=False)
        plan_s = cpu(lambda: no_store.plan(g, use_cache=False), args.repeats)
        n = len(no_store.plan(g, use_cache=False).tasks)
        cg.Engine(tmp / "cache").run(g, workers=1)
        cached_s = cpu(lambda: cg.Engine(tmp / "cache").run(g, workers=1), args.repeats)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = [("resolve + plan (no cache)", f"{plan_s * 1e3:.1f} ms", f"{plan_s / n * 1e6:.1f} µs"),
            ("fully cached re-run (fresh engine, disk store)", f"{cached_s * 1e3:.1f} ms", f"{cached_s / n * 1e6:.1f} µs")]
    text = (f"# bench/plan_speed.py\n\n`python bench/plan_speed.py` — {time.strftime('%Y-%m-%d')}, "
            f"{platform.machine()}, Python {platform.python_version()}; {args.nodes} nodes × {args.frames} frames = "
            f"{n} tasks; CPU time, best of {args.repeats}.\n\n| measure | CPU time | per task |\n|---|---|---|\n"
            + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows) + "\n")
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

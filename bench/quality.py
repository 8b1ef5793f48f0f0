"""The quality benchmark every node is judged by: fixed seeded synthetic clips with exact ground
truth (celgraph.synth), each node type that exists run through the engine as a user would run it,
the classical baseline beside it.

    python bench/quality.py [--quick] [--suite flow|decomposition|gapfill|sketch|colorize] [--clip TEXT]
                            [--out bench/results/quality.md]

Node types that do not exist yet show as "missing" (never as zero). --quick uses fewer and smaller
clips (a smoke test; the committed table is the full run). Each suite is a module of
bench/qualitybench/; the metrics they share are in celgraph.synth.metrics.
"""
from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import celgraph as cg
from qualitybench.colorize import colorize_suite
from qualitybench.common import FULL, QUICK, Row, merge_rows, read_rows, table
from qualitybench.decomposition import decomposition_suite
from qualitybench.flow import flow_suite
from qualitybench.gapfill import gapfill_suite
from qualitybench.sketch import sketch_suite

SUITES = [flow_suite, decomposition_suite, gapfill_suite, sketch_suite, colorize_suite]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "quality.md"))
    ap.add_argument("--suite", action="append", choices=[f.__name__.removesuffix("_suite") for f in SUITES],
                    help="run only this suite (repeatable); its rows replace the same task's rows in --out")
    ap.add_argument("--clip", default="", help="decomposition: only the clips whose name contains this text, e.g. "
                                                "'detailed' or 'deform off' (for iterating; the table is the full run)")
    ap.add_argument("--plate-fill", default="shiftmap", choices=("shiftmap", "pushpull"),
                    help="decomposition: SpriteLearn's plate_fill (pushpull: the fill before v15, for comparison; "
                         "its rows are labelled with it)")
    args = ap.parse_args(argv)
    cfg = replace(QUICK if args.quick else FULL, clip=args.clip, plate_fill=args.plate_fill)
    suites = [f for f in SUITES if not args.suite or f.__name__.removesuffix("_suite") in args.suite]
    tmp = Path(tempfile.mkdtemp(prefix="celgraph-quality-"))
    try:
        engine = cg.Engine(tmp / "cache")
        rows: list[Row] = []
        for suite in suites:
            t0 = time.perf_counter()
            rows += suite(cfg, engine)
            print(f"{suite.__name__}: {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(table(rows))
    if args.suite and Path(args.out).is_file():
        rows = merge_rows(read_rows(Path(args.out)), rows, whole_task=bool(args.clip))
    text = table(rows)
    header = (f"# bench/quality.py\n\n`python bench/quality.py{' --quick' if args.quick else ''}` — "
              f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {platform.python_version()}, CPU only. "
              "Seeded synthetic clips from celgraph.synth (exact ground truth); \"missing\" = the node type "
              "does not exist yet.\n\n")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(header + text + "\n")
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

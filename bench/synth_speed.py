"""Speed of the procedural data generator (celgraph.synth) on this machine.

    python bench/synth_speed.py [--quick]

Prints a markdown table of samples per second and writes it to bench/results/synth_speed.md.
Clip rates are whole-clip wall time / frames (plate painting and sprite canvases amortised over
the clip), with and without the flow/occlusion ground truth.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from celgraph.synth import degrade_lines, degrade_photo, make_clip, make_lineart  # noqa: E402


def timed(fn, reps):
    ts = []
    for i in range(reps):
        t0 = time.perf_counter()
        fn(i)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)), ts


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "synth_speed.md"))
    a = ap.parse_args(argv)
    q = a.quick
    rows = []

    def add(what, res, unit_count, reps, fn):
        med, ts = timed(fn, reps)
        rows.append((what, res, unit_count / med, med / unit_count * 1000.0, reps))
        print(f"{what:<44} {res:>10}  {unit_count / med:8.2f}/s  ({med / unit_count * 1000:7.1f} ms each)", flush=True)

    for (w, h), nf, reps in (((456, 256), 16, 2 if q else 4), ((1920, 1080), 4, 1 if q else 2)):
        res = f"{w}x{h}"
        add(f"clip frames, full GT incl. flow ({nf}-frame clips)", res, nf, reps,
            lambda i, w=w, h=h, nf=nf: make_clip(1000 + i, width=w, height=h, n_frames=nf))
        add(f"clip frames, no flow ({nf}-frame clips)", res, nf, reps,
            lambda i, w=w, h=h, nf=nf: make_clip(1000 + i, width=w, height=h, n_frames=nf, flow=False))
    for (w, h), reps in (((456, 256), 4 if q else 10), ((1920, 1080), 2 if q else 4)):
        res = f"{w}x{h}"
        add("line-art samples (make_lineart)", res, 1, reps, lambda i, w=w, h=h: make_lineart(2000 + i, w, h))
        samples = [make_lineart(3000 + i, w, h) for i in range(reps)]
        add("GapFill pairs (degrade_lines on a sample)", res, 1, reps,
            lambda i: degrade_lines(samples[i], i))
        img = samples[0]["color"]
        add("Sketch inputs (degrade_photo, all on)", res, 1, reps,
            lambda i: degrade_photo(img, i, screentone=0.5))
    cpu = platform.processor() or platform.machine()
    lines = ["# celgraph.synth generation speed", "",
             f"Machine: {os.cpu_count()} CPU cores ({cpu}), OpenCV threads {cv2.getNumThreads()}, "
             f"numpy {np.__version__}, OpenCV {cv2.__version__}; `python bench/synth_speed.py`"
             + (" --quick" if q else "") + ".", "",
             "Clip rates = clip wall time / frames (plate + sprite canvases amortised over the clip).", "",
             "| what | resolution | per second | ms each | runs (median) |",
             "|---|---|---:|---:|---:|"]
    for what, res, rate, ms, reps in rows:
        lines.append(f"| {what} | {res} | {rate:.2f} | {ms:.1f} | {reps} |")
    text = "\n".join(lines) + "\n"
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)
    print()
    print(text)


if __name__ == "__main__":
    main()

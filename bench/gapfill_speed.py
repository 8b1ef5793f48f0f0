"""Time per 1920×1080 frame of each GapFill method on the CPU (and CUDA fp16 when present).

    python bench/gapfill_speed.py [--frames 8] [--threads 2] [--methods classical,model]
                                  [--real /work/shared/real]

Two views of the same work: the method called directly (what the node computes), and a
``--frames``-frame sequence through the engine with 1 and 2 workers (what `graph run` costs,
with the cache writes; ``--wanted``: the request names GapFill's lines, as a next node would, or
asks for every output). With ``--real`` (measurement only; nothing of it is kept) the engine rows
are repeated on real production line art: the 4 `paintbucket/laughing_girl` drawings (1600²) with
gaps cut into them (synth.gaps.cut_gaps), cropped to 1080 rows and padded with paper to 1920×1080,
as PNGs through Read → ToLineArt → GapFill (only GapFill timed). Each engine row gives the wall
time and the CPU time of this process per frame (user + system, all threads): on a machine other
jobs share, wall time measures them too. Writes bench/results/gapfill_speed.md. Goals: issue #6,
≤ 0.5 s per 1080p frame for the model on 2 CPU cores; issue #21, ≤ 0.25 s for the default method
(classical) through the engine on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import celgraph as cg
from celgraph.synth.gaps import cut_gaps
from celgraph.engine import register, registry
from celgraph.models import gapfill as gf
from celgraph.models.autoclose import autoclose
from celgraph.nodes.io import read_image, write_image
from celgraph.nodes.lines import bundled_weights
from qualitybench.gapfill import BenchDegradedLines, gapfill_sample     # bench/ is the script's folder

FIRST_SEED = 500          # not the quality benchmark's seeds


def direct_rows(frames: list[np.ndarray], device: str) -> list[tuple[str, str, float]]:
    rows = []
    if device == "cpu":
        rows.append(("classical autoclose", "cpu", _median(lambda f: autoclose(f, max_gap=12), frames)))
    for net, label in (("gapunet", "GapUNet"), ("lite", "lite U-Net")):
        model = gf.fuse_for_inference(gf.load_weights(bundled_weights(net), device=device)[0])
        modes = ["windows", "tiles"] + (["whole"] if device == "cuda" else [])
        for mode in modes:
            for half in ([False, True] if device == "cuda" else [False]):
                t = _median(lambda f: gf.close_gaps(model, f, inference=mode, device=device, half=half), frames)
                rows.append((f"{label}, {mode}{', fp16' if half else ''}", device, t))
                print(rows[-1], file=sys.stderr)
    return rows


def _median(fn, frames) -> float:
    fn(frames[0])                                        # warm-up: allocations, kernels
    times = []
    for f in frames:
        t0 = time.perf_counter()
        fn(f)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(engine, g, frames, workers, wanted) -> tuple[float, float]:
    """(wall s, CPU s) per frame of GapFill over `frames`, its input already cached."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    engine.run(g, targets=[target(wanted)], frames=frames, workers=workers)
    return (time.perf_counter() - t0) / len(frames), (cpu_seconds() - c0) / len(frames)


def target(wanted: str) -> str:
    """The request: GapFill's closed line art alone (what a scene's next node reads) or every output."""
    return "fill" if wanted == "all" else f"fill.{wanted}"


def label(method: str, workers: int, wanted: str) -> str:
    return (f"GapFill {method} through the engine, {workers} worker{'s' * (workers > 1)}, "
            f"{'every output' if wanted == 'all' else wanted + ' read'}")


def engine_rows(n: int, methods: list[str], wanted: str) -> list[tuple[str, str, float, float]]:
    if registry.get(BenchDegradedLines.id) is None:
        register(BenchDegradedLines)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        engine = cg.Engine(Path(tmp) / "cache")
        for method in methods:
            for workers in (1, 2):
                g = cg.Graph(frames=f"1-{n}")
                src = g.add(BenchDegradedLines.id, name="src", seed=FIRST_SEED, width=1920, height=1080)
                # confidence differs per run only in the 4th decimal: a new cache key, the same result
                g.add("GapFill", name="fill", lines=src["lines"], method=method, device="cpu",
                      confidence=0.5 + 1e-4 * workers)
                engine.run(g, targets=["src"])
                engine.run(g, targets=["fill"], frames=[1], workers=1)          # model load, warm-up
                rows.append((label(method, workers, wanted), "cpu",
                             *timed(engine, g, list(range(2, n + 1)), workers, wanted)))
                print(rows[-1], file=sys.stderr)
    return rows


def real_rows(data: Path, methods: list[str], wanted: str) -> list[tuple[str, str, float, float]]:
    """The engine rows on the laughing_girl drawings, gaps cut, as 1920×1080 PNGs (see the doc)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(4):
            ink = read_image(str(data / "paintbucket" / "laughing_girl" / "line" / f"{i:04d}.png"))[..., 3] >= 0.5
            lines = cut_gaps(ink, seed=i)["lines"]
            y0 = (lines.shape[0] - 1080) // 2
            page = np.zeros((1080, 1920), np.float32)
            page[:, 160:1760] = lines[y0:y0 + 1080]
            write_image(Path(tmp) / f"page.{i + 1:04d}.png", np.repeat(1.0 - page[..., None], 3, 2), "8")
        engine = cg.Engine(Path(tmp) / "cache")
        for method in methods:
            for workers in (1, 2):
                g = cg.Graph(frames="1-4", base_dir=tmp)
                src = g.add("Read", name="src", path="page.####.png")
                ink = g.add("ToLineArt", name="ink", image=src["image"])
                g.add("GapFill", name="fill", lines=ink["lines"], method=method, device="cpu",
                      confidence=0.5 + 1e-4 * workers)
                engine.run(g, targets=["ink"])
                engine.run(g, targets=["fill"], frames=[1], workers=1)
                rows.append((label(method, workers, wanted) + ", real line art (laughing_girl, cut)", "cpu",
                             *timed(engine, g, [2, 3, 4], workers, wanted)))
                print(rows[-1], file=sys.stderr)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", default="classical,model", help="GapFill methods of the engine rows")
    ap.add_argument("--direct", action=argparse.BooleanOptionalAction, default=True,
                    help="the rows calling the methods directly")
    ap.add_argument("--wanted", default="lines", choices=("lines", "all"),
                    help="engine rows: the request — fill.lines (what a next node reads; GapFill then skips "
                         "`added` and the preview) or every output (the target `fill`)")
    ap.add_argument("--real", default="", help="the real-material folder (/work/shared/real) for the real rows")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "gapfill_speed.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    frames = [gapfill_sample(FIRST_SEED + i, 1920, 1080)["lines"] for i in range(args.frames)]
    methods = args.methods.split(",")
    rows = []
    if args.direct:
        rows += [(m, d, t, None) for m, d, t in direct_rows(frames, "cpu")]
        if torch.cuda.is_available():
            rows += [(m, d, t, None) for m, d, t in direct_rows(frames, "cuda")]
    rows += engine_rows(args.frames, methods, args.wanted)
    if args.real:
        rows += real_rows(Path(args.real), methods, args.wanted)
    lines = ["| method | device | s / 1920×1080 frame (wall) | CPU s / frame |", "|---|---|---:|---:|"]
    lines += [f"| {m} | {d} | {t:.3f} | {'' if c is None else f'{c:.3f}'} |" for m, d, t, c in rows]
    table = "\n".join(lines)
    print(table)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU available in this run"
    header = (f"# bench/gapfill_speed.py\n\n`python bench/gapfill_speed.py` — {time.strftime('%Y-%m-%d')}, "
              f"{platform.machine()}, torch {torch.__version__}, {args.threads} CPU threads, {gpu}. "
              f"Degraded synthetic line art (seeds {FIRST_SEED}-{FIRST_SEED + args.frames - 1}); direct rows: median "
              "over the frames after a warm-up; engine rows: frames 2-N of a sequence after frame 1 (model "
              "load), cache writes included (a GapFill frame's outputs are 41 MB of float32: lines 8, added 8, "
              "RGB preview 25; asked for `fill.lines` the engine computes and stores the lines alone). "
              f"Load average {os.getloadavg()[0]:.1f} at the end (this machine's other jobs stretch the wall "
              "times; the CPU column is this process's user + system time per frame).\n\n")
    Path(args.out).write_text(header + table + "\n")
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

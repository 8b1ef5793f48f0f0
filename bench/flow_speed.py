"""Time per frame pair of each flow backend at 456×256 and 1024×436 (CPU; CUDA too when present).

    python bench/flow_speed.py [--repeats 3] [--threads 2]

Two tables: one isolated pair through ``raft_flow`` / ``dis_flow``, and the FlowRAFT node through
the engine on a 16-frame 456×256 clip with ToonDecompose's offsets (−3, −1, +1, +3), where the
pairs share each frame's encoder outputs (wall time of the run / distinct pairs, cache writes
included). RAFT timings do not depend on the weights, so random-initialised networks stand in
when no checkpoint is at hand. Writes bench/results/flow_speed.md. Goal (issue #4): RAFT-small
≤ 0.2 s per 456×256 pair on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from celgraph.models.flow_classical import dis_flow
from celgraph.models.raft import raft_flow, raft_large, raft_small
from celgraph.synth import make_clip

SIZES = [(456, 256), (1024, 436)]
SWEEP = (8, 6, 5, 4)       # RAFT-small refinement iterations also timed: the time / accuracy trade-off


def timed(fn, repeats: int) -> float:
    fn()                                  # warm-up (allocations, lazy init)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def raft_gflop(model, w: int, h: int, iters: int) -> float:
    """Floating-point operations (×1e9) of one RAFT pair at w×h: the encoders and correlation
    volume once, plus the same update-block cost per iteration (counted with torch's
    FlopCounterMode at 1 and 2 iterations, then extrapolated)."""
    from torch.utils.flop_counter import FlopCounterMode
    dev = next(model.parameters()).device
    x = torch.zeros(1, 3, (h + 7) // 8 * 8, (w + 7) // 8 * 8, device=dev)
    counts = []
    for n in (1, 2):
        with torch.inference_mode(), FlopCounterMode(display=False) as fc:
            model(x, x, iters=n, test_mode=True)
        counts.append(fc.get_total_flops())
    return (counts[0] + (iters - 1) * (counts[1] - counts[0])) / 1e9


def clip_rows(threads: int, sweep=(12, 8, 6, 5, 4), n_frames: int = 16) -> list[tuple]:
    """(backend, iterations, distinct pairs, s / pair) for FlowRAFT over a synthetic clip."""
    import tempfile

    import celgraph as cg
    from celgraph.models.raft import save_safetensors
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        weights = save_safetensors(raft_small(), Path(tmp) / "random_small.safetensors")
        runs = [("dis", {"backend": "dis"})] + [
            ("raft_small", {"backend": "raft_small", "weights": str(weights), "iters": i}) for i in sweep]
        for n, (name, params) in enumerate(runs):
            g = cg.Graph(frames=f"1-{n_frames}")
            clip = g.add("SynthClip", name="clip", seed=5, width=456, height=256)
            g.add("FlowRAFT", name="flow", image=clip["image"], **params)
            engine = cg.Engine(Path(tmp) / f"cache{n}")
            engine.run(g, targets=["clip"])                       # frames rendered and cached first
            t0 = time.perf_counter()
            engine.run(g, targets=["flow"])
            seconds = time.perf_counter() - t0
            pairs = sum(1 <= f + k <= n_frames for f in range(1, n_frames + 1) for k in (-3, -1, 1, 3))
            rows.append((name, params.get("iters", "—"), pairs, seconds / pairs))
            print(rows[-1], file=sys.stderr)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=12)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "flow_speed.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {"raft_small": raft_small().eval(), "raft": raft_large().eval()}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for w, h in SIZES:
        clip = make_clip(5, width=w, height=h, n_frames=2, flow=False)
        a, b = clip.frames[0]["color"], clip.frames[1]["color"]
        for preset in ("fast", "medium", "fine"):
            rows.append((f"{w}×{h}", f"dis {preset}", "cpu", timed(lambda: dis_flow(a, b, preset=preset),
                                                                 args.repeats), None))
        for name, model in models.items():
            for dev in devices:
                model.to(dev)
                for iters in ([args.iters] + [i for i in SWEEP if i != args.iters] if name == "raft_small"
                              else [args.iters]):
                    rows.append((f"{w}×{h}", f"{name} ({iters} iters)", dev,
                                 timed(lambda: raft_flow(model, a, b, iters=iters, device=None), args.repeats),
                                 raft_gflop(model, w, h, iters)))
                    print(rows[-1], file=sys.stderr)
    lines = ["| size | backend | device | s / pair | GFLOP / pair | GFLOP/s |", "|---|---|---|---:|---:|---:|"]
    lines += [f"| {s} | {n} | {d} | {t:.3f} | " + (f"{g:.1f} | {g / t:.0f} |" if g else "— | — |")
              for s, n, d, t, g in rows]
    clip = clip_rows(args.threads)
    lines += ["", "FlowRAFT node through the engine, 16-frame 456×256 synthetic clip, offsets −3, −1, +1, +3 "
              "(pairs share each frame's encoder outputs; disk cache on):", "",
              "| backend | iterations | distinct pairs | s / pair |", "|---|---:|---:|---:|"]
    lines += [f"| {n} | {i} | {p} | {t:.3f} |" for n, i, p, t in clip]
    table = "\n".join(lines)
    print(table)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU available in this run"
    header = (f"# bench/flow_speed.py\n\n`python bench/flow_speed.py` — {time.strftime('%Y-%m-%d')}, "
              f"{platform.machine()}, torch {torch.__version__}, {args.threads} CPU threads, {gpu}. "
              f"Median of the repeats after one warm-up; random-initialised RAFT weights (timing does not "
              f"depend on them). Load average {os.getloadavg()[0]:.1f} at the end: other processes on the cores "
              "slow torch's threads far more than OpenCV's.\n\n")
    Path(args.out).write_text(header + table + "\n")
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

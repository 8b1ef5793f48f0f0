"""torch against ONNX Runtime on the CPU, per network and size, called directly and through the engine.

    python bench/accel.py [--threads 1,2] [--reps 3] [--frames 4] [--only raft]

Networks and sizes (issue 21): GapFill (GapUNet, default `windows` inference) on 1920×1080 degraded
line art; Sketch U-Net on a 1920×1080 colour page; pix2pix (Colorize `model`) at 512²; RAFT-small
(bundled weights, 8 iterations) and RAFT (random weights — no large checkpoint ships — 12
iterations) on 456×256 frame pairs. Direct rows: the model's own inference function (close_gaps,
sketch_unet.predict, pix2pix.colorize, raft_flow) with ``net=`` an ONNX Runtime session, median of
``--reps`` alternating calls after a warm-up, at each ``--threads`` count (torch and ORT alike); the
max |torch − ORT| of those outputs is reported. Engine rows: a ``--frames``-frame scene with the
node's `runtime` param set, 1 worker, the fastest of frames 2..N (frame 1: model load, export,
warm-up), cache writes included, the two runtimes alternating frame by frame. Clip rows (RAFT):
the pairs t→t+1 of a 5-frame 456×256 clip as FlowRAFT computes them (RAFT-small), torch with its per-frame
feature cache against ONNX Runtime's encoder and update graphs with the same cache (each frame
encoded once), per pair. ``--only raft`` runs the RAFT rows alone.
Writes bench/results/accel.md; the `auto` table in celgraph/nodes/modelfiles.py is read off it.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import celgraph as cg
from celgraph import colorspace as cs
from celgraph.core.atomic import write_text
from celgraph.engine import Image, Int, NodeType, Out, register, registry
from celgraph.models import accel, gapfill as gf, pix2pix, sketch_unet
from celgraph.models.raft import FeatureCache, load_raft, raft_flow, raft_large
from celgraph.nodes.modelfiles import bundled_file
from celgraph.synth.clip import make_clip
from celgraph.synth.lineart import make_lineart
from qualitybench.gapfill import BenchDegradedLines, gapfill_sample     # bench/ is the script's folder

SEED = 700              # not the quality benchmark's seeds


def _paired(fa, fb, reps: int) -> tuple[float, float, object, object]:
    """Fastest of ``reps`` timed calls of each, alternating a, b, a, b … after a warm-up of each, so
    both see the same load on a shared machine; the minimum is the least disturbed run."""
    out_a, out_b = fa(), fb()
    ta, tb = [], []
    for _ in range(reps):
        for fn, times in ((fa, ta), (fb, tb)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return min(ta), min(tb), out_a, out_b


def networks(size_scale: float = 1.0):
    """(label, size text, torch model, iters, call(net) → output) per network; ``size_scale`` shrinks
    the inputs (bench/gpu.py --dry-run)."""
    def hw(w, h, m=8):
        return max(m, int(round(w * size_scale / m)) * m), max(m, int(round(h * size_scale / m)) * m)

    W, H = hw(1920, 1080)
    lines = gapfill_sample(SEED, W, H)["lines"]
    page = make_lineart(SEED + 1, width=W, height=H)["color"]
    P, _ = hw(512, 512, 64)
    ink = gapfill_sample(SEED + 2, P, P)["lines"]
    cw, ch = hw(456, 256)
    clip = make_clip(SEED + 3, width=cw, height=ch, n_frames=2, flow=False)
    f1, f2 = clip.frames[0]["color"], clip.frames[1]["color"]
    gap = gf.fuse_for_inference(gf.load_weights(bundled_file("gapfill_gapunet.safetensors"))[0])
    sk = sketch_unet.fuse_batchnorm(sketch_unet.load_weights(bundled_file("sketch_unet.safetensors"))[0])
    p2p = pix2pix.load_weights(bundled_file("colorize_pix2pix.safetensors"))[0]
    small = load_raft(bundled_file("raft_small_toon.safetensors"))[0]
    torch.manual_seed(0)
    large = raft_large().eval()
    return [
        ("GapFill GapUNet (windows)", f"{W}×{H}", gap, None,
         lambda net: gf.close_gaps(gap, lines, net=net)[0]),
        ("Sketch U-Net", f"{W}×{H}", sk, None, lambda net: sketch_unet.predict(sk, page, net=net)),
        ("pix2pix (Colorize model)", f"{P}×{P}", p2p, None, lambda net: pix2pix.colorize(p2p, ink, net=net)),
        ("RAFT-small, 8 iters", f"{cw}×{ch}", small, 8, lambda net: raft_flow(small, f1, f2, iters=8, net=net)),
        ("RAFT, 12 iters", f"{cw}×{ch}", large, 12, lambda net: raft_flow(large, f1, f2, iters=12, net=net)),
    ]


def direct_rows(reps: int, threads: list[int], raft_only: bool = False) -> list[dict]:
    rows = []
    for label, size, model, iters, call in networks():
        if raft_only and not iters:
            continue
        module, spec = accel.spec_for(model, iters)
        t0 = time.perf_counter()
        onnx = accel.export_onnx(module, spec)
        export_s = time.perf_counter() - t0
        for n in threads:
            torch.set_num_threads(n)
            net = accel.OrtNet(onnx, spec, n)
            t_torch, t_ort, ref, out = _paired(lambda: call(None), lambda: call(net), reps)
            diff = float(np.abs(np.asarray(ref, np.float32) - np.asarray(out, np.float32)).max())
            rows.append(dict(net=label, spec=spec.name, size=size, path=f"direct, {n} thread{'s' * (n > 1)}",
                             torch=t_torch, ort=t_ort, diff=diff,
                             note=f"export {export_s:.1f} s, {len(onnx) / 1e6:.1f} MB"))
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def raft_clip_rows(reps: int, threads: list[int]) -> list[dict]:
    """Per pair over a clip's pairs t→t+1, each frame encoded once on both runtimes (FeatureCache)."""
    cw, ch = 456, 256
    clip = make_clip(SEED + 3, width=cw, height=ch, n_frames=5, flow=False)
    frames = [f["color"] for f in clip.frames]
    pairs = list(zip(range(4), range(1, 5)))
    small = load_raft(bundled_file("raft_small_toon.safetensors"))[0]
    rows = []
    # RAFT-small only: FlowRAFT's bundled network (RAFT large ships no weights; its split export is checked by
    # tests/test_accel.py and timed by bench/gpu.py), and a large clip pass takes minutes on 2 loaded cores
    for label, model, iters in (("RAFT-small, 8 iters", small, 8),):
        t0 = time.perf_counter()
        graphs = [(spec, accel.export_onnx(m, spec)) for m, spec in accel.exports_for(model, iters)]
        export_s = time.perf_counter() - t0
        for n in threads:
            torch.set_num_threads(n)
            split = accel.RaftSplit(*[accel.OrtNet(o, spec, n) for spec, o in graphs], tag="bench")

            def clip_flows(net):
                cache = FeatureCache()          # a fresh cache each pass: every frame encoded once in it
                return [raft_flow(model, frames[i], frames[j], iters=iters, cache=cache, keys=(i, j), net=net)
                        for i, j in pairs]
            t_torch, t_ort, ref, out = _paired(lambda: clip_flows(None), lambda: clip_flows(split), reps)
            eager = [raft_flow(model, frames[i], frames[j], iters=iters) for i, j in pairs]
            diff = max(float(np.abs(a - b).max()) for a, b in zip(eager, out))
            rows.append(dict(net=label, spec="raft split", size=f"{cw}×{ch}",
                             path=f"clip, per pair, {n} thread{'s' * (n > 1)}", torch=t_torch / len(pairs),
                             ort=t_ort / len(pairs), diff=diff,
                             note=f"encoder + update graphs, each frame encoded once (torch: its feature cache); "
                                  f"diff vs eager torch; export {export_s:.1f} s, "
                                  f"{sum(len(o) for _, o in graphs) / 1e6:.1f} MB"))
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def _engine_graph(kind: str, runtime: str, n: int) -> tuple[cg.Graph, str, str]:
    g = cg.Graph(frames=f"1-{n}")
    if kind == "gapfill":
        src = g.add(BenchDegradedLines.id, name="src", seed=SEED, width=1920, height=1080)
        g.add("GapFill", name="node", lines=src["lines"], method="model", device="cpu", runtime=runtime)
        return g, "GapFill GapUNet (windows)", "1920×1080"
    if kind == "sketch":
        src = g.add(BenchPage.id, name="src", seed=SEED, width=1920, height=1080)
        g.add("Sketch", name="node", image=src["image"], device="cpu", runtime=runtime)
        return g, "Sketch U-Net", "1920×1080"
    if kind == "colorize":
        src = g.add(BenchDegradedLines.id, name="src", seed=SEED, width=512, height=512)
        g.add("Colorize", name="node", lines=src["lines"], mode="model", device="cpu", runtime=runtime)
        return g, "pix2pix (Colorize model)", "512×512"
    src = g.add("SynthClip", name="src", seed=SEED, width=456, height=256)
    g.add("FlowRAFT", name="node", image=src["image"], backend="raft_small", offsets=[1], device="cpu",
          runtime=runtime)
    return g, "RAFT-small, 8 iters", "456×256"


class BenchPage(NodeType):
    """A synthetic 1920×1080 colour page per frame (make_lineart's flat colours with ink): Sketch's input."""
    id, version, category = "bench.Page", 1, "Bench"
    outputs = [Out("image", Image)]
    params = [Int("seed", 0, min=0, max=2**31 - 1), Int("width", 1920, min=32, max=4096),
              Int("height", 1080, min=32, max=4096)]
    color_space = cs.DISPLAY

    def compute(self, ctx, **_):
        p = ctx.params
        return {"image": cs.node_out(self, make_lineart(p.seed + ctx.frame, width=p.width, height=p.height)["color"])}


def engine_rows(n: int, kinds=("gapfill", "sketch", "colorize", "raft_small")) -> list[dict]:
    """Per frame through the engine (1 worker, torch's thread count), the two runtimes' engines
    alternating frame by frame; the fastest of frames 2..n (frame 1: load, export, warm-up)."""
    for t in (BenchDegradedLines, BenchPage):
        if registry.get(t.id) is None:
            register(t)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            runs = {}
            for runtime in ("torch", "onnxruntime"):
                engine = cg.Engine(Path(tmp) / f"cache-{runtime}")       # the runtime is not in the task key
                g, label, size = _engine_graph(kind, runtime, n)
                engine.run(g, targets=["src"])
                engine.run(g, targets=["node"], frames=[1], workers=1)  # load, export, warm-up
                runs[runtime] = (engine, g)
            times: dict[str, list[float]] = {"torch": [], "onnxruntime": []}
            for f in range(2, n + 1):
                for runtime, (engine, g) in runs.items():
                    t0 = time.perf_counter()
                    engine.run(g, targets=["node"], frames=[f], workers=1)
                    times[runtime].append(time.perf_counter() - t0)
            note = "FlowRAFT: one pair t→t+1 per frame; both runtimes encode each frame once (ORT: encoder + " \
                "update graphs)" if kind == "raft_small" else ""
            rows.append(dict(net=label, size=size, path=f"engine, {torch.get_num_threads()} threads",
                             torch=min(times["torch"]), ort=min(times["onnxruntime"]), diff=None, note=note))
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| network | size | path | torch s | ONNX Runtime s | ORT speed-up (torch / ORT) | max abs diff | note |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        diff = "" if r["diff"] is None else f"{r['diff']:.2g}"
        lines.append(f"| {r['net']} | {r['size']} | {r['path']} | {r['torch']:.3f} | {r['ort']:.3f} | "
                     f"{r['torch'] / r['ort']:.2f}× | {diff} | {r['note']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2", help="torch and ORT thread counts of the direct rows")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--frames", type=int, default=4, help="engine rows: frames per scene (the first is warm-up)")
    ap.add_argument("--no-engine", action="store_true", help="direct rows only")
    ap.add_argument("--only", choices=("all", "raft"), default="all", help="raft: the RAFT rows alone")
    ap.add_argument("--out", default=None, help="default bench/results/accel.md (--only raft: accel_raft.md)")
    args = ap.parse_args(argv)
    threads = [int(t) for t in str(args.threads).split(",")]
    load0 = os.getloadavg()[0]
    raft_only = args.only == "raft"
    args.out = args.out or str(Path(__file__).parent / "results" / ("accel_raft.md" if raft_only else "accel.md"))
    rows = direct_rows(args.reps, threads, raft_only) + raft_clip_rows(args.reps, threads)
    torch.set_num_threads(max(threads))
    if not args.no_engine:
        rows += engine_rows(args.frames, ("raft_small",) if raft_only else ("gapfill", "sketch", "colorize", "raft_small"))
    text = table(rows)
    print(text)
    import onnxruntime
    only = " --only raft" if raft_only else ""
    header = (f"# bench/accel.py\n\n`python bench/accel.py --threads {args.threads} --reps {args.reps} --frames "
              f"{args.frames}{only}` — {time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, {os.cpu_count()} CPUs, "
              f"torch {torch.__version__} and ONNX Runtime {onnxruntime.__version__} (CPUExecutionProvider), the "
              f"same thread count each; export {accel.EXPORTER}, opset {accel.OPSET}. A shared machine: load "
              f"average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end — absolute times are "
              "inflated. Each time is the fastest of the runs, torch and ORT alternating (direct: --reps calls each; "
              "engine: frames 2..N), so both saw the same load. Speed-up > 1: ONNX Runtime is faster.\n\n")
    write_text(args.out, header + text + "\n")
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

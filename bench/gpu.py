"""The GPU check of issue 21, one script a lease of a few minutes runs whole (≤ 8 minutes).

Measures, on CUDA: each network's forward pass in torch fp32 and fp16 (autocast) — GapFill GapUNet
and the Sketch U-Net on a 1920×1080 frame, RAFT-small (bundled weights, 8 iterations) and RAFT
(random weights, 12 iterations) on 456×256 and 1024×436 pairs, pix2pix at 512² — with fp16's
max abs change against fp32; GapFill end to end (``close_gaps``, inference ``whole``, fp16) per
1080p frame; TensorRT engines built from the same ONNX exports (fp32, fp16: build time, forward
time, change against torch fp32) when ``tensorrt`` imports; RAFT-small and RAFT at 456×256 as
the nodes run them on TensorRT, an encoder and an update engine with each frame encoded once (per
pair: one encode, one update); and a short ``full``-preset
decomposition through the engine (SynthClip → FlowRAFT → WarmupAlpha → WarmupHomography →
SpriteLearn, iterations cut to ``--decomp-iters``) with its iterations per second, from which
the full preset's time is extrapolated. Nothing is downloaded. Writes bench/results/gpu.md.
TensorRT builds stop once ``--budget`` seconds have passed (their rows then say so).

    python bench/gpu.py [--out bench/results/gpu.md] [--budget 420]
    python bench/gpu.py --dry-run      # every code path on the CPU at tiny sizes; writes a temp file

On this workplace's GPU machines (the `device` tool: /work/.library/device/README.md) the image
has torch, onnx and onnxruntime but neither OpenImageIO (the engine's image I/O, needed by the
decomposition) nor TensorRT. Carry the OpenImageIO wheel (8 MB; TensorRT's CUDA wheels are over
the 64 MiB a call may carry, so its rows stay "missing" there unless the image gains it). Once,
in the repository root here:

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_28_x86_64 -d .whl OpenImageIO==3.2.2.0

then one `run` call (carry [".whl"], timeout_s 540):

    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && \\
    PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1 python3 bench/gpu.py --out $OUT/gpu.md 2>&1 | tee $OUT/gpu.log

and copy the returned gpu.md to bench/results/gpu.md.
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

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))     # celgraph from this checkout

from celgraph.core.atomic import write_text                        # noqa: E402
from celgraph.models import accel, gapfill as gf, pix2pix, sketch_unet   # noqa: E402
from celgraph.models.raft import load_raft, raft_large               # noqa: E402
from celgraph.nodes.modelfiles import bundled_file                   # noqa: E402

DECOMP_FULL = {"WarmupAlpha": 40000 + 40000, "SpriteLearn": 40000 + 60000}     # the full preset's iterations


class Bench:
    def __init__(self, device: str, dry: bool, reps: int, budget: float):
        self.device, self.dry, self.reps, self.budget = device, dry, reps, budget
        self.t0 = time.perf_counter()
        self.rows: list[dict] = []
        self.missing: list[str] = []
        self.trt = accel.trt_available()

    def sync(self):
        if self.device == "cuda":
            torch.cuda.synchronize()

    def time(self, fn) -> tuple[float, torch.Tensor]:
        with torch.inference_mode():
            for _ in range(1 if self.dry else 3):
                out = fn()
            self.sync()
            times = []
            for _ in range(self.reps):
                t = time.perf_counter()
                out = fn()
                self.sync()
                times.append(time.perf_counter() - t)
        return statistics.median(times), out

    def autocast(self):
        # fp16 on CUDA; the dry run exercises the same path with bfloat16 on the CPU
        return torch.autocast(self.device, dtype=torch.float16 if self.device == "cuda" else torch.bfloat16)

    def row(self, net, size, how, seconds, diff=None, note=""):
        self.rows.append(dict(net=net, size=size, how=how, s=seconds, diff=diff, note=note))
        print(f"{net} {size} {how}: {seconds * 1e3:.2f} ms" + (f", max|Δ| {diff:.3g}" if diff is not None else ""),
              file=sys.stderr, flush=True)


def _hw(w, h, dry, m=8):
    return (max(m, int(round(w / 16 / m)) * m), max(m, int(round(h / 16 / m)) * m)) if dry else (w, h)


def networks(dry: bool):
    """(label, model, iters, [(W, H), ...])."""
    torch.manual_seed(0)
    gap = gf.fuse_for_inference(gf.load_weights(bundled_file("gapfill_gapunet.safetensors"))[0])
    sk = sketch_unet.fuse_batchnorm(sketch_unet.load_weights(bundled_file("sketch_unet.safetensors"))[0])
    p2p = pix2pix.load_weights(bundled_file("colorize_pix2pix.safetensors"))[0]
    small = load_raft(bundled_file("raft_small_toon.safetensors"))[0]
    large = raft_large().eval()
    raft_sizes = [(456, 256), (1024, 436)] if not dry else [(128, 128)]     # RAFT exports need ≥ 128 px
    small_iters, large_iters = (2, 2) if dry else (8, 12)       # the dry run: the same paths, shorter exports
    return [("GapFill GapUNet", gap, None, [_hw(1920, 1080, dry)]),
            ("Sketch U-Net", sk, None, [_hw(1920, 1080, dry, 32)]),
            ("pix2pix", p2p, None, [_hw(512, 512, dry, 64) if not dry else (64, 64)]),
            (f"RAFT-small, {small_iters} iters", small, small_iters, raft_sizes),
            (f"RAFT, {large_iters} iters", large, large_iters, raft_sizes)]


def network_rows(b: Bench):
    for label, model, iters, sizes in networks(b.dry):
        module, spec = accel.spec_for(model, iters)
        module = module.to(b.device).eval()
        onnx = accel.export_onnx(module, spec)
        for w, h in sizes:
            m = spec.multiple
            ph, pw = -(-h // m) * m, -(-w // m) * m               # padded as the torch path pads
            x = tuple(t.to(b.device) for t in spec.example(ph, pw))
            size = f"{w}×{h}"
            t32, ref = b.time(lambda: module(*x))
            b.row(label, size, "torch fp32", t32, note=f"{1 / t32:.1f} pairs/s" if iters else "")
            with b.autocast():
                t16, y16 = b.time(lambda: module(*x))
            b.row(label, size, "torch fp16 autocast", t16, float((y16.float() - ref.float()).abs().max()),
                  note=f"{1 / t16:.1f} pairs/s" if iters else "")
            trt_rows(b, label, size, spec, onnx, x, ref, (ph, pw), iters)


def trt_precisions(b: Bench, what: str):
    """fp32 then fp16, each only while the run is inside its --budget (a skipped one is listed missing)."""
    for precision in ("fp32", "fp16"):
        if time.perf_counter() - b.t0 > b.budget:
            b.missing.append(f"TensorRT {what} {precision}: skipped, past the --budget of {b.budget:.0f} s")
            continue
        yield precision


def trt_rows(b: Bench, label, size, spec, onnx, x, ref, hw, iters):
    if not b.trt and not b.dry:
        b.missing.append(f"TensorRT {label} {size}: tensorrt is not importable here (or no CUDA GPU)")
        return
    for precision in trt_precisions(b, f"{label} {size}"):
        t = time.perf_counter()
        if b.trt:
            profile = {"min": list(hw), "opt": list(hw), "max": list(hw)}     # this size only: a short build
            net = accel.TrtNet(accel.build_trt_engine(onnx, spec, precision, profile), spec)
            how = f"TensorRT {precision}"
        else:                           # dry run without TensorRT: the same timing path on an ORT session
            net = accel.OrtNet(onnx, spec)
            how = f"ONNX Runtime (dry run stand-in for TensorRT {precision})"
        build = time.perf_counter() - t
        secs, y = b.time(lambda: net(*x))
        note = f"build {build:.0f} s" + (f", {1 / secs:.1f} pairs/s" if iters else "")
        b.row(label, size, how, secs, float((y.float().cpu() - ref.float().cpu()).abs().max()), note)


def raft_split_rows(b: Bench):
    """RAFT as the nodes run it on an engine-built runtime (accel.exports_for): an encoder graph and an
    update graph, each frame encoded once; the time is a clip's steady state per pair (one frame
    encoded, one update), at the first size (456×256). torch fp32 the same way for comparison."""
    for label, model, iters, sizes in networks(b.dry):
        if not iters:
            continue
        model = model.to(b.device).eval()
        (enc_m, enc_s), (upd_m, upd_s) = graphs = accel.exports_for(model, iters)
        onnx = [accel.export_onnx(m, s) for m, s in graphs]
        w, h = sizes[0]
        ph, pw = -(-h // 8) * 8, -(-w // 8) * 8
        x1, x2 = (t.to(b.device) for t in accel.spec_for(model, iters)[1].example(ph, pw))
        size, name = f"{w}×{h}", f"{label}, encoder + update graphs"
        with torch.inference_mode():
            ref = accel.RaftPair(model, iters)(x1, x2)
            e1 = enc_m(x1)
        t32, _ = b.time(lambda: upd_m(e1[0], enc_m(x2)[0], e1[1], e1[2]))
        b.row(name, size, "torch fp32", t32, note=f"{1 / t32:.1f} pairs/s, one frame encoded per pair")
        for precision in trt_precisions(b, f"{name} {size}"):
            t = time.perf_counter()
            if b.trt:
                nets = [accel.TrtNet(accel.build_trt_engine(o, s, precision, s.profile(
                    {"min": [ph, pw], "opt": [ph, pw], "max": [ph, pw]})), s) for o, s in zip(onnx, (enc_s, upd_s))]
                how = f"TensorRT {precision}"
            else:                       # dry run without TensorRT: the same path on ORT sessions
                nets = [accel.OrtNet(o, s) for o, s in zip(onnx, (enc_s, upd_s))]
                how = f"ONNX Runtime (dry run stand-in for TensorRT {precision})"
            split = accel.RaftSplit(*nets, tag="bench")
            build = time.perf_counter() - t
            with torch.inference_mode():
                f1, hidden, inp = split.encode(x1)
            secs, flow = b.time(lambda: split.refine(f1, split.encode(x2)[0], hidden, inp))
            b.row(name, size, how, secs, float((flow.float().cpu() - ref.float().cpu()).abs().max()),
                  f"build {build:.0f} s (2 engines), {1 / secs:.1f} pairs/s")


def gapfill_end_to_end(b: Bench):
    from qualitybench.gapfill import gapfill_sample
    w, h = _hw(1920, 1080, b.dry)
    lines = gapfill_sample(500, w, h)["lines"]
    model = gf.fuse_for_inference(gf.load_weights(bundled_file("gapfill_gapunet.safetensors"))[0]).to(b.device)
    ref = gf.close_gaps(model, lines, inference="whole", device=b.device)[1]
    half = b.device == "cuda"
    t, added = b.time(lambda: torch.from_numpy(gf.close_gaps(model, lines, inference="whole", device=b.device,
                                                              half=half)[1]))
    diff = int((added.numpy() != ref).sum())
    b.row("GapFill close_gaps (endpoints + whole-frame pass, CPU parts included)", f"{w}×{h}",
          "torch fp16" if half else "torch fp32", t, None, f"{diff} added px differ from fp32 of {int(ref.sum())}")


def decomposition(b: Bench, iters: int):
    try:
        import celgraph as cg
        import OpenImageIO  # noqa: F401
    except ImportError as e:
        b.missing.append(f"full-preset decomposition: the engine cannot import ({e}); carry the OpenImageIO wheel")
        return
    w, h, n = (456, 256, 8) if not b.dry else (64, 64, 3)
    it = 2 if b.dry else iters
    small = {"batch": 256, "hidden": 16} if b.dry else {}     # the dry run: full preset, tiny networks
    g = cg.Graph(frames=f"1-{n}")
    clip = g.add("SynthClip", name="clip", seed=0, sprites=1, width=w, height=h)
    flow = g.add("FlowRAFT", name="flow", image=clip["image"], backend="raft_small", device=b.device)
    alpha = g.add("WarmupAlpha", name="alpha", image=clip["image"], bundle=flow["bundle"], objects=2,
                  preset="full", iters=it, blend_iters=it, device=b.device, **small)
    hom = g.add("WarmupHomography", name="homography", image=clip["image"], labels=alpha["labels"],
                bundle=flow["bundle"], objects=2)
    g.add("SpriteLearn", name="sprites", image=clip["image"], labels=alpha["labels"],
          transforms=hom["transforms"], preset="full", s1_iters=it, s2_iters=it, device=b.device, **small)
    seconds: dict[str, float] = {}

    def on_event(e):
        if e.kind == "task_finished" and e.node in ("flow", "alpha", "homography", "sprites"):
            seconds[e.node] = seconds.get(e.node, 0.0) + float(e.seconds or 0.0)

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        cg.Engine(Path(tmp) / "cache").run(g, targets=["sprites"], workers=1, on_event=on_event)
        total = time.perf_counter() - t
    for node, full_iters, ran in (("alpha", DECOMP_FULL["WarmupAlpha"], 2 * it),
                                  ("sprites", DECOMP_FULL["SpriteLearn"], 2 * it)):
        s = seconds.get(node)
        if s:
            rate = ran / s
            b.row(f"decomposition {node} (full preset, {ran} iterations)", f"{w}×{h}×{n}", "torch", s, None,
                  f"{rate:.1f} it/s (setup included) → the full preset's {full_iters} ≈ {full_iters / rate / 60:.1f} min")
    b.row("decomposition, whole scene (SynthClip, RAFT-small flow, alpha, homography, sprites)", f"{w}×{h}×{n}",
          "torch", total, None, "per-node compute: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))


def report(b: Bench, args) -> str:
    dev = torch.cuda.get_device_name() if b.device == "cuda" else f"CPU ({platform.machine()}, dry run)"
    trt = "not importable"
    if b.trt:
        import tensorrt
        trt = tensorrt.__version__
    lines = ["# bench/gpu.py\n",
             f"`python bench/gpu.py{' --dry-run' if b.dry else ''}` — {time.strftime('%Y-%m-%d %H:%M')}, {dev}, "
             f"torch {torch.__version__}, TensorRT {trt}, export {accel.EXPORTER} opset {accel.OPSET}; medians of "
             f"{b.reps} timed runs after warm-up; fp16 max|Δ| against torch fp32 (logits / −1..1 colour / flow px). "
             f"Total {time.perf_counter() - b.t0:.0f} s.\n",
             "| network | size | runtime | ms | max abs Δ vs fp32 | note |", "|---|---|---|---:|---:|---|"]
    for r in b.rows:
        diff = "" if r["diff"] is None else f"{r['diff']:.3g}"
        lines.append(f"| {r['net']} | {r['size']} | {r['how']} | {r['s'] * 1e3:.2f} | {diff} | {r['note']} |")
    if b.missing:
        lines += ["", "Missing:", ""] + [f"- {m}" for m in b.missing]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, every code path; writes a temp file")
    ap.add_argument("--out", default=None, help="default bench/results/gpu.md (dry run: a temp file)")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--budget", type=float, default=420.0, help="s after which no TensorRT build starts")
    ap.add_argument("--decomp-iters", type=int, default=1000, help="iterations per stage of the decomposition")
    args = ap.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA GPU here: run with --dry-run to check the script on the CPU", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    b = Bench("cpu" if args.dry_run else "cuda", args.dry_run, 1 if args.dry_run else args.reps,
              float("inf") if args.dry_run else args.budget)
    if args.dry_run:
        torch.set_num_threads(1)
    network_rows(b)
    raft_split_rows(b)
    gapfill_end_to_end(b)
    decomposition(b, args.decomp_iters)
    text = report(b, args)
    out = args.out or (os.path.join(tempfile.mkdtemp(prefix="celgraph-gpu-"), "gpu.md") if args.dry_run
                       else str(Path(__file__).parent / "results" / "gpu.md"))
    write_text(out, text)
    print(text)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

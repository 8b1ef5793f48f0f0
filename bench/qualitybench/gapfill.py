"""Gap closing: GapFill (model and classical) on degraded line art with known gaps."""
from __future__ import annotations

import time

import numpy as np

import celgraph as cg
from celgraph.core import Int, LineArt, NodeType, Out, register
from celgraph.synth import degrade_lines, make_lineart, metrics

from .common import Row, fmt, has, missing


GAP_METRICS = ["gap recall", "spurious ink (px / Mpx)", "spurious ink (% of line px)",
               "fill leaks (merged regions)", "false closures (px)", "s / frame"]


class BenchDegradedLines(NodeType):
    """Frame f: the degraded line art of seed + f − 1 (make_lineart cut by degrade_lines(+1000))."""
    id, category = "bench.DegradedLines", "Bench"
    outputs = [Out("lines", LineArt)]
    params = [Int("seed", 0, min=0), Int("width", 1920, min=32, max=8192), Int("height", 1080, min=32, max=8192)]

    def compute(self, ctx):
        p = ctx.params
        return {"lines": gapfill_sample(p.seed + ctx.frame - 1, p.width, p.height)["lines"]}


def gapfill_sample(seed: int, width: int, height: int) -> dict:
    return degrade_lines(make_lineart(seed, width=width, height=height, with_color=False), seed + 1000, max_gap=12)


def gapfill_samples(cfg):
    for seed in cfg.gap_seeds:
        yield gapfill_sample(seed, cfg.gap_w, cfg.gap_h)


def gap_rows(task: str, method: str, outputs, samples, seconds: float | None = None, note: str = "",
             time_note: str = "") -> list[Row]:
    recall, spurious, share, leaks, closures = [], [], [], [], []
    for pred, d in zip(outputs, samples):
        pred_bin = pred >= 0.5
        gt_bin = d["gt"] >= 0.5
        recall.append(metrics.gap_recall(pred_bin, d["gap_mask"]))
        spurious.append(metrics.spurious_ink(pred_bin, gt_bin))
        share.append(100.0 * spurious[-1] * pred_bin.size / 1e6 / max(int(gt_bin.sum()), 1))
        leaks.append(metrics.fill_leaks(pred, d["regions"], ignore=0))
        closures.append(metrics.false_closures(pred_bin, d["lines"] >= 0.5, d["open_mask"]))
    return [Row(task, method, "gap recall", fmt(np.mean(recall)), note),
            Row(task, method, "spurious ink (px / Mpx)", fmt(np.mean(spurious), 1)),
            Row(task, method, "spurious ink (% of line px)", fmt(np.mean(share), 3)),
            Row(task, method, "fill leaks (merged regions)", f"{int(np.sum(leaks))}", "sum over samples"),
            Row(task, method, "false closures (px)", f"{int(np.sum(closures))}",
                "added ink at ends that must stay open, sum over samples"),
            Row(task, method, "s / frame", fmt(seconds) if seconds is not None else "—",
                f"through the engine, CPU, 2 threads; {time_note}" if seconds is not None else "")]


def gapfill_suite(cfg, engine) -> list[Row]:
    task = f"gap closing ({len(cfg.gap_seeds)} line-art frames {cfg.gap_w}×{cfg.gap_h}, gaps 1-12 px)"
    samples = list(gapfill_samples(cfg))
    rows = gap_rows(task, "input as it is (reference)", [d["lines"] for d in samples], samples)
    rows += gap_rows(task, "clean line art (upper bound)", [d["gt"] for d in samples], samples)
    if not has("GapFill"):
        try:                                    # until celgraph.nodes lists the lines module
            from celgraph.nodes import lines as line_nodes
            cg.registry.register_module(line_nodes)
        except ImportError:
            pass
    if not has("GapFill"):
        return rows + missing(task, "GapFill", GAP_METRICS)
    from celgraph.nodes.lines import bundled_weights
    methods = [("GapFill classical (OpenToonz autoclose)", {"method": "classical"})]
    for net, label in (("lite", "GapFill model: lite U-Net (FillLineGaps LightUNet)"),
                       ("gapunet", "GapFill model: GapUNet (ours)")):
        methods.append((label, {"method": "model", "network": net} if bundled_weights(net) else None))
    if not has(BenchDegradedLines.id):
        register(BenchDegradedLines)
    for label, params in methods:
        if params is None:
            rows += missing(task, label, GAP_METRICS, "no bundled weights")
            continue
        # one run over the frames, as a farm renders a sequence (worker threads warm up once)
        n = len(cfg.gap_seeds)
        assert cfg.gap_seeds == list(range(cfg.gap_seeds[0], cfg.gap_seeds[0] + n))
        g = cg.Graph(frames=f"1-{n}")
        src = g.add(BenchDegradedLines.id, name="src", seed=cfg.gap_seeds[0], width=cfg.gap_w, height=cfg.gap_h)
        g.add("GapFill", name="fill", lines=src["lines"], device="cpu", **params)
        engine.run(g, targets=["src"])                                  # draw (and cache) the inputs
        first, t0 = [], time.perf_counter()
        r = engine.run(g, targets=["fill"], on_event=lambda ev: first.append(time.perf_counter())
                       if ev.kind == "task_finished" and not first else None)
        seconds = time.perf_counter() - t0
        outputs = [np.array(r.value("fill", "lines", f)) for f in range(1, n + 1)]
        rows += gap_rows(task, label, outputs, samples, seconds / n,
                         time_note=f"{n} frames in one run; the first frame (with any model load) "
                                   f"{first[0] - t0:.2f} s")
    return rows

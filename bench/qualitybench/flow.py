"""Optical flow: FlowRAFT backends against exact flow of synthetic clips."""
from __future__ import annotations

import time

import numpy as np

import celgraph as cg
from celgraph.synth import metrics

from .common import Row, fmt, has, missing


FLOW_METRICS = ["EPE all (px)", "EPE non-occluded (px)", "s / frame pair"]


def flow_suite(cfg, engine: cg.Engine) -> list[Row]:
    from celgraph.nodes.flow import bundled_weights
    task = f"flow ({len(cfg.flow_seeds)} clips × {cfg.frames - 1} pairs, {cfg.w}×{cfg.h})"
    if not has("FlowRAFT"):
        return missing(task, "FlowRAFT", FLOW_METRICS)
    methods = [("zero flow (reference)", None), ("FlowRAFT dis (classical baseline)", {"backend": "dis"})]
    ours = "FlowRAFT raft_small (celgraph toon weights)"
    if bundled_weights("raft_small") is not None:
        methods.append((ours, {"backend": "raft_small"}))
    rows: list[Row] = []
    for label, params in methods:
        errs_all, errs_noc, seconds, pairs, n_pairs = [], [], 0.0, 0, 0
        for seed in cfg.flow_seeds:
            g = cg.Graph(frames=f"1-{cfg.frames}")
            clip = g.add("SynthClip", name="clip", seed=seed, width=cfg.w, height=cfg.h)
            if params is not None:
                g.add("FlowRAFT", name="flow", image=clip["image"], offsets=[1], **params)
            frames = list(range(1, cfg.frames))
            r = engine.run(g, targets=["clip"], frames=frames)          # draw (and cache) the clip
            if params:          # first time these settings meet this clip: every pair is computed
                t0 = time.perf_counter()
                r = engine.run(g, targets=["clip", "flow"], frames=frames)
                seconds += time.perf_counter() - t0
                n_pairs += 2 * len(frames) - 1                 # t→t+1 for every frame, t→t−1 from frame 2
            for f in frames:
                gt, occ = r.value("clip", "flow_fw", f), r.value("clip", "occ_fw", f) > 0.5
                pred = r.value("flow", "forward", f) if params else np.zeros_like(gt)
                errs_all.append(metrics.epe(pred, gt))
                errs_noc.append(metrics.epe(pred, gt, ~occ))
                pairs += 1
        rows += [Row(task, label, "EPE all (px)", fmt(np.mean(errs_all))),
                 Row(task, label, "EPE non-occluded (px)", fmt(np.mean(errs_noc))),
                 Row(task, label, "s / frame pair", fmt(seconds / n_pairs) if params else "—",
                     "through the engine, CPU" if params else "")]
    if bundled_weights("raft_small") is None:
        rows += missing(task, ours, FLOW_METRICS, "no bundled weights yet")
    rows += missing(task, "FlowRAFT raft (large)", FLOW_METRICS, "needs a user-supplied checkpoint")
    return rows

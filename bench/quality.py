"""The quality benchmark every node is judged by: fixed seeded synthetic clips with exact ground
truth (celgraph.synth), each node type that exists run through the engine as a user would run it,
the classical baseline beside it.

    python bench/quality.py [--quick] [--out bench/results/quality.md]

Node types that do not exist yet show as "missing" (never as zero). --quick uses fewer and smaller
clips (a smoke test; the committed table is the full run).
"""
from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import celgraph as cg
from celgraph.engine import Int, LineArt, NodeType, Out, register
from celgraph.synth import degrade_lines, make_lineart, metrics


@dataclass
class Row:
    task: str
    method: str
    metric: str
    value: str
    note: str = ""


def fmt(x: float, digits: int = 3) -> str:
    return "inf" if x == float("inf") else f"{x:.{digits}f}"


def has(type_name: str) -> bool:
    return cg.registry.get(type_name) is not None


def missing(task: str, method: str, metrics_: list[str], why: str = "node type not implemented yet") -> list[Row]:
    return [Row(task, method, ", ".join(metrics_), "missing", why)]


# ---- flow -------------------------------------------------------------------------------------

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


# ---- decomposition ----------------------------------------------------------------------------

def decomposition_suite(cfg, engine) -> list[Row]:
    """WarmupAlpha → WarmupHomography → SpriteLearn on seeded clips (plate + 1 sprite, N = 2 objects;
    plate + 2 sprites, N = 3), each stage timed through the engine, against the synth ground truth
    (objects: 0 = plate, k = sprite k; matched to ours by IoU), a classical baseline beside each."""
    import warnings

    from scipy.optimize import linear_sum_assignment

    from celgraph.models.decompose.chain import frame_box, mask_box, transform_error

    names = ("WarmupAlpha", "WarmupHomography", "SpriteLearn")
    if not all(has(n) for n in names):
        wanted = (["label IoU"], ["corner error (px)"], ["reconstruction PSNR (dB)", "alpha IoU"])
        return [r for n, task, m in zip(names, ("warm-up labels", "transforms", "sprites"), wanted)
                for r in (missing(f"decomposition: {task}", n, m) if not has(n) else [])]
    quick = cfg.w < 456
    preset = "preview" if quick else "cpu"
    w, h, n_frames = (cfg.w, cfg.h, 8) if quick else (456, 256, 16)
    # (seed, sprites, deform): N = sprites + 1 objects; the third clip turns the sprites' smooth
    # deformation off (their squash stays), to see how much of the transforms' error it causes
    clips = [(0, 1, True)] if quick else [(0, 1, True), (1, 2, True), (0, 1, False)]
    frames = list(range(1, n_frames + 1))
    rows: list[Row] = []

    def match(pred_masks, gt_masks):
        """Our object for each true object (Hungarian on clip IoU) and the IoUs."""
        iou = np.array([[metrics.iou(p, g) for g in gt_masks] for p in pred_masks])
        r, c = linear_sum_assignment(-iou)
        order = np.empty(len(gt_masks), int)
        order[c] = r
        return order, iou[order, np.arange(len(gt_masks))]

    def iou_rows(task, method, what, ious, note=""):
        return [Row(task, method, f"{what} IoU plate", fmt(ious[0]), note),
                Row(task, method, f"{what} IoU sprites (mean)", fmt(float(np.mean(ious[1:]))), note)]

    def flow_baseline(r, n_obj):
        """Labels from flow: residual of the forward flow after a RANSAC affine fit of the dominant motion,
        > 1 px = foreground; k-means of the residual flow splits it into N − 1 objects."""
        import cv2
        out = []
        for f in frames:
            b = r.value("flow", "bundle", f)
            fl = np.asarray(b.get(1, b.get(-1)))
            ys, xs = np.mgrid[0:h, 0:w]
            src = np.ascontiguousarray(np.stack([xs, ys], -1).reshape(-1, 2)[::7], np.float32)
            dst = np.ascontiguousarray(src + fl.reshape(-1, 2)[::7], np.float32)
            A, _ = cv2.estimateAffine2D(src, dst, ransacReprojThreshold=1.0)
            model = np.einsum("ij,hwj->hwi", A, np.dstack([xs, ys, np.ones_like(xs)])) - np.dstack([xs, ys])
            res = fl - model
            fg = cv2.morphologyEx((np.linalg.norm(res, axis=-1) > 1.0).astype(np.uint8), cv2.MORPH_OPEN,
                                  np.ones((3, 3), np.uint8)).astype(bool)
            lab = np.zeros((h, w), np.int32)
            if n_obj > 2 and fg.sum() >= n_obj:
                cv2.setRNGSeed(0)
                _, k, _ = cv2.kmeans(res[fg].astype(np.float32), n_obj - 1, None,
                                     (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.1), 3,
                                     cv2.KMEANS_PP_CENTERS)
                lab[fg] = k.ravel() + 1
            else:
                lab[fg] = 1
            out.append(lab)
        return np.stack(out)

    def median_plate(images, labels, tr0):
        """Classical plate: every frame's background pixels warped into the plate canvas, per-texel
        median over time, rendered back into each frame."""
        import cv2
        corners = np.array([[0, w, 0, w], [0, 0, h, h], [1, 1, 1, 1]], float)
        scale = max(w, h) / float(np.ptp(np.concatenate([(tr0[t] @ corners)[:2] for t in range(len(tr0))], 1)))
        size = int(np.ceil(scale)) + 1
        Sc = np.diag([scale, scale, 1.0])
        stack = np.full((len(images), size, size, 3), np.nan, np.float32)
        for t, (img, lab) in enumerate(zip(images, labels)):
            M = Sc @ tr0[t]
            warped = cv2.warpPerspective(img, M, (size, size), flags=cv2.INTER_LINEAR, borderValue=(np.nan,) * 3)
            keep = cv2.warpPerspective((lab == 0).astype(np.float32), M, (size, size), flags=cv2.INTER_NEAREST) > 0.5
            stack[t][keep] = warped[keep]
        with warnings.catch_warnings():              # texels no frame saw: filled below
            warnings.simplefilter("ignore", RuntimeWarning)
            plate = np.nanmedian(stack, axis=0)
        plate = np.where(np.isnan(plate), np.nanmean(plate), plate).astype(np.float32)
        return np.stack([cv2.warpPerspective(plate, np.linalg.inv(Sc @ tr0[t]), (w, h), flags=cv2.INTER_LINEAR,
                                             borderMode=cv2.BORDER_REPLICATE) for t in range(len(images))])

    for seed, sprites, deform in clips:
        n = sprites + 1
        clip_name = f"seed {seed}, plate + {sprites} sprite{'s' if sprites > 1 else ''}" \
                    f"{'' if deform else ' (deform off: squash only)'}, N = {n}, {n_frames} frames {w}×{h}"
        g = cg.Graph(frames=f"1-{n_frames}")
        c = g.add("SynthClip", name="clip", seed=seed, sprites=sprites, width=w, height=h, deform=deform)
        fl = g.add("FlowRAFT", name="flow", image=c["image"])
        a = g.add("WarmupAlpha", name="alpha", image=c["image"], bundle=fl["bundle"], objects=n, preset=preset,
                  threads=1)
        hm = g.add("WarmupHomography", name="homo", image=c["image"], labels=a["labels"], bundle=fl["bundle"],
                   objects=n)
        g.add("WarmupHomography", name="homo_gt", image=c["image"], labels=c["objects"], bundle=fl["bundle"],
              objects=n)
        g.add("SpriteLearn", name="sprites", image=c["image"], labels=a["labels"], transforms=hm["transforms"],
              preset=preset, threads=1)
        seconds = {}
        for node, targets in (("flow", ["clip", "flow"]), ("alpha", ["alpha"]), ("homo", ["homo"]),
                              ("homo_gt", ["homo_gt"]), ("sprites", ["sprites"])):
            t0 = time.perf_counter()                       # each stage computed once, upstream cached
            engine.run(g, targets=targets)
            seconds[node] = time.perf_counter() - t0       # "flow" includes drawing the clip
        r = engine.run(g, targets=["clip", "flow", "alpha", "homo", "homo_gt", "sprites"])
        images = np.stack([r.value("clip", "image", f) for f in frames])
        gt = np.stack([r.value("clip", "objects", f) for f in frames])
        gt_masks = [gt == k for k in range(n)]
        gt_tr = np.stack([r.value("clip", "transforms", f) for f in frames])

        # -- warm-up labels
        task = f"decomposition: warm-up labels ({clip_name})"
        base = flow_baseline(r, n)
        _, ious = match([base == k for k in range(n)], gt_masks)
        rows += iou_rows(task, "affine-residual flow threshold + k-means (classical baseline)", "label", ious)
        labels = np.stack([r.value("alpha", "labels", f) for f in frames])
        order, ious = match([labels == k for k in range(n)], gt_masks)
        rows += iou_rows(task, f"WarmupAlpha `{preset}`", "label", ious)
        rows.append(Row(task, f"WarmupAlpha `{preset}`", "wall time (s)", fmt(seconds["alpha"], 1),
                        "1 thread, shared 2-core machine"))

        # -- transforms (plate: frame corners; sprites: the corners of their box in each frame)
        task = f"decomposition: transforms ({clip_name})"
        boxes = [[frame_box(w, h)] * len(frames)] + [[mask_box(m[t]) for t in range(len(frames))]
                                                      for m in gt_masks[1:]]

        def err(tr, obj_of):
            e = [transform_error(tr[:, obj_of[k]], gt_tr[:, k], boxes[k]) for k in range(n)]
            return e[0], float(np.mean(e[1:]))

        def err_rows(method, e, note=""):
            return [Row(task, method, "corner error plate (px)", fmt(e[0], 2), note),
                    Row(task, method, "corner error sprites (px, mean)", fmt(e[1], 2), note)]
        ident = np.tile(np.eye(3), (len(frames), n, 1, 1))
        rows += err_rows("identity transforms (baseline)", err(ident, list(range(n))))
        bound = []
        for t in range(len(frames)):                   # the closest similarity to each true frame→frame-0 map
            per = []
            for k in range(n):
                R_ = np.linalg.inv(gt_tr[0, k]) @ gt_tr[t, k]
                s_, r_ = (R_[0, 0] + R_[1, 1]) / 2, (R_[1, 0] - R_[0, 1]) / 2
                per.append(np.array([[s_, -r_, R_[0, 2]], [r_, s_, R_[1, 2]], [0, 0, 1.0]]))
            bound.append(per)
        rows += err_rows("true motion projected onto 4-DOF similarities (reference)",
                         err(np.asarray(bound), list(range(n))), "sprites squash and deform: no similarity is exact")
        tr_gt = np.stack([r.value("homo_gt", "transforms", f) for f in frames])
        rows += err_rows("WarmupHomography on true labels", err(tr_gt, list(range(n))))
        tr = np.stack([r.value("homo", "transforms", f) for f in frames])
        rows += err_rows("WarmupHomography on WarmupAlpha labels", err(tr, order))
        rows.append(Row(task, "WarmupHomography on WarmupAlpha labels", "wall time (s)", fmt(seconds["homo"], 1),
                        "DIS pairs beyond the bundle included"))

        # -- sprites
        task = f"decomposition: sprites ({clip_name})"
        plate_b = median_plate(images, labels, tr[:, 0])
        recon_b = np.where((labels == 0)[..., None], plate_b, images)
        method = "median plate + warm-up labels (classical baseline)"
        rows += [Row(task, method, "reconstruction PSNR (dB)", fmt(metrics.psnr(recon_b, images), 2)),
                 Row(task, method, "plate PSNR on visible background (dB)",
                     fmt(metrics.psnr(plate_b, images, mask=gt == 0), 2))]
        rows += iou_rows(task, method, "alpha", match([labels == k for k in range(n)], gt_masks)[1],
                         "alpha = warm-up labels")
        alpha = np.stack([r.value("sprites", "sprites", f)["alpha"] for f in frames])
        plate = np.stack([r.value("sprites", "plate", f) for f in frames])
        comp = np.stack([r.value("sprites", "composite", f) for f in frames])
        method = f"SpriteLearn `{preset}`"
        _, ious = match([alpha[:, k] >= 0.5 for k in range(n)], gt_masks)
        additive = alpha[:, 0, ..., None] * plate + alpha[:, 1:].sum(1)[..., None] * images
        rows += [Row(task, method, "reconstruction PSNR (dB)", fmt(metrics.psnr(comp, images), 2),
                     "sprite layers over the plate (SpriteLearn.composite)"),
                 Row(task, method, "reconstruction PSNR, additive (dB)", fmt(metrics.psnr(additive, images), 2),
                     "upstream's form Σ alpha_k·layer_k, plate alpha included"),
                 Row(task, method, "plate PSNR on visible background (dB)",
                     fmt(metrics.psnr(plate, images, mask=gt == 0), 2))]
        rows += iou_rows(task, method, "alpha", ious, "alpha ≥ 0.5 vs visible objects")
        rows.append(Row(task, method, "wall time (s)", fmt(seconds["sprites"], 1), "1 thread, shared 2-core machine"))
        total = seconds["flow"] + seconds["alpha"] + seconds["homo"] + seconds["sprites"]
        rows.append(Row(task, f"whole `{preset}` preset (clip + flow + 3 nodes)", "wall time (s)", fmt(total, 1),
                        f"flow {seconds['flow']:.1f} s (clip drawing included)"))
    return rows


# ---- gap closing ------------------------------------------------------------------------------

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


# ---- sketch and colour ------------------------------------------------------------------------

def _quick(cfg) -> bool:
    return cfg == QUICK


def _write_sequence(folder: Path, name: str, arrays: list[np.ndarray], ext: str = "png") -> str:
    """Frames 1..N of a sequence on disk (what a user's Read node would see); returns the pattern."""
    from celgraph.nodes.io import frame_path, write_image
    pattern = str(folder / f"{name}.####.{ext}")
    for i, a in enumerate(arrays, start=1):
        write_image(frame_path(pattern, i), a, "float" if ext == "exr" else "auto")
    return pattern


def _timed_run(engine, g, targets, frames) -> tuple[object, float]:
    t0 = time.perf_counter()
    r = engine.run(g, targets=targets, frames=frames)
    return r, time.perf_counter() - t0


SKETCH_METRICS = ["F1 within 1 px", "chamfer (px)"]


def sketch_suite(cfg, engine) -> list[Row]:
    """Degraded colour frames (JPEG, rescaling, blur, noise, lighting; some with screentone: the
    recipe of celgraph.train.sketch, benchmark seeds 300+ never used in training or validation),
    written as PNG and read back, → Sketch; F1 within 1 px and symmetric chamfer of the binarised
    output against the exact ink layer (shadow/highlight boundaries and plate texture are not ink)."""
    from celgraph.train.sketch import sketch_frame
    sizes = [(456, 256), (456, 256)] if _quick(cfg) else \
        [(456, 256)] * 4 + [(960, 540)] * 2 + [(1920, 1080)] * 2
    task = f"line extraction ({len(sizes)} degraded colour frames, {sizes[0][0]}×{sizes[0][1]}" + \
        ("" if _quick(cfg) else " to 1920×1080") + ")"
    methods = [("Sketch model (celgraph U-Net)", {"method": "model"}),
               ("Sketch xdog (classical baseline, tuned)", {"method": "xdog"}),
               ("Sketch xdog (adeleine parameters σ 0.4, k 4.5, p 19, ε 0.01)",
                {"method": "xdog", "xdog_sigma": 0.4, "xdog_k": 4.5, "xdog_p": 19.0, "xdog_epsilon": 0.01,
                 "xdog_phi": 1e9})]
    if not has("Sketch"):
        return [r for label, _ in methods for r in missing(task, label, SKETCH_METRICS)]
    from celgraph.nodes.sketch import bundled_weights
    frames = [sketch_frame(300 + i, size, "clip") for i, size in enumerate(sizes)]
    tmp = Path(tempfile.mkdtemp(prefix="celgraph-sketch-"))
    rows: list[Row] = []
    try:
        pattern = _write_sequence(tmp, "plate", [d["image"] for d in frames])
        for label, params in methods:
            if params["method"] == "model" and bundled_weights() is None:
                rows += missing(task, label, SKETCH_METRICS, "no bundled weights yet")
                continue
            g = cg.Graph(frames=f"1-{len(frames)}")
            plate = g.add("Read", name="plate", path=pattern)
            g.add("Sketch", name="sketch", image=plate["image"], **params)
            r = engine.run(g, targets=["sketch"])
            f1 = [metrics.line_f1(r.value("sketch", "binary", i + 1) >= 0.5, d["lines"] >= 0.5)
                  for i, d in enumerate(frames)]
            ch = [metrics.chamfer(r.value("sketch", "binary", i + 1) >= 0.5, d["lines"] >= 0.5)
                  for i, d in enumerate(frames)]
            rows += [Row(task, label, "F1 within 1 px", fmt(np.mean(f1)), f"min {fmt(min(f1))}"),
                     Row(task, label, "chamfer (px)", fmt(np.mean(ch)))]
        # speed at 1920×1080 through the engine (a fresh task: no cache hit)
        size = (1920, 1080) if not _quick(cfg) else (456, 256)
        big = _write_sequence(tmp, "big", [sketch_frame(390, size, "clip")["image"]])
        for label, params in methods[:2]:
            if params["method"] == "model" and bundled_weights() is None:
                continue
            g = cg.Graph(frames="1")
            plate = g.add("Read", name="plate", path=big)
            g.add("Sketch", name="sketch", image=plate["image"], **params)
            engine.run(g, targets=["plate"])
            if params["method"] == "model":             # load the network once (per process, like a session)
                warm = cg.Graph(frames="1")
                wp = warm.add("Read", name="plate", path=pattern)
                warm.add("Sketch", name="sketch", image=wp["image"], **params)
                engine.run(warm, targets=["sketch"], frames=[1], use_cache=False)
            _, sec = _timed_run(engine, g, ["sketch"], [1])
            rows.append(Row(task, label, f"s / frame {size[0]}×{size[1]}", fmt(sec, 2),
                            "through the engine, CPU, goal ≤ 1.5 s" if not _quick(cfg) else "through the engine, CPU"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


# ---- colour -------------------------------------------------------------------------------------

def ciede2000(rgb1: np.ndarray, rgb2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference of sRGB colours (…×3, 0..1), via OpenCV's Lab (D65)."""
    import cv2

    def lab(x):
        x = np.clip(np.asarray(x, np.float32).reshape(-1, 1, 3), 0, 1)
        return cv2.cvtColor(x, cv2.COLOR_RGB2Lab).reshape(-1, 3).astype(np.float64)

    (L1, a1, b1), (L2, a2, b2) = lab(rgb1).T, lab(rgb2).T
    C1, C2 = np.hypot(a1, b1), np.hypot(a2, b2)
    Cm = (C1 + C2) / 2
    G = 0.5 * (1 - np.sqrt(Cm ** 7 / (Cm ** 7 + 25.0 ** 7)))
    a1p, a2p = (1 + G) * a1, (1 + G) * a2
    C1p, C2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p, h2p = np.degrees(np.arctan2(b1, a1p)) % 360, np.degrees(np.arctan2(b2, a2p)) % 360
    dLp, dCp = L2 - L1, C2p - C1p
    dh = h2p - h1p
    dh = np.where(C1p * C2p == 0, 0, np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh)))
    dHp = 2 * np.sqrt(C1p * C2p) * np.sin(np.radians(dh) / 2)
    Lpm, Cpm = (L1 + L2) / 2, (C1p + C2p) / 2
    hs = h1p + h2p
    hpm = np.where(C1p * C2p == 0, hs, np.where(np.abs(h1p - h2p) <= 180, hs / 2,
                                                np.where(hs < 360, (hs + 360) / 2, (hs - 360) / 2)))
    T = (1 - 0.17 * np.cos(np.radians(hpm - 30)) + 0.24 * np.cos(np.radians(2 * hpm))
         + 0.32 * np.cos(np.radians(3 * hpm + 6)) - 0.20 * np.cos(np.radians(4 * hpm - 63)))
    dtheta = 30 * np.exp(-(((hpm - 275) / 25) ** 2))
    Rc = 2 * np.sqrt(Cpm ** 7 / (Cpm ** 7 + 25.0 ** 7))
    Sl = 1 + 0.015 * (Lpm - 50) ** 2 / np.sqrt(20 + (Lpm - 50) ** 2)
    Sc, Sh = 1 + 0.045 * Cpm, 1 + 0.015 * Cpm * T
    Rt = -np.sin(np.radians(2 * dtheta)) * Rc
    return np.sqrt((dLp / Sl) ** 2 + (dCp / Sc) ** 2 + (dHp / Sh) ** 2 + Rt * (dCp / Sc) * (dHp / Sh))


def region_accuracy(pred: np.ndarray, gt_fill: np.ndarray, regions: np.ndarray, lines: np.ndarray,
                    min_pixels: int = 20, max_de: float = 10.0, skip=(0,)) -> tuple[int, int]:
    """(correct, counted): ground-truth regions (ids not in ``skip``, at least ``min_pixels`` px
    farther than 1 px from ink) whose median predicted colour lies within CIEDE2000 ``max_de`` of
    the region's dominant ground-truth colour (measured on the pixels of that colour)."""
    import cv2
    inner = cv2.distanceTransform((np.asarray(lines) < 0.5).astype(np.uint8), cv2.DIST_L2, 3) > 1
    pred, gt_fill = np.asarray(pred)[:, :, :3], np.asarray(gt_fill)[:, :, :3]
    got, want = [], []
    for i in np.unique(regions):
        if i in skip:
            continue
        m = (regions == i) & inner
        if m.sum() < min_pixels:
            continue
        q = np.round(gt_fill[m] * 31).astype(np.int64) @ np.array([1024, 32, 1])
        vals, counts = np.unique(q, return_counts=True)
        dom = q == vals[counts.argmax()]
        want.append(gt_fill[m][dom].mean(0))
        got.append(np.median(pred[m][dom], 0))
    if not got:
        return 0, 0
    return int((ciede2000(np.array(got), np.array(want)) < max_de).sum()), len(got)


COLOR_METRICS = ["per-region colour accuracy (ΔE2000 < 10)", "PSNR (dB)"]


def _lineart_pages(seeds, size):
    for seed in seeds:
        yield make_lineart(seed, *size)


def colorize_suite(cfg, engine) -> list[Row]:
    """Three studio workflows, each through the engine from files on disk:

    * hints: make_lineart pages (flat cel colours with shadows; exact line art) + one hint dot per
      line-enclosed region in its dominant colour (ColorHints), or one sloppy 14-px scribble per
      region that overshoots into the neighbour by up to 4 px; accuracy over the bucket-fill
      regions (shadows are not line-enclosed, so they count in PSNR, not in the accuracy);
    * reference: 16-frame SynthClips, the key (frame 1) coloured, frames 2-16 coloured from their
      exact line art; accuracy over every flat-colour region of the sprites (base, shadow,
      highlight, pattern), PSNR over the whole frame (plate included);
    * model: held-out pages, pix2pix with one hint per region (and without), beside the hint
      flat fill alone."""
    quick = _quick(cfg)
    rows: list[Row] = []
    if not has("Colorize"):
        for mode in ("hints", "reference", "model"):
            rows += missing("colourisation (line art → colour)", f"Colorize {mode}", COLOR_METRICS)
        return rows
    tmp = Path(tempfile.mkdtemp(prefix="celgraph-colour-"))
    try:
        rows += _colorize_hints(engine, tmp, quick)
        rows += _colorize_reference(engine, tmp, quick)
        rows += _colorize_model(engine, tmp, quick)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def _hint_graph(n, lines_pat, color_pat, hint_params, colorize_params):
    g = cg.Graph(frames=f"1-{n}")
    lines = g.add("Read", name="lines_file", path=lines_pat)
    color = g.add("Read", name="color_file", path=color_pat)
    ink = g.add("ToLineArt", name="ink", image=lines["image"], black=0.0, white=1.0)
    hints = g.add("ColorHints", name="hints", image=color["image"], lines=ink["lines"], **hint_params)
    g.add("Colorize", name="col", lines=ink["lines"], hints=hints["hints"], **colorize_params)
    return g


def _colorize_hints(engine, tmp: Path, quick: bool) -> list[Row]:
    size = (456, 256) if quick else (1920, 1080)
    seeds = [320] if quick else [320, 321, 322, 323]
    task = f"colourisation from hints ({len(seeds)} line-art pages {size[0]}×{size[1]})"
    pages = list(_lineart_pages(seeds, size))
    # the line art as paper-white images (what Read gives a user), the colours as the colourist's reference
    lines_pat = _write_sequence(tmp, "hint_lines", [1.0 - p["lines"] for p in pages], "exr")
    color_pat = _write_sequence(tmp, "hint_color", [p["fill"] for p in pages], "exr")
    rows = []
    variants = [("Colorize hints (one dot per region)", {}),
                ("Colorize hints (one sloppy scribble per region)", {"scribble": 14.0, "spill": 4.0, "radius": 2.0})]
    for label, hp in variants:
        g = _hint_graph(len(pages), lines_pat, color_pat, hp, {"line_color": "black"})
        r = engine.run(g, targets=["col"])
        ok = total = 0
        psnr = []
        for i, p in enumerate(pages, start=1):
            a, b = region_accuracy(r.value("col", "fill", i), p["fill"], p["regions"], p["lines"])
            ok, total = ok + a, total + b
            psnr.append(metrics.psnr(r.value("col", "image", i)[:, :, :3], p["color"]))
        rows += [Row(task, label, COLOR_METRICS[0], f"{100 * ok / max(total, 1):.1f} %",
                     f"{ok}/{total} regions" + ("; goal ≥ 99 %" if "dot" in label else "")),
                 Row(task, label, "PSNR (dB)", fmt(np.mean(psnr), 2), "vs the colour page; shadows are not hinted")]
    # speed of the fill itself (hints already made): a fresh Colorize task on one frame
    g = _hint_graph(len(pages), lines_pat, color_pat, {}, {"line_color": "black"})
    engine.run(g, targets=["hints"], frames=[1])
    g2 = _hint_graph(len(pages), lines_pat, color_pat, {}, {"line_color": "trace"})   # new params: no cache hit
    _, sec = _timed_run(engine, g2, ["col"], [1])
    rows.append(Row(task, "Colorize hints", f"s / frame {size[0]}×{size[1]}", fmt(sec, 2),
                    "through the engine, CPU" + ("" if quick else ", goal ≤ 1 s")))
    return rows


def _colorize_reference(engine, tmp: Path, quick: bool) -> list[Row]:
    n, seeds, (w, h) = (4, [330], (192, 112)) if quick else (16, [330, 331, 332, 333], (456, 256))
    task = f"colourisation from a coloured key ({len(seeds)} clips × {n} frames {w}×{h}, key = frame 1)"
    rows = []
    variants = [("Colorize reference (palette, chained flow)", {"match": "flow"}),
                ("Colorize reference (flat, chained flow)", {"match": "flow", "shading": "flat"}),
                ("Colorize reference (palette, direct flow to the key)", {"match": "flow", "chain": False}),
                ("Colorize reference (regions + flow cue, chained flow; the default)", {}),
                ("Colorize reference (regions alone, chained)", {"flow_cue": 0.0})]
    for label, params in variants:
        ok = total = 0
        psnr = []
        for seed in seeds:
            g = cg.Graph(frames=f"1-{n}")
            clip = g.add("SynthClip", name="clip", seed=seed, width=w, height=h)
            g.add("Colorize", name="col", mode="reference", lines=clip["lines"], reference=clip["image"], **params)
            r = engine.run(g)
            for f in range(2, n + 1):
                a, b = region_accuracy(r.value("col", "fill", f), r.value("clip", "fill", f),
                                       r.value("clip", "regions", f), r.value("clip", "lines", f))
                ok, total = ok + a, total + b
                psnr.append(metrics.psnr(r.value("col", "image", f)[:, :, :3], r.value("clip", "image", f)))
        rows += [Row(task, label, COLOR_METRICS[0], f"{100 * ok / max(total, 1):.1f} %",
                     f"{ok}/{total} sprite regions (base, shadow, highlight, pattern) over frames 2-{n}"),
                 Row(task, label, "PSNR (dB)", fmt(np.mean(psnr), 2), "whole frame, painted plate included")]
    return rows


def _colorize_model(engine, tmp: Path, quick: bool) -> list[Row]:
    from celgraph.nodes.color import bundled_weights
    size = (456, 256) if quick else (512, 288)
    seeds = [340] if quick else list(range(340, 348))
    task = f"colourisation by model ({len(seeds)} held-out line-art pages {size[0]}×{size[1]})"
    pages = list(_lineart_pages(seeds, size))
    lines_pat = _write_sequence(tmp, "model_lines", [1.0 - p["lines"] for p in pages], "exr")
    color_pat = _write_sequence(tmp, "model_color", [p["color"] for p in pages], "exr")
    rows = []
    variants = [("Colorize hints flat fill (one dot per region; reference)", {"line_color": "black"}, True),
                ("Colorize model (pix2pix + one dot per region)", {"mode": "model"}, True),
                ("Colorize model (pix2pix, line art only)", {"mode": "model"}, False)]
    for label, params, with_hints in variants:
        if params.get("mode") == "model" and bundled_weights() is None:
            rows += missing(task, label, COLOR_METRICS, "no bundled weights yet")
            continue
        g = _hint_graph(len(pages), lines_pat, color_pat, {}, params)
        if not with_hints:
            del g.nodes["col"].inputs["hints"]
        r = engine.run(g, targets=["col"])
        ok = total = 0
        psnr = []
        for i, p in enumerate(pages, start=1):
            img = r.value("col", "image", i)[:, :, :3]
            a, b = region_accuracy(img, p["fill"], p["regions"], p["lines"])
            ok, total = ok + a, total + b
            psnr.append(metrics.psnr(img, p["color"]))
        rows += [Row(task, label, "PSNR (dB)", fmt(np.mean(psnr), 2), "vs the colour page (lines, shadows)"),
                 Row(task, label, COLOR_METRICS[0], f"{100 * ok / max(total, 1):.1f} %", f"{ok}/{total} regions")]
    return rows


SUITES = [flow_suite, decomposition_suite, gapfill_suite, sketch_suite, colorize_suite]


# ---- main -------------------------------------------------------------------------------------

@dataclass
class Config:
    flow_seeds: list[int]
    frames: int
    w: int
    h: int
    gap_seeds: list[int]
    gap_w: int
    gap_h: int


FULL = Config(flow_seeds=[100, 101, 102, 103], frames=8, w=456, h=256, gap_seeds=list(range(200, 212)),
              gap_w=1920, gap_h=1080)
QUICK = Config(flow_seeds=[100], frames=3, w=256, h=144, gap_seeds=[200], gap_w=456, gap_h=256)


def table(rows: list[Row]) -> str:
    lines = ["| task | method | metric | value | note |", "|---|---|---|---:|---|"]
    lines += [f"| {r.task} | {r.method} | {r.metric} | {r.value} | {r.note} |" for r in rows]
    return "\n".join(lines)


def read_rows(path: Path) -> list[Row]:
    """The rows of a results file written by :func:`table`."""
    rows = []
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and line.startswith("| ") and cells[0] not in ("task", "---"):
            rows.append(Row(*cells))
    return rows


def merge_rows(old: list[Row], new: list[Row]) -> list[Row]:
    """``old`` with the rows of every task family in ``new`` (the task name before " (") replaced
    in place by ``new``'s rows."""
    def family(r):
        return r.task.split(" (")[0]
    fams = {family(r) for r in new}
    out, placed = [], set()
    for r in old:
        f = family(r)
        if f in fams:
            if f not in placed:
                out += [n for n in new if family(n) == f]
                placed.add(f)
        else:
            out.append(r)
    return out + [n for n in new if family(n) not in placed]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "quality.md"))
    ap.add_argument("--suite", action="append", choices=[f.__name__.removesuffix("_suite") for f in SUITES],
                    help="run only this suite (repeatable); its rows replace the same task's rows in --out")
    args = ap.parse_args(argv)
    cfg = QUICK if args.quick else FULL
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
        rows = merge_rows(read_rows(Path(args.out)), rows)
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

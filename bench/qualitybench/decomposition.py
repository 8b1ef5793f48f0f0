"""Decomposition: WarmupAlpha/WarmupHomography/SpriteLearn against the clips' true layers and transforms."""
from __future__ import annotations

import time

import numpy as np

import celgraph as cg
from celgraph.synth import metrics

from .common import Row, fmt, has, missing, shown


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
    # (seed, sprites, deform, background): N = sprites + 1 objects; the third clip turns the sprites'
    # smooth deformation off (their squash stays), to see how much of the transforms' error it causes;
    # the fourth paints a detailed plate (outlined façades, windows, signs, leaves: SynthClip background)
    clips = [(0, 1, True, "painted")] if quick else \
        [(0, 1, True, "painted"), (1, 2, True, "painted"), (0, 1, False, "painted"), (0, 1, True, "detailed")]
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

    for seed, sprites, deform, background in clips:
        n = sprites + 1
        clip_name = f"seed {seed}, {'detailed ' if background == 'detailed' else ''}plate + {sprites} " \
                    f"sprite{'s' if sprites > 1 else ''}{'' if deform else ' (deform off: squash only)'}, " \
                    f"N = {n}, {n_frames} frames {w}×{h}"
        if cfg.clip not in clip_name:
            continue
        g = cg.Graph(frames=f"1-{n_frames}")
        c = g.add("SynthClip", name="clip", seed=seed, sprites=sprites, width=w, height=h, deform=deform,
                  background=background)
        fl = g.add("FlowRAFT", name="flow", image=c["image"])
        a = g.add("WarmupAlpha", name="alpha", image=c["image"], bundle=fl["bundle"], objects=n, preset=preset,
                  threads=1)
        hm = g.add("WarmupHomography", name="homo", image=c["image"], labels=a["labels"], bundle=fl["bundle"],
                   objects=n)
        g.add("WarmupHomography", name="homo_gt", image=c["image"], labels=c["objects"], bundle=fl["bundle"],
              objects=n)
        g.add("SpriteLearn", name="sprites", image=c["image"], labels=a["labels"], transforms=hm["transforms"],
              preset=preset, threads=1, plate_fill=cfg.plate_fill)
        seconds = {}
        for node, targets in (("flow", ["clip", "flow"]), ("alpha", ["alpha"]), ("homo", ["homo"]),
                              ("homo_gt", ["homo_gt"]), ("sprites", ["sprites"])):
            t0 = time.perf_counter()                       # each stage computed once, upstream cached
            engine.run(g, targets=targets)
            seconds[node] = time.perf_counter() - t0       # "flow" includes drawing the clip
        r = engine.run(g, targets=["clip", "flow", "alpha", "homo", "homo_gt", "sprites"])
        images = np.stack([shown(r.value("clip", "image", f)) for f in frames])
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
        truth, unseen = true_plate(seed, sprites, deform, background, w, h, n_frames, gt)
        plate_b = median_plate(images, labels, tr[:, 0])
        recon_b = np.where((labels == 0)[..., None], plate_b, images)
        method = "median plate + warm-up labels (classical baseline)"
        rows += [Row(task, method, "reconstruction PSNR (dB)", fmt(metrics.psnr(recon_b, images), 2)),
                 Row(task, method, "plate PSNR on visible background (dB)",
                     fmt(metrics.psnr(plate_b, images, mask=gt == 0), 2)),
                 Row(task, method, "plate PSNR where no frame shows it (dB)",
                     fmt(metrics.psnr(plate_b, truth, mask=unseen), 2), UNSEEN)]
        rows += iou_rows(task, method, "alpha", match([labels == k for k in range(n)], gt_masks)[1],
                         "alpha = warm-up labels")
        alpha = np.stack([r.value("sprites", "sprites", f)["alpha"] for f in frames])
        plate = np.stack([shown(r.value("sprites", "plate", f)) for f in frames])
        comp = np.stack([shown(r.value("sprites", "composite", f)) for f in frames])
        method = f"SpriteLearn `{preset}`" + ("" if cfg.plate_fill == "shiftmap" else f", plate_fill {cfg.plate_fill}")
        _, ious = match([alpha[:, k] >= 0.5 for k in range(n)], gt_masks)
        additive = alpha[:, 0, ..., None] * plate + alpha[:, 1:].sum(1)[..., None] * images
        rows += [Row(task, method, "reconstruction PSNR (dB)", fmt(metrics.psnr(comp, images), 2),
                     "sprite layers over the plate (SpriteLearn.composite)"),
                 Row(task, method, "reconstruction PSNR, additive (dB)", fmt(metrics.psnr(additive, images), 2),
                     "upstream's form Σ alpha_k·layer_k, plate alpha included"),
                 Row(task, method, "plate PSNR on visible background (dB)",
                     fmt(metrics.psnr(plate, images, mask=gt == 0), 2)),
                 Row(task, method, "plate PSNR where no frame shows it (dB)",
                     fmt(metrics.psnr(plate, truth, mask=unseen), 2), UNSEEN)]
        rows += iou_rows(task, method, "alpha", ious, "alpha ≥ 0.5 vs visible objects")
        rows.append(Row(task, method, "wall time (s)", fmt(seconds["sprites"], 1), "1 thread, shared 2-core machine"))
        total = seconds["flow"] + seconds["alpha"] + seconds["homo"] + seconds["sprites"]
        rows.append(Row(task, f"whole `{preset}` preset (clip + flow + 3 nodes)", "wall time (s)", fmt(total, 1),
                        f"flow {seconds['flow']:.1f} s (clip drawing included)"))
    return rows


UNSEEN = "against the true plate, on the pixels a sprite covers in every frame"


def true_plate(seed: int, sprites: int, deform: bool, background: str, w: int, h: int, n_frames: int,
               objects: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The clip's background alone in each frame (T×h×w×3, sRGB: SynthClip's plate through its plate
    transforms), and the pixels whose plate point no frame shows (T×h×w bool): a sprite covers it in
    every frame (objects T×h×w, 0 = plate), so a decomposition can only invent it."""
    import cv2

    from celgraph.synth import make_clip
    from celgraph.synth.clip import _affine_maps       # the maps the clip's frames were rendered with
    clip = make_clip(seed, width=w, height=h, n_frames=n_frames, n_sprites=sprites, deform=deform,
                     background=background, flow=False)
    ph, pw = clip.plate.shape[:2]
    maps = [_affine_maps(fr["plate_transform"].astype(np.float32), 0, 0, w, h, np.float32) for fr in clip.frames]
    seen = np.zeros((ph, pw), bool)
    for (mx, my), obj in zip(maps, objects):
        vis = obj == 0
        for fx in (np.floor, np.ceil):                 # every plate texel a visible pixel touches
            for fy in (np.floor, np.ceil):
                seen[np.clip(fy(my[vis]).astype(int), 0, ph - 1), np.clip(fx(mx[vis]).astype(int), 0, pw - 1)] = True
    truth = np.stack([cv2.remap(clip.plate, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
                      for mx, my in maps])
    unseen = np.stack([~seen[np.clip(np.round(my).astype(int), 0, ph - 1), np.clip(np.round(mx).astype(int), 0, pw - 1)]
                       for mx, my in maps]) & (objects != 0)
    return truth.astype(np.float32), unseen

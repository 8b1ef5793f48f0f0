"""Sprite decomposition after ToonDecompose / "Sprite-from-Sprite": WarmupAlpha, WarmupHomography,
SpriteLearn, and two helpers to take the result apart (SpriteLayer) and save the transforms
(WriteTransforms).

    image ──┬──────────────────────────────────────────────────────────────┐
            ├─ FlowRAFT ─ bundle ─┬─ WarmupAlpha ─ labels ─┬───────────────┤
            │                     └────────────────────────┴─ WarmupHomography ─ transforms ─┐
            └───────────────────────────────────────────────────────────── SpriteLearn ◄─────┘
                                      sprites → SpriteLayer(k) → Write (EXR); transforms → WriteTransforms

All three are clip-scope nodes: one task sees the whole frame range. The optimisations live in
celgraph/models/decompose and know nothing of the engine; this module maps params and presets onto
them, reports progress (where cancellation is honoured) and keeps checkpoints as cache entries keyed
by the task's content, so an interrupted run resumes where it stopped. See docs/decompose.md.
"""
from __future__ import annotations

from contextlib import contextmanager

import cv2
import numpy as np

from .. import colorspace as cs
from ..core import (Bool, CheckContext, Choice, Context, FileRef, Float, Image, In, Int, IntList, Issue, Labels, Mask,
                      NodeType, Out, PathParam, Sprites, Transforms)
from ..core.atomic import write_bytes
from ..core.hashing import file_digest
from ..core.types import as_rgb
from . import flowpairs
from .flow import FlowBundle
from .flowpairs import FLOW_PARAMS
from .modelfiles import model_device

# ---- settings shared by the optimising nodes ---------------------------------------------------------

PRESET_HELP = ("preview: seconds to a minute, rough; cpu: minutes on 2 cores for ~16 frames at 456×256; "
               "full: upstream's settings (hours; for a GPU)")
_SETTINGS = [
    Choice("preset", "cpu", choices=("preview", "cpu", "full"), help=PRESET_HELP),
    Int("seed", 0, min=0, max=2**31 - 1, help="seeds every initialisation and sample: same seed, same result"),
]
_RUNTIME = [
    Int("checkpoint_every", -1, min=-1, max=10**7, hashed=False,
        help="iterations between checkpoints; -1 = the preset's, 0 = at stage ends only. Does not change the "
             "result (a resumed run is bit-identical)"),
    Choice("device", "auto", choices=("auto", "cpu", "cuda"), hashed=False, help="where the optimisation runs"),
    Int("threads", 0, min=0, max=256, hashed=False,
        help="CPU threads for torch during this task; 0 = torch's setting. On a busy machine 1 can be many times "
             "faster than several threads fighting for cores"),
]


# ---- WarmupAlpha --------------------------------------------------------------------------------------

class WarmupAlpha(NodeType):
    """Per-pixel object labels from the flow alone (ToonDecompose step 1, "flow peeling").

    Objects are peeled one after another from the flow bundle: object 0 is the background, an
    affine motion per frame pair fitted robustly (trimming at ∞/32/16/8 px); each later object is
    a smooth coordinate-MLP flow fitted to what is still unexplained; every pixel an object explains
    within 2 px is labelled with it (later objects overwrite earlier ones). A joint winner-take-all
    phase then trains a segmentation MLP over (frame, x, y, colour) where the objects clearly
    disagree (std > 4 px), and wherever the background's motion misses the flow by more than 16 px
    (there the nearest sprite's label: a sprite's parts need not all follow its one fitted motion);
    its argmax gives the labels of every frame. Pixel thresholds are at a 256-px frame height and
    scale with the frame.
    """
    id, version, category = "celgraph.WarmupAlpha", 3, "Decompose"
    color_space = cs.DISPLAY                         # tuned on sRGB frames
    scope = "clip"
    device = "any"
    inputs = [In("image", Image, help="the clip"),
              In("bundle", FlowBundle, help="FlowRAFT.bundle (offsets −3, −1, +1, +3 as upstream)")]
    outputs = [Out("labels", Labels, "object per pixel, 0 = background … N−1"),
               Out("preview", Image, "labels in palette colours over the frame")]
    params = [
        Int("objects", 2, min=2, max=16, help="number of objects N, the background included"),
        *_SETTINGS,
        Int("iters", 0, min=0, max=10**7, help="phase A iterations per object; 0 = preset (full: 40000)"),
        Int("blend_iters", 0, min=0, max=10**7, help="phase B iterations; 0 = preset (full: 40000)"),
        Int("batch", 0, min=0, max=10**6, help="samples per iteration; 0 = preset (full: 10000)"),
        Int("hidden", 0, min=0, max=4096, help="MLP width; 0 = preset (full: 256)"),
        Int("layers_bg", 0, min=0, max=64, help="background flow MLP layers; 0 = preset (full: 6)"),
        Int("layers_fg", 0, min=0, max=64, help="foreground flow MLP layers; 0 = preset (full: 12)"),
        Int("layers_seg", 0, min=0, max=64, help="segmentation MLP layers; 0 = preset (full: 8)"),
        Int("hidden_seg", 0, min=0, max=4096, help="segmentation MLP width; 0 = preset (full: = hidden)"),
        Float("lr", 0.0, min=0.0, max=1.0, help="Adam learning rate; 0 = preset (full: 1e-4)"),
        Float("work_scale", 0.0, min=0.0, max=1.0,
              help="resolution of the flow samples relative to the frames; 0 = preset (full: 1)"),
        Choice("background", "preset", choices=("preset", "mlp", "lsq"),
               help="object 0: mlp = upstream's PE-MLP affine; lsq = per-pair trimmed least squares (fast)"),
        Choice("foreground", "preset", choices=("preset", "mlp", "ransac"),
               help="objects ≥ 1: mlp = upstream's coordinate MLP flow; ransac = per-pair RANSAC affine (one "
                    "rigid-ish sprite at a time: better with several sprites)"),
        IntList("trim_px", [32, 16, 8], min=1, max=4096,
                help="object 0's trimming thresholds over the 2nd, 3rd and 4th quarter of its schedule"),
        Float("inlier_px", 2.0, min=0.01, max=100.0, help="an object claims pixels it explains within this"),
        Float("gate_px", 4.0, min=0.0, max=100.0, help="phase B learns labels where std of errors exceeds this"),
        Float("background_px", 16.0, min=0.0, max=1000.0,
              help="phase B: a pixel whose flow the background's motion misses by more than this (px) learns the "
                   "nearest sprite's label even where no sprite's motion fits it (a body that moves unlike its head); "
                   "0 = off (upstream: the nearest motion wins)"),
        Int("reference_height", 256, min=16, max=8192, help="pixel thresholds are at this frame height"),
        *_RUNTIME,
    ]
    _FIELDS = {"iters": "iters", "blend_iters": "blend_iters", "batch": "batch", "hidden": "hidden",
               "layers_bg": "layers_bg", "layers_fg": "layers_fg", "layers_seg": "layers_seg",
               "hidden_seg": "hidden_seg", "lr": "lr", "work_scale": "work_scale", "background": "background",
               "foreground": "foreground", "trim_px": "trim_px", "inlier_px": "inlier_px", "gate_px": "gate_px",
               "background_px": "background_px",
               "reference_height": "reference_height", "seed": "seed", "objects": "objects",
               "checkpoint_every": "checkpoint_every"}

    def check(self, ctx: CheckContext) -> list[Issue]:
        params = ctx.params
        if len(params["trim_px"]) != 3:
            return [Issue("param_out_of_range", "trim_px needs three thresholds (px)", ctx.node, "trim_px")]
        return []

    def compute(self, ctx: Context, image, bundle):
        from ..models.decompose.peel import PRESETS, decompose_labels
        image = cs.node_in(self, image)
        frames = list(ctx.frames)
        _check_sizes(image, bundle=None)
        cfg = _config(self, ctx, PRESETS, self._FIELDS)
        index = {f: i for i, f in enumerate(frames)}
        pairs = [(index[f], index[f + k], np.asarray(fl, np.float32))
                 for f in frames for k, fl in sorted((bundle.get(f) or {}).items()) if f + k in index]
        rgb = np.stack([as_rgb(image[f]) for f in frames])
        device = model_device(ctx)
        with _threads(ctx):
            labels, _ = decompose_labels(cfg, rgb, pairs, device=device, progress=_progress(ctx, "WarmupAlpha"),
                                         checkpoint=_checkpointer(self, ctx, ["image", "bundle"], device))
        out = {"labels": {f: labels[i] for i, f in enumerate(frames)}}
        if ctx.wants("preview"):                           # only when read (ctx.wants)
            colours = palette(cfg.objects)
            out["preview"] = cs.node_out(self, {f: 0.5 * rgb[i] + 0.5 * colours[labels[i]]
                                                for i, f in enumerate(frames)})
        return out


# ---- WarmupHomography -----------------------------------------------------------------------------

class WarmupHomography(NodeType):
    """Per-object similarity transforms chained over keyframes (ToonDecompose step 2).

    For each object, frame i is matched to an anchor frame through the flows i→anchor and
    anchor→i; the object's pixels that pass the forward–backward check feed a 4-DOF similarity
    RANSAC (3 px). The match is kept when the consistent inliers cover more than `accept` of the
    object, else the anchor moves to i−1. Chains are then normalised so every frame lands in the
    unit square (one scale for u and v). Output: per frame, N×3×3 frame-pixel → unit-canvas maps.

    Flow pairs the bundle already holds (FlowRAFT's ±1, ±3) are reused; other pairs are computed
    through FlowRAFT's pair cache with this node's flow settings (keep them equal to the FlowRAFT
    node's and even the bundle pairs are cache hits), once per pair for all objects.
    """
    id, version, category = "celgraph.WarmupHomography", 2, "Decompose"
    color_space = cs.DISPLAY
    scope = "clip"
    device = "any"
    inputs = [In("image", Image, help="the clip"),
              In("labels", Labels, help="object per pixel, 0..N−1 (WarmupAlpha.labels; 0 = background)"),
              In("bundle", FlowBundle, optional=True, help="FlowRAFT.bundle: its pairs are reused")]
    outputs = [Out("transforms", Transforms, "per object (0 first) frame pixel → unit canvas, 3×3"),
               Out("preview", Image, "step 3's preview: each object's canvas as sin stripes where it is labelled")]
    params = [
        Int("objects", 0, min=0, max=16, help="number of objects N; 0 = largest label + 1"),
        Bool("upstream_area_ratio", False,
             help="score a match by inliers / pixels OUTSIDE the object, as upstream does (a bug that makes "
                  "small objects chain frame to frame); off: inliers / pixels of the object"),
        Float("accept", 0.9, min=0.0, max=1.0, help="keep a long-range match when its score exceeds this"),
        Float("consistency", 2.0, min=0.0, max=100.0, help="forward–backward check: |F + B∘F|² above this "
                                                           "(px²) is inconsistent"),
        Float("ransac_px", 3.0, min=0.1, max=50.0, help="RANSAC reprojection threshold in pixels"),
        *FLOW_PARAMS,
    ]

    def check(self, ctx: CheckContext) -> list[Issue]:
        return flowpairs.weight_issues(ctx)        # it computes extra pairs like FlowRAFT

    def fingerprint(self, ctx: Context):
        digest = flowpairs.weights_digest(ctx)     # the RAFT weights, when RAFT computes pairs
        return None if digest is None else {"weights": digest}

    def compute(self, ctx: Context, image, labels, bundle=None):
        from ..models.decompose.chain import chain, normalise, uv_pattern
        image = cs.node_in(self, image)
        _check_sizes(image, labels=labels, bundle=None)
        frames = list(ctx.frames)
        n_obj = _count_objects(labels, ctx.params.objects)
        h, w = next(iter(image.values())).shape[:2]
        pairs: dict[tuple[int, int], np.ndarray] = {}

        def flow(i: int, j: int) -> np.ndarray:
            fi, fj = frames[i], frames[j]
            if (fi, fj) not in pairs:
                got = (bundle or {}).get(fi, {}).get(fj - fi)
                if got is None:
                    got = flowpairs.pair(ctx, ctx.input_key("image", fi), ctx.input_key("image", fj),
                                         image[fi], image[fj])
                pairs[(fi, fj)] = np.asarray(got, np.float32)
            return pairs[(fi, fj)]

        p = ctx.params
        raw = []
        for k in range(n_obj):
            def progress(done, total, k=k):
                ctx.progress(k + done / max(total, 1), n_obj, f"object {k}: frame {done}/{total}")
            H, _attempts = chain(len(frames), lambda i, k=k: labels[frames[i]] == k, flow, accept=p.accept,
                                 consistency=p.consistency, ransac_px=p.ransac_px,
                                 upstream_area_ratio=p.upstream_area_ratio, progress=progress)
            raw.append(normalise(H, w, h))
        transforms = {f: np.stack([raw[k][i] for k in range(n_obj)]) for i, f in enumerate(frames)}
        if not ctx.wants("preview"):                       # only when read (ctx.wants)
            return {"transforms": transforms}
        preview = {}
        for f in frames:
            onehot = np.stack([(labels[f] == k) for k in range(n_obj)]).astype(np.float32)
            preview[f] = uv_pattern(transforms[f], onehot)
        return {"transforms": transforms, "preview": cs.node_out(self, preview)}


# ---- SpriteLearn --------------------------------------------------------------------------------------

class SpriteLearn(NodeType):
    """Sprites from a clip: a background plate and per-object RGBA layers (ToonDecompose steps 4-6).

    Needs the warm-up labels (WarmupAlpha) and transforms (WarmupHomography). The background is an
    inpainted, time-invariant plate: a texture over its canvas (the `cpu` and `preview` presets; each
    frame aligned onto it by a smooth per-frame offset field where one homography cannot follow a
    street with depth) or a coordinate MLP (`full`, upstream); every other object is a
    per-frame canvas filled by splats; per-object "pixel MLPs", each conditioned on the other
    objects' contents, give the alphas. Stage s1 reconstructs the frames under the warm-up labels;
    stage s2 hands each pixel to the content that explains its colour best. With the texture plate
    (`cpu`, `preview`), the votes that holes in the alphas give the plate (a sprite's own pixels the
    alpha let through) are taken back before s2 and again from the delivered plate, and the texels the
    learnt alphas show only beside a sprite, in few frames, are inpainted like the ones never seen: by
    shift-map completion (`plate_fill`), which continues the windows and walls around them instead of
    averaging them into a smudge in the sprite's shape. Pockets of a sprite its alpha misses (cut off
    from the rest of the background by it and the frame's edge, in its colours: a sleeve leaving the
    frame) are taken back from the plate too, and the export gives them to the sprite. Delivered at full
    size, the plate takes a frame's own pixels only where they are plate. Outputs: the rendered
    plate, per-object alphas and RGBA layers (the frame cut out by each alpha) in `sprites` (take them
    apart with SpriteLayer), labels, the transforms, the layers re-composited over the plate, and a
    contact-sheet preview per frame.
    """
    id, version, category = "celgraph.SpriteLearn", 16, "Decompose"
    color_space = cs.DISPLAY                         # learns in sRGB; its Sprites hold sRGB (SpriteLayer converts)
    scope = "clip"
    device = "any"
    inputs = [In("image", Image, help="the clip"),
              In("labels", Labels, help="warm-up labels, 0 … N−1 (WarmupAlpha.labels)"),
              In("transforms", Transforms, help="per object frame → unit canvas (WarmupHomography.transforms)")]
    outputs = [Out("sprites", Sprites, "{plate H×W×3, layers N×H×W×4 premultiplied RGBA (0 = the plate, opaque), "
                                       "alpha N×H×W, transforms N×3×3}"),
               Out("plate", Image, "the background plate rendered in frame coordinates (inpainted)"),
               Out("labels", Labels, "argmax of the alphas"),
               Out("transforms", Transforms, "the transforms the sprites were learnt with"),
               Out("composite", Image, "the sprite layers over the plate (Σ layer_k + (1 − Σ alpha_k)·plate, k ≥ 1)"),
               Out("preview", Image, "contact sheet: frame | UV stripes by alpha | composite, then plate | "
                                     "objects on grey")]
    params = [
        *_SETTINGS,
        Int("s1_iters", 0, min=0, max=10**7, help="stage s1 iterations; 0 = preset (full: 40000)"),
        Int("s2_iters", 0, min=0, max=10**7, help="stage s2 iterations; 0 = preset (full: 60000)"),
        Int("batch", 0, min=0, max=10**6, help="samples per iteration; 0 = preset (full: 10000)"),
        Int("hidden", 0, min=0, max=4096, help="MLP width; 0 = preset (full: 256)"),
        Int("pixel_layers", 0, min=0, max=64, help="pixel MLP layers; 0 = preset (full: 8)"),
        Int("content_layers", 0, min=0, max=64, help="background plate MLP layers; 0 = preset (full: 10)"),
        Int("content_pe", 0, min=0, max=24, help="plate positional-encoding frequencies; 0 = preset (full: 12)"),
        Int("canvas", 0, min=0, max=8192, help="foreground canvas side in texels; 0 = preset (full: 512)"),
        Choice("plate", "preset", choices=("preset", "mlp", "texture", "texture+mlp"),
               help="the background plate: mlp = upstream's PE-MLP over (u, v, t); texture = a texel grid over the "
                    "plate canvas (about one texel per frame pixel), started from the median of the background "
                    "pixels and optimised directly: holds painted detail; texture+mlp = the texture plus the MLP "
                    "as a residual. preset: full = mlp, cpu and preview = texture"),
        Float("lr", 0.0, min=0.0, max=1.0, help="Adam learning rate; 0 = preset (full: 1e-4)"),
        Float("jitter", 0.03, min=0.0, max=1.0, help="splat position jitter (canvas units, σ)"),
        Float("ema", 0.5, min=0.0, max=1.0, help="splat moving-average weight of the old canvas value"),
        Float("bg_gate", 16 / 256, min=0.0, max=2.0,
              help="s2: the plate may claim a pixel only within this colour distance"),
        Float("memory_switch", 1 / 6, min=0.0, max=1.0, help="s2: real-time plate memory loss from this fraction"),
        Int("work_height", 0, min=0, max=8192,
            help="learn at this frame height (frames area-resized, labels and transforms rescaled) and deliver the "
                 "layers at the image's size (alphas upsampled along the frame's edges, colours from the full-size "
                 "frames, transforms in its pixels); 0 = the labels' height: run the warm-up on a Reformat of the "
                 "image to learn at its size"),
        Float("overwrite_switch", 0.5, min=0.0, max=1.0,
              help="s2: canvases overwritten (no jitter) from this fraction"),
        Float("plate_revote", 0.0, min=0.0, max=64.0,
              help="texture plate, > 0: after stage s2 rebuild the plate from the pixels the learnt alphas give the "
                   "background, at least this many px (at 256 high) from the sprites, instead of the warm-up labels' "
                   "(removes sprite ghosts the warm-up put in the plate, blurs what only frames next to a sprite "
                   "see; docs/decompose.md); 0 = off (every preset)"),
        Choice("plate_fill", "shiftmap", choices=("shiftmap", "pushpull"),
               help="texture plate: how the delivered plate fills what no frame shows clearly (behind a sprite all "
                    "along, or only beside it in a few frames): shiftmap = continue the structure around what no frame "
                    "shows (shift-map completion, He & Sun 2012) and smooth what a few frames show into it; pushpull = "
                    "a smooth average of the surroundings"),
        *_RUNTIME,
    ]
    _FIELDS = {"s1_iters": "s1_iters", "s2_iters": "s2_iters", "batch": "batch", "hidden": "hidden",
               "pixel_layers": "pixel_layers", "content_layers": "content_layers", "content_pe": "content_pe",
               "canvas": "canvas", "lr": "lr", "seed": "seed", "checkpoint_every": "checkpoint_every", "plate": "plate",
               "plate_revote": "plate_revote"}

    def compute(self, ctx: Context, image, labels, transforms):
        from dataclasses import replace

        from ..models.decompose import fullsize
        from ..models.decompose.chain import uv_pattern
        from ..models.decompose.sprites import PRESETS, learn_sprites
        image = cs.node_in(self, image)
        frames = list(ctx.frames)
        p = ctx.params
        cfg = replace(_config(self, ctx, PRESETS, self._FIELDS), jitter=p.jitter, ema=p.ema, bg_gate=p.bg_gate,
                      memory_switch=p.memory_switch, overwrite_switch=p.overwrite_switch, plate_fill=p.plate_fill)
        rgb = np.stack([as_rgb(image[f]) for f in frames])
        tr = _stack(transforms, frames)
        n = tr.shape[1]
        lab = _stack(labels, frames)
        if lab.max() >= n or lab.min() < 0:
            raise ValueError(f"labels go from {lab.min()} to {lab.max()} but there are {n} transforms per frame")
        full, warm, work = _work_sizes(rgb, lab, p.work_height)
        if work != warm:                                   # labels and transforms to the working size
            lab = np.stack([_resize(x, work, nearest=True) for x in lab])
            tr = fullsize.rescale_transforms(tr, warm, work)
        rgb_work = rgb if work == full else np.stack([_resize(x, work) for x in rgb])
        device = model_device(ctx)
        with _threads(ctx):
            ex, _ = learn_sprites(cfg, rgb_work, lab, tr, device=device, progress=_progress(ctx, "SpriteLearn"),
                                  checkpoint=_checkpointer(self, ctx, ["image", "labels", "transforms"], device))
        out = {o.name: {} for o in self.outputs if ctx.wants(o.name) or o.name != "preview"}
        for i, f in enumerate(frames):                     # the result at the working size
            a = ex.alpha[i]                                                   # N×H×W
            layers = np.concatenate([rgb_work[i][None] * a[1:, :, :, None], a[1:, :, :, None]], axis=3)
            plate_layer = np.concatenate([ex.plate[i], np.ones_like(ex.plate[i][:, :, :1])], axis=2)
            layers = np.concatenate([plate_layer[None], layers], axis=0).astype(np.float32)
            composite = fullsize.composite(layers).astype(np.float32)     # what a compositor gets
            out["sprites"][f] = {"plate": ex.plate[i], "layers": layers, "alpha": a, "transforms": tr[i]}
            out["plate"][f] = ex.plate[i]
            out["labels"][f] = ex.labels[i]
            out["transforms"][f] = tr[i]
            out["composite"][f] = composite
            if "preview" in out:                           # only when read (ctx.wants)
                out["preview"][f] = contact_sheet(rgb_work[i], uv_pattern(tr[i], a), composite, ex.plate[i],
                                                  layers[1:])
        if work != full:                                   # delivered at the frames' size (preview stays)
            progress = _progress(ctx, "SpriteLearn")
            big = fullsize.deliver(list(rgb), ex.alpha, ex.plate, tr,
                                   progress=lambda d, t: progress(1.0, f"full-size layers {d}/{t}"))
            for i, f in enumerate(frames):
                a, layers = big["alpha"][i], big["layers"][i]
                out["sprites"][f] = {"plate": big["plate"][i], "layers": layers, "alpha": a,
                                     "transforms": big["transforms"][i]}
                out["plate"][f] = big["plate"][i]
                out["labels"][f] = a.argmax(0).astype(np.int32)
                out["transforms"][f] = big["transforms"][i]
                out["composite"][f] = fullsize.composite(layers).astype(np.float32)
        return {**out, **{k: cs.node_out(self, out[k]) for k in ("plate", "composite", "preview") if k in out}}


def _work_sizes(rgb: np.ndarray, labels: np.ndarray, work_height: int):
    """(frame size, the warm-up's size, the working size), each (w, h). The warm-up (labels, transforms)
    may have run on smaller frames of the same aspect; the working size is the warm-up's unless
    work_height asks for another height."""
    H, W = rgb.shape[1:3]
    h, w = labels.shape[1:3]
    if abs(w * H / h - W) > max(1.0, W / w):
        raise ValueError(f"the labels are {w}×{h} but the image is {W}×{H}: the warm-up must run on the image or on "
                         "the image resized with its aspect kept")
    if h > H:
        raise ValueError(f"the labels ({w}×{h}) are larger than the image ({W}×{H})")
    if work_height and work_height != h:
        if work_height > H:
            raise ValueError(f"work_height {work_height} is above the image's height {H}")
        return (W, H), (w, h), (max(8, round(W * work_height / H)), work_height)
    return (W, H), (w, h), (w, h)


def _resize(x: np.ndarray, wh: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resize to (w, h): area filter (colours), or nearest (labels)."""
    if x.shape[1] == wh[0] and x.shape[0] == wh[1]:
        return x
    if nearest:
        return cv2.resize(np.asarray(x, np.int32).astype(np.float32), wh, interpolation=cv2.INTER_NEAREST
                          ).astype(np.asarray(x).dtype)
    return cv2.resize(np.ascontiguousarray(x, np.float32), wh, interpolation=cv2.INTER_AREA)


# ---- taking the result apart ---------------------------------------------------------------------------

class SpriteLayer(NodeType):
    """One object of SpriteLearn's sprites as an image a compositor can use: premultiplied RGBA (object 0
    is the opaque background plate) and its alpha as a mask. Write it to EXR."""
    id, version, category = "celgraph.SpriteLayer", 2, "Decompose"
    color_space = cs.DISPLAY                         # Sprites hold sRGB values
    inputs = [In("sprites", Sprites, help="SpriteLearn.sprites")]
    outputs = [Out("image", Image, "premultiplied RGBA of the object (the plate for object 0)"),
               Out("alpha", Mask, "the object's alpha")]
    params = [Int("object", 1, min=0, max=15, help="object index: 0 = background plate, 1 … N−1 sprites")]

    def compute(self, ctx: Context, sprites):
        k = ctx.params.object
        layers = sprites["layers"]
        if k >= len(layers):
            raise ValueError(f"object {k} does not exist: the sprites have {len(layers)} objects "
                             f"(0 … {len(layers) - 1})")
        return {"image": cs.node_out(self, np.asarray(layers[k], np.float32)),
                "alpha": np.asarray(sprites["alpha"][k], np.float32)}


class WriteTransforms(NodeType):
    """Save per-object, per-frame transforms to one file for the whole clip: .json ({"frames": [...],
    "objects": N, "matrices": {frame: N×3×3}}) or .npz (frames, matrices T×N×3×3). Convention: each
    matrix maps frame pixel (x right, y down, pixel centres at integers) to the object's unit canvas."""
    id, version, category = "celgraph.WriteTransforms", 1, "IO"
    scope = "clip"
    side_effect = True
    inputs = [In("transforms", Transforms)]
    outputs = [Out("file", FileRef, "{path, sha256, bytes} of the written file")]
    params = [PathParam("path", "", help="output file, .json or .npz", file="out")]

    def check(self, ctx: CheckContext) -> list[Issue]:
        params = ctx.params
        if not params["path"]:
            return [Issue("param_type", "no output path given", ctx.node, "path")]
        if not params["path"].lower().endswith((".json", ".npz")):
            return [Issue("bad_path", f"{params['path']!r}: use a .json or .npz file", ctx.node, "path")]
        return []

    def fingerprint(self, ctx: Context):
        return {"target": str(ctx.resolve(ctx.params.path).resolve())}

    def verify(self, ctx: Context, outputs) -> bool:
        from pathlib import Path
        first = next(iter(outputs["file"].values()))
        path = Path(first["path"])
        return path == ctx.resolve(ctx.params.path).resolve() and path.is_file() and \
            file_digest(path) == first["sha256"]

    def compute(self, ctx: Context, transforms):
        import io
        import json
        target = ctx.resolve(ctx.params.path).resolve()
        frames = list(ctx.frames)
        mats = _stack(transforms, frames)
        if target.suffix.lower() == ".json":
            data = json.dumps({"frames": frames, "objects": int(mats.shape[1]),
                               "convention": "frame pixel (x right, y down) -> object unit canvas, 3x3, column vectors",
                               "matrices": {str(f): m.tolist() for f, m in zip(frames, mats)}}, indent=1).encode()
        else:
            buf = io.BytesIO()
            np.savez(buf, frames=np.asarray(frames), matrices=mats)
            data = buf.getvalue()
        write_bytes(target, data)
        ref = {"path": str(target), "sha256": file_digest(target), "bytes": target.stat().st_size}
        return {"file": {f: ref for f in frames}}


# ---- helpers ---------------------------------------------------------------------------------------

# Preview colours per object (RGB 0..1): upstream's palette (object 0 black, 1 white, 2 and 3 from its
# BGR table); later objects get colours from a seeded generator (upstream's are unseeded).
_PALETTE = [(0, 0, 0), (255, 255, 255), (20, 40, 200), (200, 40, 20)]


def palette(n: int) -> np.ndarray:
    """n×3 float32 preview colours."""
    cols = list(_PALETTE[:n])
    rng = np.random.default_rng(12345)
    while len(cols) < n:
        cols.append(tuple(int(c) for c in rng.integers(40, 256, 3)))
    return np.asarray(cols, np.float32) / 255.0


def _count_objects(labels: dict, wanted: int) -> int:
    if wanted:
        return wanted
    return max(2, int(max(int(v.max()) for v in labels.values())) + 1)


def _check_sizes(image: dict, **others) -> None:
    for f, img in image.items():
        for name, values in others.items():
            if values is not None and f in values and values[f].shape[:2] != img.shape[:2]:
                raise ValueError(f"frame {f}: {name} is {values[f].shape[1]}×{values[f].shape[0]} but the image is "
                                 f"{img.shape[1]}×{img.shape[0]}")


def _config(node: NodeType, ctx: Context, presets: dict, fields: dict):
    """The preset's config, with each param in `fields` overriding it unless it holds its "use the
    preset" value (0 for counts and rates, "preset" for choices, −1 for checkpoint_every)."""
    from dataclasses import replace
    p = ctx.params
    changes = {}
    for param, field in fields.items():
        v = p[param]
        if v == "preset" or (param == "checkpoint_every" and v == -1) or \
                (param != "checkpoint_every" and type(node).param(param).default == 0 and v == 0):
            continue
        changes[field] = tuple(float(x) for x in v) if isinstance(v, list) else v
    return replace(presets[p.preset], **changes)


def _checkpointer(node: NodeType, ctx: Context, inputs: list[str], device: str):
    """checkpoint(segment, compute) for models.decompose.resumable.run: each segment's state is a cache
    entry keyed by this task's content (its input values, hashed params, frames) + the segment +
    the device, so a rerun of the same task — after a cancel or a crash — finds every finished
    segment and continues after the last one. Without a cache (--no-cache) nothing is kept."""
    task = {"inputs": {name: [ctx.input_key(name, f) for f in ctx.frames] for name in inputs},
            "params": {q.name: ctx.params[q.name] for q in type(node).params if q.hashed},
            "frames": list(ctx.frames), "device": device}

    def checkpoint(segment: str, compute):
        return ctx.cached({"checkpoint": segment, "task": task}, compute, ram=False)
    return checkpoint


def _progress(ctx: Context, what: str):
    return lambda fraction, message: ctx.progress(fraction, 1.0, f"{what}: {message}")


def _stack(values: dict, frames) -> np.ndarray:
    return np.stack([np.asarray(values[f]) for f in frames])


@contextmanager
def _threads(ctx: Context):
    """torch.set_num_threads for the task (process-wide in torch; restored afterwards)."""
    n = ctx.params.threads
    if not n:
        yield
        return
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def contact_sheet(frame, uv, composite, plate, layers) -> np.ndarray:
    """Two rows: frame | UV stripes | composite, then plate | each object on a grey matte (48/255, as
    upstream's export)."""
    grey = 48.0 / 255.0
    top = [frame, uv, composite]
    bottom = [plate] + [lay[:, :, :3] + grey * (1.0 - lay[:, :, 3:4]) for lay in layers]
    cols = max(len(top), len(bottom))
    blank = np.zeros_like(frame)
    rows = [np.concatenate(r + [blank] * (cols - len(r)), axis=1) for r in (top, bottom)]
    return np.clip(np.concatenate(rows, axis=0), 0.0, 1.0).astype(np.float32)

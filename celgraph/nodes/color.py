"""Colorize: line art → colour, the three ways a studio works — from colour hints, from a coloured
key frame (reference), or with a pix2pix model trained on the show — plus ColorHints, which makes
hint dots from an already coloured frame (for demos, tests and benchmarks).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .. import colorspace as cs
from ..core import (Bool, CheckContext, Choice, Context, Float, Image, In, Int, IntList, Issue, Labels, LineArt,
                      Mask, NodeType, Out, PathParam)
from ..core.hashing import file_digest
from .modelfiles import accelerated, bundled_file, load_model, runtime_issues, weights_issues
from . import flowpairs
from .flowpairs import FLOW_PARAMS

BUNDLED = "colorize_pix2pix.safetensors"
MODES = ("hints", "reference", "model")


def bundled_weights() -> Path | None:
    return bundled_file(BUNDLED)


class Colorize(NodeType):
    """Flat-colour line art from colour hints, from a coloured key frame, or with a trained model.

    The line art is split into regions that never cross a closed line (gaps up to `close_gaps`
    px are closed trapped-ball style); the fill runs under the lines.

    * `hints`: each region takes the colour of the scribbles or dots inside it. Sloppy hints are
      tolerated: a scribble's spill into a neighbour region (under `spill` of the scribble) is
      ignored, hint pixels on ink count little, and a region's own hint beats a neighbour's
      spill. A region with no hint is transparent by default (`unhinted`) and shows in `unsure`.
    * `reference`: colours frame t from the coloured key frame(s) (`reference` input, read at
      `key_frames`; empty = the scene's first frame). `match = regions` (default) matches each
      region of t to a key region by shape, position after the drawing's overall motion, and
      neighbours (celgraph.models.regions), against the nearest key before and after t (the
      lower cost wins, the nearer key on a tie), with the optical flow between the line drawings
      as one more cue (`flow_cue`; 0 = regions alone, matched frame by frame when `chain` is on).
      `match = flow` is the older method: each region follows the
      flow (FlowRAFT settings below, frame by frame from the key when `chain` is on) to the key
      region it lands on. Colours are the key's, shadows and highlights included (`shading`
      palette). A region with no match stays unpainted; unmatched and unsure matches (below
      `confidence`) show in `unsure`; a hint always wins.
    * `model`: a pix2pix U-Net (celgraph's bundled weights trained on synthetic cels, or your own
      from `graph train colorize`). Hints, when linked, are flat-filled first and guide it.
    """
    id, version, category = "celgraph.Colorize", 2, "Color"
    color_space = cs.DISPLAY                         # hints, references and fills in sRGB
    inputs = [In("lines", LineArt, help="the line art (ink coverage); gap-close it first (GapFill) for big gaps"),
              In("hints", Image, optional=True,
                 help="colour hints: RGBA (alpha ≥ 0.5 is a hint) or RGB (non-black pixels are hints)"),
              In("reference", Image, optional=True, help="reference mode: the coloured key frame(s)")]
    outputs = [Out("image", Image, "RGBA (premultiplied): the colours with the line art over them"),
               Out("fill", Image, "RGBA: the colours alone, running under the lines"),
               Out("regions", Labels, "fill region id per pixel (ink pixels: the region they border)"),
               Out("unsure", Mask, "1 on regions without a hint (hints) or with an unsure match (reference)")]
    params = [
        Choice("mode", "hints", choices=MODES, help="hints, reference (coloured key frame) or model (pix2pix)"),
        Float("threshold", 0.5, min=0.01, max=1.0, help="ink coverage at or above this is line"),
        Float("close_gaps", 4.0, min=0.0, max=32.0, help="close gaps in the lines up to this width (px) when "
                                                         "splitting regions; 0 = off"),
        Choice("line_color", "black", choices=("black", "trace", "none"),
               help="black ink, trace (the darkened colour of the region under it) or none (fill only)"),
        Choice("unhinted", "transparent", choices=("transparent", "nearest", "paper"),
               help="a region with no hint: transparent (default), the nearest region's colour, or white"),
        Int("min_region", 8, min=0, max=10000, help="regions smaller than this (px) take their neighbour's colour"),
        Float("spill", 0.25, min=0.0, max=1.0, help="a scribble's part in another region below this share is ignored"),
        IntList("key_frames", [], help="reference: frames where the reference input is coloured; empty = the first frame"),
        Choice("match", "regions", choices=("regions", "flow"),
               help="reference: regions = match regions by shape, motion and neighbours; flow = follow the "
                    "optical flow (the older method)"),
        Float("flow_cue", 1.0, min=0.0, max=4.0,
              help="reference, regions: weight of the optical flow as one cue; a region nothing else "
                   "matches follows a clear flow vote (0 = no flow computed: regions alone, chained)"),
        Bool("chain", True, help="reference: follow the motion frame by frame from the key (robust to large "
                                 "motion) instead of one flow straight to the key"),
        Choice("shading", "palette", choices=("palette", "flat"),
               help="reference: palette keeps the key's shadows and highlights; flat = one colour per region"),
        Float("confidence", 0.6, min=0.0, max=1.0,
              help="reference: matches below this are unsure (flow: share of the region's pixels; regions: "
                   "cost margin to a differently coloured candidate, relative to no match)"),
        *FLOW_PARAMS,
        PathParam("model_weights", "", help="model: Colorize pix2pix .safetensors; empty = bundled", hashed=False),
    ]
    device = "any"

    # ---- interface hooks --------------------------------------------------------------
    def _model_path(self, params, ctx: CheckContext) -> Path | None:
        return ctx.resolve(params["model_weights"]) if params["model_weights"] else bundled_weights()

    def uses_torch(self, params) -> bool:
        return params["mode"] == "model"

    def check(self, ctx: CheckContext) -> list[Issue]:
        params = ctx.params
        issues = []
        if params["mode"] == "model":
            issues += weights_issues(self._model_path(params, ctx), ctx.node,
                                     "no bundled Colorize weights: set model_weights", "model_weights")
            issues += runtime_issues(ctx)
        if params["mode"] == "reference":
            if params["key_frames"] and not set(params["key_frames"]) & set(ctx.frames):
                issues.append(Issue("bad_frames", f"none of the key frames {params['key_frames']} is in the scene's frames",
                                    ctx.node, "key_frames"))
            if _uses_flow(params):
                issues += flowpairs.weight_issues(ctx)
        return issues

    def _keys(self, ctx: Context) -> list[int]:
        """The key frames frame t is coloured from, nearest first: the nearest key (flow), or the
        nearest at or before t and the nearest at or after t (regions)."""
        t = ctx.frame
        keys = [k for k in ctx.params.key_frames if k in ctx.frames] or [ctx.frames[0]]
        nearest = min(keys, key=lambda k: (abs(k - t), k))
        if ctx.params.match == "flow" or t in keys:
            return [nearest]
        sides = [max((k for k in keys if k < t), default=None), min((k for k in keys if k > t), default=None)]
        return sorted({k for k in sides if k is not None}, key=lambda k: (abs(k - t), k))

    def _key(self, ctx: Context) -> int:
        return self._keys(ctx)[0]

    def _path(self, ctx: Context, k: int | None = None) -> list[int]:
        """Frames from t to key k (both included; default the nearest), along the scene's frame list."""
        t, k = ctx.frame, self._key(ctx) if k is None else k
        if not ctx.params.chain:
            return [t] if t == k else [t, k]
        fs = sorted(ctx.frames)
        i, j = fs.index(t), fs.index(k)
        return fs[i:j - 1 if j else None:-1] if j < i else fs[i:j + 1]

    def frames_needed(self, ctx: Context):
        if ctx.params.mode != "reference":
            return {}
        keys = self._keys(ctx)
        lines = {ctx.frame, *keys}
        if _uses_flow(ctx.params) or ctx.params.chain:
            for k in keys:
                lines.update(self._path(ctx, k))
        return {"lines": sorted(lines), "reference": sorted(keys)}

    def fingerprint(self, ctx: Context):
        p = ctx.params
        if p.mode == "model":
            return {"model": file_digest(self._model_path(p, ctx))}
        digest = flowpairs.weights_digest(ctx) if p.mode == "reference" and _uses_flow(p) else None
        return None if digest is None else {"flow_weights": digest}

    # ---- compute ------------------------------------------------------------------------
    def compute(self, ctx: Context, lines, hints=None, reference=None):
        # the reference is converted where a key frame is prepared (_key_frame): once per key, not per frame
        out = self._colorize(ctx, lines, cs.node_in(self, hints), reference)
        return {**out, "image": cs.node_out_runs(self, out["image"]), "fill": cs.node_out_runs(self, out["fill"])}


    def _colorize(self, ctx: Context, lines, hints, reference):
        from ..models import hintfill as hf
        p = ctx.params
        t = ctx.frame
        lines_t = lines[t] if isinstance(lines, dict) else lines
        seg = hf.segment(lines_t, p.threshold, p.close_gaps)
        ctx.progress(0.2, 1, "regions")
        if hints is not None and hints.shape[:2] != lines_t.shape:
            raise ValueError(f"hints are {hints.shape[1]}×{hints.shape[0]} but the lines are "
                             f"{lines_t.shape[1]}×{lines_t.shape[0]}")
        if p.mode == "model":
            return self._model_mode(ctx, seg, lines_t, hints)
        if p.mode == "hints":
            h = hints if hints is not None else np.zeros(lines_t.shape + (4,), np.float32)
            r = hf.fill_from_hints(seg, h, p.unhinted, p.min_region, p.spill)
            fill, alpha, unsure = r["fill"], r["alpha"], r["unhinted"]
        else:
            fill, alpha, unsure = self._reference_mode(ctx, seg, lines, hints, reference)
        return {"image": hf.composite(fill, alpha, lines_t, p.line_color),
                "fill": hf.composite(fill, alpha, lines_t, "none"),
                "regions": seg.labels, "unsure": unsure.astype(np.float32)}

    def _flow_to_key(self, ctx: Context, lines: dict, k: int, lo: float, hi: float) -> np.ndarray:
        """Flow from frame t to key k between the line drawings (chained frame by frame when `chain`)."""
        from ..models import hintfill as hf
        t = ctx.frame
        if t == k:
            return np.zeros(lines[t].shape + (2,), np.float32)
        path = self._path(ctx, k)
        total = None
        pairs = list(zip(path[:-1], path[1:]))
        # compose from the key side: flow(s → key) = flow(s → s') ∘ flow(s' → key)
        for i, (a, b) in enumerate(reversed(pairs)):
            step = flowpairs.pair(ctx, ctx.input_key("lines", a), ctx.input_key("lines", b),
                                  _paper(lines[a]), _paper(lines[b]))
            total = step if total is None else hf.compose_flows(step, total)
            ctx.progress(lo + (hi - lo) * (i + 1) / len(pairs), 1, f"flow {a}→{b}")
        return total

    def _key_frame(self, ctx: Context, lines: dict, reference: dict, k: int) -> dict:
        """What colouring from key frame k needs of the key alone — its regions, their descriptors,
        colours and palettes — made once per key and shared by every frame coloured from it (an
        engine cache entry keyed by the key's lines and colours, never stale). Returns {"seg":
        Segmentation, "desc": Descriptors, "colour_ids": (n_k+1,) key_colors, "colours": ReferenceKey}."""
        from ..models import hintfill as hf
        from ..models import regions as rg
        p = ctx.params
        if reference[k].shape[:2] != lines[k].shape:
            raise ValueError(f"the reference at frame {k} is {reference[k].shape[1]}×{reference[k].shape[0]} "
                             f"but the lines are {lines[k].shape[1]}×{lines[k].shape[0]}")

        def prepare():
            seg = hf.segment(lines[k], p.threshold, p.close_gaps)
            ref = cs.node_in(self, reference[k])
            return {"seg": _fields(seg), "desc": _fields(rg.describe(seg)), "colour_ids": rg.key_colors(seg, ref),
                    "colours": _fields(hf.reference_key(seg, ref))}

        parts = {"key_frame": {"lines": ctx.input_key("lines", k), "reference": ctx.input_key("reference", k),
                               "threshold": p.threshold, "close_gaps": p.close_gaps}}
        v = ctx.cached(parts, prepare)
        return {"seg": hf.Segmentation(**v["seg"]), "desc": rg.Descriptors(**v["desc"]),
                "colour_ids": v["colour_ids"], "colours": hf.ReferenceKey(**v["colours"])}

    def _reference_mode(self, ctx: Context, seg, lines: dict, hints, reference):
        from ..models import hintfill as hf
        p, t = ctx.params, ctx.frame
        if reference is None:
            raise ValueError("reference mode needs the 'reference' input: link the coloured key frame")
        keys = self._keys(ctx)
        for k in keys:
            if lines[k].shape != lines[t].shape:
                raise ValueError(f"the lines at frame {k} are {lines[k].shape[1]}×{lines[k].shape[0]} "
                                 f"but at frame {t} {lines[t].shape[1]}×{lines[t].shape[0]}")
        key_data = {k: self._key_frame(ctx, lines, reference, k) for k in keys}
        if p.match == "flow":
            k = keys[0]
            flow = self._flow_to_key(ctx, lines, k, 0.2, 0.8)
            r = hf.reference_fill(seg, key_data[k]["seg"], key_data[k]["colours"], flow, shading=p.shading)
            fill, alpha = r["fill"], r["alpha"]
            unsure_r = r["confidence"] < p.confidence
        else:
            fill, alpha, unsure_r = self._match_regions(ctx, seg, key_data, lines, keys)
        unsure_r[0] = False
        if hints is not None:                   # hints win; unsure regions without a hint stay flagged
            colors, hinted = hf.hint_votes(seg, hints, p.spill)
            sel = hinted[seg.labels]
            fill = np.where(sel[:, :, None], colors[seg.labels], fill)
            alpha = np.where(sel, np.float32(1.0), alpha)
            unsure_r &= ~hinted
        return fill, alpha, unsure_r[seg.labels]

    def _match_regions(self, ctx: Context, seg, key_data: dict, lines: dict, keys: list[int]):
        """Region matching against each key (nearest first); per region the lowest cost wins, the
        nearer key on a tie. Returns (fill, alpha, unsure per region)."""
        from ..models import hintfill as hf
        from ..models import regions as rg
        p = ctx.params
        found = []
        for n, k in enumerate(keys):
            lo, hi = 0.2 + 0.6 * n / len(keys), 0.2 + 0.6 * (n + 1) / len(keys)
            if k == ctx.frame:                      # the key itself: each region is its own match
                r, flow = rg.identity_match(seg), None
            elif p.chain and p.flow_cue == 0 and len(self._path(ctx, k)) > 2:
                r, flow = self._chained_match(ctx, seg, key_data[k], lines, k, lo, hi), None
            else:
                kd = key_data[k]
                flow = self._flow_to_key(ctx, lines, k, lo, hi) if p.flow_cue > 0 and k != ctx.frame else None
                r = rg.match_regions(seg, kd["seg"], flow, kd["colour_ids"], flow_weight=p.flow_cue,
                                     key_desc=kd["desc"])
            found.append((k, r, flow))
        cost = np.stack([np.where(r["match"] > 0, r["cost"], np.inf) for _, r, _ in found])
        best = np.zeros(seg.n + 1, np.int64)
        for n in range(1, len(found)):                              # ties (within 0.05) stay with the nearer key
            best = np.where(cost[n] < cost[best, np.arange(seg.n + 1)] - 0.05, n, best)
        fill = np.zeros(seg.labels.shape + (3,), np.float32)
        alpha = np.zeros(seg.labels.shape, np.float32)
        unsure_r = np.ones(seg.n + 1, bool)
        for n, (k, r, flow) in enumerate(found):
            mine = best == n
            disp = rg.motion_field(seg.labels, r["motion"], r["offset"])
            if flow is not None:                    # the flow places the colours where it agrees with the match
                agree = r["flow_share"] >= 0.5
                disp = np.where(agree[seg.labels][:, :, None], flow, disp)
            out = hf.reference_fill(seg, key_data[k]["seg"], key_data[k]["colours"], disp, shading=p.shading,
                                    match=np.where(mine, r["match"], 0))
            if mine.all():                          # one key colours every region: no masking
                fill, alpha = out["fill"], out["alpha"]
            else:
                px = mine[seg.labels]
                fill[px], alpha[px] = out["fill"][px], out["alpha"][px]
            unsure_r[mine] = (r["match"][mine] == 0) | (r["confidence"][mine] < p.confidence)
        return fill, alpha, unsure_r

    def _pair_match(self, ctx: Context, lines: dict, a: int, b: int, key: dict | None) -> np.ndarray:
        """Region match frame a → frame b as an (n_a+1)×3 array: key region, cost, confidence.
        ``key``: b's key-frame data (_key_frame) when b is the key."""
        from ..models import hintfill as hf
        from ..models import regions as rg
        p = ctx.params
        sa = hf.segment(lines[a], p.threshold, p.close_gaps)
        sb = key["seg"] if key is not None else hf.segment(lines[b], p.threshold, p.close_gaps)
        flow = None
        if p.flow_cue > 0:
            flow = flowpairs.pair(ctx, ctx.input_key("lines", a), ctx.input_key("lines", b),
                                  _paper(lines[a]), _paper(lines[b]))
        r = rg.match_regions(sa, sb, flow, None if key is None else key["colour_ids"], flow_weight=p.flow_cue,
                             key_desc=None if key is None else key["desc"])
        return np.stack([r["match"], r["cost"], r["confidence"]], 1).astype(np.float64)

    def _chained_match(self, ctx: Context, seg, key: dict, lines: dict, k: int, lo: float, hi: float):
        """Region match t → key made frame by frame (t → t±1 → … → key), each step cached and shared
        by the frames whose path crosses it. A region is as sure as its least sure step: the last
        step's confidence (against the key's colours), the others' cost against no match (their
        frames have no colours to tell a harmless mix-up from a wrong one)."""
        from ..models import regions as rg
        p = ctx.params
        path = self._path(ctx, k)
        settings = {"threshold": p.threshold, "close_gaps": p.close_gaps, "flow_cue": p.flow_cue,
                    "flow": flowpairs.settings(ctx) if p.flow_cue > 0 else None}
        match = np.arange(seg.n + 1)
        conf = np.ones(seg.n + 1)
        cost = np.zeros(seg.n + 1)
        steps = list(zip(path[:-1], path[1:]))
        for i, (a, b) in enumerate(steps):
            last = b == k
            parts = {"regions_pair": settings, "from": ctx.input_key("lines", a), "to": ctx.input_key("lines", b),
                     "key": ctx.input_key("reference", k) if last else None}
            step = ctx.cached(parts, lambda: self._pair_match(ctx, lines, a, b, key if last else None))
            m_step = step[:, 0].astype(np.int64)
            ok = match > 0
            sure = step[:, 2] if last else np.clip(1 - step[:, 1] / rg.NULL_COST, 0, 1)
            conf = np.where(ok, np.minimum(conf, sure[match]), 0.0)
            cost = np.maximum(cost, np.where(ok, step[match, 1], np.inf))
            match = np.where(ok, m_step[match], 0)
            ctx.progress(lo + (hi - lo) * (i + 1) / len(steps), 1, f"regions {a}→{b}")
        motion, offset = rg.fit_motion(seg, key["seg"], match, key_desc=key["desc"])
        return {"match": match, "cost": np.where(match > 0, cost, np.inf), "confidence": conf,
                "motion": motion, "offset": offset, "flow_share": np.zeros(seg.n + 1)}

    def _model_mode(self, ctx: Context, seg, lines_t, hints):
        from ..models import hintfill as hf
        from ..models.pix2pix import colorize, load_weights
        p = ctx.params
        path = self._model_path(p, ctx)
        (model, meta), device = load_model(ctx, "colorize_pix2pix", path, lambda d: load_weights(path, d))
        net, device, _ = accelerated(ctx, path, model, device)
        guide = guide_mask = None
        unsure = np.zeros(lines_t.shape, bool)
        if hints is not None:
            r = hf.fill_from_hints(seg, hints, "transparent", p.min_region, p.spill)
            guide, guide_mask, unsure = r["fill"], r["alpha"], r["unhinted"]
        rgb = colorize(model, lines_t, guide, guide_mask, device=device, net=net)
        ctx.progress(0.9, 1, "model")
        rgba = np.concatenate([rgb, np.ones(rgb.shape[:2] + (1,), np.float32)], axis=2)
        return {"image": rgba, "fill": rgba, "regions": seg.labels, "unsure": unsure.astype(np.float32)}


def _fields(obj) -> dict:
    """A dataclass's fields as a dict (no copies: what a cache entry stores)."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def _uses_flow(params) -> bool:
    return params["match"] == "flow" or params["flow_cue"] > 0


def _paper(lines: np.ndarray) -> np.ndarray:
    """Line art as a grey image (paper white, ink black) for the flow."""
    g = 1.0 - np.clip(np.asarray(lines, np.float32), 0, 1)
    return np.repeat(g[:, :, None], 3, axis=2)


class ColorHints(NodeType):
    """Colour hints from an already coloured frame: one dot (or a short, possibly sloppy, scribble)
    per region of the line art, in the region's dominant colour.

    Stands in for a colourist's hints in demos, tests and benchmarks (with SynthClip's image and
    lines), or re-uses a coloured frame's colours as hints for the same drawing.
    """
    id, version, category = "celgraph.ColorHints", 2, "Color"
    color_space = cs.DISPLAY
    inputs = [In("image", Image, help="the coloured frame"), In("lines", LineArt, help="its line art")]
    outputs = [Out("hints", Image, "RGBA hint dots/scribbles (alpha 1 where hinted)")]
    params = [Int("seed", 0, min=0, max=2**31 - 1, help="random choices (scribble directions, dropped regions)"),
              Float("threshold", 0.5, min=0.01, max=1.0, help="ink coverage at or above this is line"),
              Float("radius", 2.0, min=0.0, max=50.0, help="dot radius / scribble half-width, px"),
              Float("scribble", 0.0, min=0.0, max=500.0, help="> 0: scribbles of this length (px) instead of dots"),
              Float("spill", 0.0, min=0.0, max=100.0, help="> 0: scribbles overshoot the region by up to this (px)"),
              Float("drop", 0.0, min=0.0, max=1.0, help="share of regions left without a hint"),
              Int("min_area", 1, min=1, max=100000, help="regions smaller than this (px) get no hint")]

    def compute(self, ctx: Context, image, lines):
        from ..models.hintfill import sample_hints
        p = ctx.params
        hints = sample_hints(cs.node_in(self, image), lines, seed=p.seed + ctx.frame, threshold=p.threshold,
                             radius=p.radius, scribble=p.scribble, spill=p.spill, drop=p.drop, min_area=p.min_area)
        return {"hints": cs.node_out(self, hints)}

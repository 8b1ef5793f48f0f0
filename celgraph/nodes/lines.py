"""Line-art nodes: GapFill closes small gaps in line art so flat fills do not leak.

GapFill takes LineArt (ink coverage 0..1; a Mask links in directly). A scanned or rendered
drawing (an Image) goes through ToLineArt first (ink = 1 − luminance), then GapFill counts
coverage ≥ ``threshold`` as ink. Two methods:

* ``classical`` (default) — OpenToonz/Tahoma2D autoclose (celgraph.models.autoclose): skeleton
  endpoints, direction cones of ``angle``°, gaps up to ``max_gap`` px; ends converging on a missed
  junction or corner joined where they meet (``junctions``); ends whose stroke thins out left open
  (``taper``: drawn to end there); segments continue the stroke at its own width; kept only where
  they separate two flood-fill regions (Tahoma2D's rule). No weights. Best on real line art
  (bench/real.py).
* ``model`` — the GapUNet network (celgraph.models.gapfill) predicts the ink to add from the ink
  and its endpoint map; added ink is kept where its probability ≥ ``confidence`` and within
  ``max_gap`` + the line width of a stroke end, and redrawn at the width of the strokes it
  continues. A second pass (``passes``) looks again at the tips
  of the added ink, which closes extensions that stopped a pixel short of the line they aim at. Frames of any size: by default (``inference`` =
  windows) the network runs only on one window per cluster of stroke ends with 32 px of context
  (a whole-frame pass differs by at most a pixel or two of added ink per page); ``tiles`` runs a
  grid of ``tile``-px tiles near stroke ends with the exact context (half the receptive field),
  ``whole`` one pass (fastest on a GPU); BatchNorm is folded
  into the convs at load time; fp16 on CUDA with ``precision``; ``runtime`` runs the network on
  torch, ONNX Runtime or TensorRT (docs/acceleration.md). ``network`` picks the
  bundled weights (ours, or the FillLineGaps LightUNet re-implementation trained the same way);
  ``weights`` loads another file.

Outputs: the closed line art (input ink kept as it is, added ink at coverage 1), the added ink as a
Mask (exactly closed − input where positive), and a preview (input ink black on white, added ink
red).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .. import colorspace as cs
from ..core import (Bool, Choice, CheckContext, Context, Float, Image, In, Int, Issue, LineArt, Mask, NodeType, Out,
                    PathParam)
from ..core.hashing import file_digest
from .modelfiles import RUNTIME_PARAM, accelerated, bundled_file, load_model, runtime_issues, weights_issues

BUNDLED_WEIGHTS = {"gapunet": "gapfill_gapunet.safetensors", "lite": "gapfill_lite.safetensors"}
# What GapFill uses by default, by bench/real.py --suite gapfill (gaps cut into real production line
# art, bench/results/real.md): classical autoclose closes the most leaks per spurious pixel, continues
# strokes at their own width and joins the fewest free ends; the networks, trained on synthetic line
# art, close fewer leaks (GapUNet) or paint spurious ink and join free strands (lite). The synthetic
# bench (bench/quality.py) ranked the model first: it measured how well the networks learnt the
# generator, not the job. See MODEL_CARD (gapfill) and docs/lines_and_color.md.
DEFAULT_METHOD = "classical"


def bundled_weights(network: str) -> Path | None:
    return bundled_file(BUNDLED_WEIGHTS.get(network))


class GapFill(NodeType):
    """Close small gaps in line art so flat fills do not leak; marks the added ink.

    Input: LineArt (or a Mask). For a drawing as an Image, link it through ToLineArt
    (ink = 1 − luminance); coverage ≥ threshold counts as ink. method `classical` is OpenToonz's
    autoclose (endpoints, direction cones, max distance, angle; only closures that separate two
    regions are kept); method `model` is celgraph's GapUNet (bundled weights, or `weights`),
    tiled over frames of any size. Outputs the closed line art, the added ink as a mask and a
    preview with the added ink in red over the input — each only when something reads it.
    """
    id, version, category = "celgraph.GapFill", 7, "Lines"
    color_space = cs.DISPLAY                         # the preview is a display image
    inputs = [In("lines", LineArt, help="ink coverage 0..1 (a Mask links in too; an Image via ToLineArt)")]
    outputs = [Out("lines", LineArt, "the closed line art: the input plus the added ink at coverage 1"),
               Out("added", Mask, "1 where ink was added (closed − input where positive)"),
               Out("preview", Image, "the input's ink in black on white, the added ink in red")]
    params = [
        Choice("method", DEFAULT_METHOD, choices=("model", "classical"),
               help="classical = autoclose after OpenToonz with junctions and stroke widths (best on real line "
                    "art: default; no weights); model = a GapFill network (bundled GapUNet or lite, or weights)"),
        Float("max_gap", 12.0, min=1.0, max=64.0, help="largest gap to close: clear distance between ink ends, px"),
        Float("threshold", 0.5, min=0.01, max=1.0, help="ink coverage at or above this counts as ink"),
        Float("angle", 40.0, min=1.0, max=180.0,
              help="classical: full opening of the direction cone at a stroke end, degrees (OpenToonz 60; 40 "
                   "joins half as many free ends on real line art)"),
        Float("taper", 0.8, min=0.0, max=1.0,
              help="classical: a stroke whose last 5 px are thinner than this share of its width ends on purpose "
                   "and is not extended to a neighbour (0 = extend every end, as OpenToonz)"),
        Bool("junctions", True,
             help="classical: join ends that converge on one point (a missed T/Y/X junction or corner) at "
                  "that point"),
        Float("confidence", 0.5, min=0.01, max=0.99, help="model: probability at or above which ink is added"),
        Int("passes", 2, min=1, max=4,
            help="model: passes of the network; a later pass looks again at the tips of the ink just added "
                 "(strokes extended towards a line but stopped a pixel short)"),
        Choice("network", "gapunet", choices=("gapunet", "lite"),
               help="model: bundled weights — gapunet (ours) or lite (FillLineGaps LightUNet)"),
        PathParam("weights", "", help="model: a GapFill .safetensors file; empty = the bundled weights of `network`",
                  hashed=False),
        Choice("device", "auto", choices=("auto", "cpu", "cuda"), help="where the model runs", hashed=False),
        Choice("precision", "fp32", choices=("fp32", "fp16"), help="model: fp16 autocast on CUDA (ignored on CPU)"),
        Choice("inference", "windows", choices=("windows", "tiles", "whole"),
               help="model: windows = one window around each cluster of stroke ends (fastest on a CPU); "
                    "tiles = the grid tiles of side `tile` that hold a stroke end; whole = the whole frame in "
                    "one pass (a GPU). tiles and whole give the same result; windows keeps 32 px of context, "
                    "which changes at most a pixel or two of added ink per 1080p page", hashed=False),
        Int("tile", 64, min=8, max=4096,
            help="model, inference tiles: tile core side, px (each tile adds half the receptive field of "
                 "context)", hashed=False),
        RUNTIME_PARAM,
    ]
    device = "any"

    # ---- interface hooks --------------------------------------------------------------
    def _weights_path(self, params, ctx: CheckContext) -> Path | None:
        if params["weights"]:
            return ctx.resolve(params["weights"])
        return bundled_weights(params["network"])

    def uses_torch(self, params) -> bool:
        return params["method"] == "model"

    def check(self, ctx: CheckContext) -> list[Issue]:
        params = ctx.params
        if params["method"] != "model":
            return []
        return weights_issues(self._weights_path(params, ctx), ctx.node,
                              f"no bundled weights for network {params['network']}: set weights to a "
                              "GapFill .safetensors file or use method classical") + runtime_issues(ctx)

    def fingerprint(self, ctx: Context):
        if ctx.params.method != "model":
            return None
        return {"weights": file_digest(self._weights_path(ctx.params, ctx))}

    # ---- compute ------------------------------------------------------------------------
    def compute(self, ctx: Context, lines):
        p = ctx.params
        lines = np.clip(np.asarray(lines, np.float32), 0.0, 1.0)
        ctx.progress(0, 1, "finding stroke ends")
        if p.method == "classical":
            from ..models.autoclose import autoclose
            closed, _ = autoclose(lines, max_gap=p.max_gap, angle=p.angle, threshold=p.threshold,
                                  min_taper=p.taper, converge=120.0 if p.junctions else 0.0)
        else:
            closed = self._model_close(ctx, lines)
        # only the outputs someone reads: a 1080p frame's preview costs more than the closing itself
        # (a float32 RGB frame to fill and store: 25 MB), `added` another 8 MB
        out = {"lines": closed} if ctx.wants("lines") else {}
        if ctx.wants("added") or ctx.wants("preview"):
            added = np.maximum(closed - lines, np.float32(0.0)).astype(np.float32, copy=False)
            if ctx.wants("added"):
                out["added"] = added
            if ctx.wants("preview"):
                out["preview"] = preview_out(self, lines, added)
        return out

    def _model_close(self, ctx: Context, lines: np.ndarray) -> np.ndarray:
        from ..models.gapfill import close_gaps, fuse_for_inference, load_weights
        p = ctx.params
        path = self._weights_path(p, ctx)
        model, device = load_model(ctx, "gapfill", path, lambda d: fuse_for_inference(load_weights(path, device=d)[0]))
        net, device, _ = accelerated(ctx, path, model, device, precision=p.precision)

        def progress(done, total):
            ctx.progress(done, total, "closing gaps")

        closed, _ = close_gaps(model, lines, max_gap=p.max_gap, threshold=p.threshold, confidence=p.confidence,
                               inference=p.inference, tile=p.tile, passes=p.passes, device=device,
                               half=p.precision == "fp16", progress=progress, net=net)
        return closed



def preview_out(node_type, lines: np.ndarray, added: np.ndarray) -> np.ndarray:
    """``cs.node_out(node_type, preview(lines, added))`` pixel for pixel, at a fraction of the cost.

    A colour conversion maps each pixel on its own, and a page is mostly paper white and solid
    ink: those two colours are converted once, only the other pixels (anti-aliased edges, added
    ink) one by one. (The whole-frame conversion was half of GapFill's time through the engine
    on a 1080p page: 0.16 s of CPU against 0.05 s now.)"""
    rgb = preview(lines, added)
    plain = added <= 0                                   # not blended with red
    white, black = (plain & (lines <= 0)).ravel(), (plain & (lines >= 1)).ravel()
    flat = rgb.reshape(-1, 3)
    rest = np.flatnonzero(~(white | black))
    ends = np.float32([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    # one conversion call (each costs ~30 ms in OCIO set-up alone): the other pixels + white + black
    converted = cs.node_out(node_type, np.concatenate([flat[rest], ends])[None])[0]
    flat[rest] = converted[:-2]
    if not np.array_equal(converted[-2], ends[0]):      # sRGB → linear keeps both; another config may not
        flat[white] = converted[-2]
    if not np.array_equal(converted[-1], ends[1]):
        flat[black] = converted[-1]
    return rgb


def preview(lines: np.ndarray, added: np.ndarray) -> np.ndarray:
    """RGB float32: the input ink in black on white paper, the added ink in red (255, 0, 0)."""
    paper = 1.0 - np.clip(lines, 0.0, 1.0, dtype=np.float32)
    rgb = cv2.merge([paper, paper, paper])      # far faster than np.repeat on a 1080p frame
    where = added > 0                          # added ink is sparse: blend only there
    a = np.clip(added[where], 0.0, 1.0)[:, None].astype(np.float32)
    rgb[where] = rgb[where] * (1.0 - a) + np.float32([1.0, 0.0, 0.0]) * a
    return rgb

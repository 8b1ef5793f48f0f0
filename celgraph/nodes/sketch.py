"""Sketch: colour frame → clean line art (a trained U-Net, or XDoG as the classical baseline).

Used to make training pairs for Colorize from a show's finished frames, to re-ink, and to feed
GapFill. The learned method was trained on degraded synthetic colour frames against their exact
ink layer, so shadow and highlight boundaries (colour edges without ink) are not drawn; XDoG
draws every luminance edge.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .. import colorspace as cs
from ..core import (Bool, Choice, CheckContext, Context, Float, Image, In, Issue, LineArt, NodeType, Out,
                      PathParam)
from ..core.hashing import file_digest
from ..models.dark_outline import DEFAULT_THRESHOLD as DARK_THRESHOLD, dark_outlines
from .modelfiles import RUNTIME_PARAM, accelerated, bundled_file, load_model, runtime_issues, weights_issues

BUNDLED = "sketch_unet.safetensors"


def bundled_weights() -> Path | None:
    return bundled_file(BUNDLED)


def binarize(soft: np.ndarray, threshold: float, weak: float | None = None) -> np.ndarray:
    """Binary ink (bool H×W) of soft ink coverage: ``soft ≥ threshold``, and with ``weak`` (below
    ``threshold``) hysteresis as in Canny's edge detector: pixels ``≥ weak`` are kept where their
    8-connected ``≥ weak`` component holds a pixel ``≥ threshold``. A faint stretch of a line whose
    ends are confident is kept (the dashes a single threshold leaves close up); faint marks that
    touch no confident ink (painted texture, blur) stay out."""
    soft = np.asarray(soft)
    strong = soft >= threshold
    if weak is None or weak >= threshold:
        return strong
    n, labels = cv2.connectedComponents((soft >= weak).astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[labels[strong]] = True
    keep[0] = False                          # label 0: below the weak threshold
    return keep[labels]


class Sketch(NodeType):
    """Colour frame → line art: soft ink coverage and a binarised version.

    `model` runs celgraph's Sketch U-Net (trained on degraded synthetic cel frames: JPEG, blur,
    noise, rescaling, lighting, screentone; shadow/highlight boundaries are not lines) and
    binarises with hysteresis: ink where the soft lines reach `threshold`, extended along
    connected pixels down to `weak_threshold` (a faint stretch of a line between confident ones is
    kept, so thin lines on real frames come out whole instead of as dashes; faint marks touching no
    confident ink stay out). Both values are calibrated on held-out synthetic clips and stored
    with the weights. `xdog` is the classical baseline (eXtended Difference of Gaussians on
    luminance): no weights, but it draws every colour edge. `threshold` 0 keeps the calibrated
    value (model) or 0.5 (xdog); `weak_threshold` 0 keeps the calibrated one (model; xdog and
    weights without one: none), and a value ≥ `threshold` binarises at `threshold` alone.

    `dark_outline` (on by default; method `model`) adds the outline of large dark fills — hair,
    ribbons, coats, bows, outlined in anime by a line barely darker than the fill, whose soft edge
    the network does not draw — as a 1-px line at the middle of the dark-to-light ramp
    (:func:`celgraph.models.dark_outline.dark_outlines`): pieces of paint darker than a ladder of
    luminance levels from 0.1 up to `dark_threshold` (the ink apart), each object taken at the level
    where the network's lines outline most of its edge (≥ 30 %: a dark plate, sky or out-of-focus
    post has no drawn line along it and gets none), of at least ≈ 0.16 % of the frame, not in a
    dark area over 20 % of it; the line is drawn where the fill is ≥ 1.5× darker than the paint
    around it. A dark region's unlined arms — parts thinner than 0.7× its body, as where a ribbon
    touches a blurred dark patch or the dark stripe of an out-of-focus building behind it — are cut
    off and each remaining piece judged on its own. The line is ink (1) in both outputs. Version 5:
    the ladder (v4: one level, 0.35); version 6: the arms. XDoG, which inks every edge, is left as
    it is (the classical baseline).
    """
    id, version, category = "celgraph.Sketch", 6, "Lines"
    color_space = cs.DISPLAY                         # trained on sRGB frames
    inputs = [In("image", Image, help="colour frame (RGB, or RGBA over white paper)")]
    outputs = [Out("lines", LineArt, "soft ink coverage, 0 paper .. 1 ink"),
               Out("binary", LineArt, "binarised ink: 1 where lines ≥ threshold, else 0")]
    params = [
        Choice("method", "model", choices=("model", "xdog"),
               help="model: the trained U-Net (bundled weights); xdog: classical baseline"),
        Float("threshold", 0.0, min=0.0, max=1.0,
              help="binarisation threshold on the soft lines; 0 = calibrated (model: from the weights, xdog: 0.5)"),
        Float("weak_threshold", 0.0, min=0.0, max=1.0,
              help="hysteresis: pixels down to this value are ink where they connect to pixels ≥ threshold; "
                   "0 = calibrated (model: from the weights, xdog: none); ≥ threshold: no hysteresis"),
        Bool("dark_outline", True,
             help="model: add the outline of large dark fills (hair, ribbons, coats) that the lines partly "
                  "outline, at the middle of their dark-to-light edge"),
        Float("dark_threshold", DARK_THRESHOLD, min=0.05, max=0.7,
              help="dark_outline: the lightest luminance (0..1) of the ladder of levels (0.1 up, step 0.05) "
                   "below which paint is tried as a dark fill"),
        PathParam("weights", "", help="Sketch U-Net .safetensors; empty: the bundled weights", hashed=False),
        Float("xdog_sigma", 0.3, min=0.1, max=10.0, help="xdog: fine Gaussian σ in px (line scale)"),
        Float("xdog_k", 3.0, min=1.01, max=10.0, help="xdog: coarse σ = k·σ"),
        Float("xdog_p", 10.0, min=0.0, max=100.0, help="xdog: edge sharpening strength"),
        Float("xdog_epsilon", -0.05, min=-1.0, max=1.0, help="xdog: threshold on the sharpened DoG"),
        Float("xdog_phi", 200.0, min=0.1, max=1e9, help="xdog: tanh steepness (≥ 1e6: hard)"),
        Choice("device", "auto", choices=("auto", "cpu", "cuda"), help="where the model runs", hashed=False),
        RUNTIME_PARAM,
    ]
    device = "any"

    def _weights_path(self, params, ctx: CheckContext) -> Path | None:
        return ctx.resolve(params["weights"]) if params["weights"] else bundled_weights()

    def uses_torch(self, params) -> bool:
        return params["method"] == "model"

    def check(self, ctx: CheckContext) -> list[Issue]:
        params = ctx.params
        if params["method"] != "model":
            return []
        return weights_issues(self._weights_path(params, ctx), ctx.node,
                              "no bundled Sketch weights: set weights to a .safetensors file, or use method xdog") + \
            runtime_issues(ctx)

    def fingerprint(self, ctx: Context):
        if ctx.params.method != "model":
            return None
        return {"weights": file_digest(self._weights_path(ctx.params, ctx))}

    # ---- compute ------------------------------------------------------------------------
    def _model(self, ctx: Context):
        from ..models.sketch_unet import fuse_batchnorm, load_weights
        path = self._weights_path(ctx.params, ctx)

        def load(device):
            model, meta = load_weights(path, device=device)
            return fuse_batchnorm(model), meta

        (model, meta), device = load_model(ctx, "sketch_unet", path, load)
        net, device, _ = accelerated(ctx, path, model, device)
        return model, net, meta, device

    def compute(self, ctx: Context, image):
        p = ctx.params
        image = cs.node_in(self, image)
        if p.method == "xdog":
            from ..models.xdog import xdog
            soft = xdog(image, sigma=p.xdog_sigma, k=p.xdog_k, p=p.xdog_p, epsilon=p.xdog_epsilon, phi=p.xdog_phi)
            threshold, weak = p.threshold or 0.5, p.weak_threshold or None
        else:
            from ..models.sketch_unet import predict
            model, net, meta, device = self._model(ctx)
            h, w = image.shape[:2]
            tile = None if h * w <= 4096 * 2304 else 1024          # whole frames up to 4K (fastest on CPU)
            soft = predict(model, image, tile=tile, device=device,
                           progress=lambda i, n: ctx.progress(i, n, "sketch tiles"), net=net)
            threshold = p.threshold or float(meta.get("threshold", 0.5))
            weak = p.weak_threshold or meta.get("weak_threshold")
        soft = np.clip(soft, 0.0, 1.0).astype(np.float32)
        binary = binarize(soft, threshold, weak)
        if p.dark_outline and p.method == "model":
            outline = dark_outlines(image, binary, p.dark_threshold)
            soft[outline] = 1.0
            binary |= outline
        return {"lines": soft, "binary": binary.astype(np.float32)}

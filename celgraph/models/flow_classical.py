"""Classical optical flow: OpenCV's DIS (Dense Inverse Search, Kroeger et al., ECCV 2016).

The fallback of the flow node when no RAFT weights are at hand: no training, no GPU, and a few
milliseconds to a few tens of milliseconds per 456×256 frame pair on one core (table below).

Convention (the same as RAFT and the project's Flow port): H×W×2 float32 in pixels, channel 0 =
+x right, channel 1 = +y down, mapping pixels of img1 to img2: img1(p) ≈ img2(p + flow(p)).

Presets
-------
DIS runs coarse-to-fine over an image pyramid; at each scale from the coarsest down to
``finest_scale`` it fits ``patch_size``² patches placed every ``patch_stride`` px by inverse-
compositional gradient descent (``grad_iters`` steps), densifies them, and smooths the field with
``var_iters`` iterations of variational refinement (weights alpha: smoothness, delta: colour
constancy, gamma: gradient constancy). Scale 0 is full resolution; scale s works at 1/2^s and
the flow is upsampled from there.

=========  ======  =====  ======  ====  ===  =====  ======  ==========================================
preset     finest  patch  stride  grad  var  EPE    ms      notes
=========  ======  =====  ======  ====  ===  =====  ======  ==========================================
ultrafast  2       8      4       12    0    0.80   2.5     OpenCV's ULTRAFAST; blocky, no refinement
fast       2       8      4       16    5    0.61   3.9     OpenCV's FAST
medium     1       8      3       25    10   0.35   20      OpenCV's MEDIUM, twice the refinement: default
fine       0       8      3       25    10   0.25   87      full-resolution patches: sharpest edges
=========  ======  =====  ======  ====  ===  =====  ======  ==========================================

EPE and ms: mean end-point error (px, non-occluded pixels) and time per pair on 8 adjacent frame
pairs of ``celgraph.synth.make_clip`` seeds 0-3 at 456×256, one shared CPU core. What the tuning
showed: a stride of 2 instead of 3 at scale 0 costs 50 % more time for no gain (0.253 vs 0.252);
12 px patches are worse than 8 on cel-shaded frames (0.41 vs 0.35 at medium); refinement beyond
10 iterations gains < 0.01 px; switching spatial propagation off loses ~0.01 px.

Mean normalisation and spatial propagation stay on (OpenCV's defaults) in every preset: flat
cel-shaded regions give patches no texture to lock on, and propagation carries the motion of
their outlines inwards; the variational refinement then fills them smoothly.
Any setting can be overridden by keyword.
"""
from __future__ import annotations

from typing import Mapping

import cv2
import numpy as np

__all__ = ["dis_flow", "DIS_PRESETS", "to_gray_u8"]

# name → (OpenCV base preset, overrides applied on top of it)
DIS_PRESETS: Mapping[str, dict] = {
    "ultrafast": dict(base=cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, finest_scale=2, patch_size=8,
                      patch_stride=4, grad_iters=12, var_iters=0),
    "fast": dict(base=cv2.DISOPTICAL_FLOW_PRESET_FAST, finest_scale=2, patch_size=8,
                 patch_stride=4, grad_iters=16, var_iters=5),
    "medium": dict(base=cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, finest_scale=1, patch_size=8,
                   patch_stride=3, grad_iters=25, var_iters=10),
    "fine": dict(base=cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, finest_scale=0, patch_size=8,
                 patch_stride=3, grad_iters=25, var_iters=10),
}


def to_gray_u8(img: np.ndarray) -> np.ndarray:
    """H×W×3 (or H×W, H×W×1, H×W×4) float 0..1 → H×W uint8 luma (Rec. 601, as OpenCV)."""
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[-1] in (1, 3, 4):
        a = a[..., 0] if a.shape[-1] == 1 else a[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    elif a.ndim != 2:
        raise ValueError(f"expected an H×W×3 image, got shape {a.shape}")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    a = np.clip(np.nan_to_num(a.astype(np.float32, copy=False)), 0.0, 1.0)
    return np.ascontiguousarray((a * 255.0 + 0.5).astype(np.uint8))


def dis_flow(img1: np.ndarray, img2: np.ndarray, preset: str = "medium", *,
             finest_scale: int | None = None, coarsest_scale: int | None = None,
             patch_size: int | None = None, patch_stride: int | None = None,
             grad_iters: int | None = None, var_iters: int | None = None, var_alpha: float | None = None,
             var_delta: float | None = None, var_gamma: float | None = None,
             mean_normalization: bool = True, spatial_propagation: bool = True,
             flow_init: np.ndarray | None = None) -> np.ndarray:
    """Dense flow from img1 to img2 with DIS: H×W×3 float 0..1 each → H×W×2 float32.

    img1(p) ≈ img2(p + flow(p)); +x right, +y down, pixels. The frames are converted to grey
    uint8 (DIS works on one 8-bit channel). ``preset`` is one of :data:`DIS_PRESETS`
    ('ultrafast', 'fast', 'medium', 'fine'); the keyword settings override it (``None`` keeps the
    preset's value; var_alpha/delta/gamma default to OpenCV's 20, 5, 10; ``coarsest_scale``
    defaults to OpenCV's choice from the frame size). The coarsest scale bounds the motion DIS
    can follow: measured on texture, ~45 px at 456×256 but only ~11 px at 160×120.
    ``flow_init`` (H×W×2) warm-starts the search, e.g. with the previous frame pair's flow.
    Deterministic.
    """
    if preset not in DIS_PRESETS:
        raise ValueError(f"unknown DIS preset {preset!r}; one of {sorted(DIS_PRESETS)}")
    g1, g2 = to_gray_u8(img1), to_gray_u8(img2)
    if g1.shape != g2.shape:
        raise ValueError(f"frames differ in size: {g1.shape} vs {g2.shape}")
    cfg = dict(DIS_PRESETS[preset])
    for k, v in dict(finest_scale=finest_scale, patch_size=patch_size, patch_stride=patch_stride,
                     grad_iters=grad_iters, var_iters=var_iters).items():
        if v is not None:
            cfg[k] = int(v)
    if cfg["patch_stride"] < 1 or cfg["patch_stride"] > cfg["patch_size"]:
        raise ValueError(f"patch_stride must be in 1..patch_size, got {cfg['patch_stride']}")
    dis = cv2.DISOpticalFlow_create(cfg["base"])
    dis.setFinestScale(cfg["finest_scale"])      # OpenCV clamps it to the pyramid of small frames
    if coarsest_scale is not None:
        dis.setCoarsestScale(int(coarsest_scale))
    dis.setPatchSize(cfg["patch_size"])
    dis.setPatchStride(cfg["patch_stride"])
    dis.setGradientDescentIterations(cfg["grad_iters"])
    dis.setVariationalRefinementIterations(cfg["var_iters"])
    if var_alpha is not None:
        dis.setVariationalRefinementAlpha(float(var_alpha))
    if var_delta is not None:
        dis.setVariationalRefinementDelta(float(var_delta))
    if var_gamma is not None:
        dis.setVariationalRefinementGamma(float(var_gamma))
    dis.setUseMeanNormalization(bool(mean_normalization))
    dis.setUseSpatialPropagation(bool(spatial_propagation))

    # DIS rejects frames smaller than about 1.4 patches: pad tiny ones (edge replication), crop back
    h, w = g1.shape
    min_side = 2 * cfg["patch_size"]
    ph, pw = max(0, min_side - h), max(0, min_side - w)
    if ph or pw:
        g1 = cv2.copyMakeBorder(g1, 0, ph, 0, pw, cv2.BORDER_REPLICATE)
        g2 = cv2.copyMakeBorder(g2, 0, ph, 0, pw, cv2.BORDER_REPLICATE)
    flow = None
    if flow_init is not None:         # DIS warm-starts from a float32 H×W×2 array passed in
        flow = np.asarray(flow_init, dtype=np.float32)
        if flow.shape != (h, w, 2):
            raise ValueError(f"flow_init must be {(h, w, 2)}, got {flow.shape}")
        flow = cv2.copyMakeBorder(np.ascontiguousarray(flow), 0, ph, 0, pw, cv2.BORDER_REPLICATE)
    flow = dis.calc(g1, g2, flow)
    return np.ascontiguousarray(flow[:h, :w], dtype=np.float32)

"""Warm-up similarity chains (ToonDecompose step 2) and the unit-canvas normalisation.

For each object: H[0] = I and an anchor frame 0. Frame `index` is matched to the anchor with the
flows index→anchor and anchor→index; pixels of the object (in the index frame) whose flow passes
the forward–backward check give correspondences, and a 4-DOF similarity (rotation, uniform scale,
translation) is fitted to them by RANSAC (cv2.estimateAffinePartial2D, 3 px). The match is kept if
the share of the object's pixels that are consistent RANSAC inliers exceeds 0.9 (always for an
adjacent anchor): H[index] = H[anchor]·Hm. Otherwise the anchor moves to index − 1 and the same
index is tried again. H[t] maps frame-t pixels into frame-0 pixels.

The upstream score divides by the number of pixels *outside* the object (`upstream_area_ratio`),
which makes small objects fall back to frame-to-frame chaining; the default divides by the
object's own pixel count, which is what the 0.9 threshold means.

Plain numpy + OpenCV; flows come from a callback, so callers decide what is cached or recomputed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

FlowFn = Callable[[int, int], np.ndarray]          # (from frame index, to frame index) → H×W×2


@dataclass
class Attempt:
    """One match of `index` against `anchor` (the upstream position.<k>/F<i>T<j> files)."""
    index: int
    anchor: int
    points: int                 # correspondences handed to RANSAC (object ∩ consistent)
    inliers: int
    area_ratio: float           # k_area as scored (1.0 for an adjacent anchor)
    accepted: bool
    error: str = ""


def consistent(fwd: np.ndarray, bwd: np.ndarray, thresh: float = 2.0) -> np.ndarray:
    """H×W bool: |F + B∘F|² ≤ thresh, with B sampled (nearest) at p + F(p). Pixels whose target
    falls outside the frame are inconsistent."""
    h, w = fwd.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    tx = np.rint(xs + fwd[..., 0]).astype(np.int64)
    ty = np.rint(ys + fwd[..., 1]).astype(np.int64)
    inside = (tx >= 0) & (tx < w) & (ty >= 0) & (ty < h)
    b = bwd[np.clip(ty, 0, h - 1), np.clip(tx, 0, w - 1)]
    err = ((fwd + b) ** 2).sum(-1)
    return inside & (err <= thresh)


def fit_similarity(src: np.ndarray, dst: np.ndarray, ransac_px: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """3×3 similarity mapping src → dst (N×2 each) and the N RANSAC inlier flags. OpenCV's defaults:
    2000 iterations, confidence 0.99, 10 refinement iterations (its RANSAC is seeded: deterministic).
    Raises ValueError when there are too few points or no model."""
    if len(src) < 3:
        raise ValueError(f"{len(src)} correspondences")
    M, inl = cv2.estimateAffinePartial2D(src.astype(np.float32), dst.astype(np.float32), method=cv2.RANSAC,
                                         ransacReprojThreshold=ransac_px, maxIters=2000, confidence=0.99,
                                         refineIters=10)
    if M is None or not np.all(np.isfinite(M)):
        raise ValueError("no similarity found")
    return np.vstack([M, [0.0, 0.0, 1.0]]), inl.ravel().astype(bool)


def match(fwd: np.ndarray, bwd: np.ndarray, obj: np.ndarray, consistency: float = 2.0,
          ransac_px: float = 3.0) -> tuple[np.ndarray, int, int]:
    """Similarity Hm (index-frame pixels → anchor-frame pixels) from the flows index→anchor (fwd)
    and anchor→index (bwd), restricted to the object's pixels `obj`. Returns (Hm, points, inliers)."""
    good = consistent(fwd, bwd, consistency) & obj
    ys, xs = np.nonzero(good)
    src = np.stack([xs, ys], 1).astype(np.float64)
    dst = src + fwd[ys, xs].astype(np.float64)
    Hm, inl = fit_similarity(src, dst, ransac_px)
    return Hm, len(src), int(inl.sum())


def chain(n_frames: int, object_mask: Callable[[int], np.ndarray], flow: FlowFn, accept: float = 0.9,
          consistency: float = 2.0, ransac_px: float = 3.0, upstream_area_ratio: bool = False,
          progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, list[Attempt]]:
    """T×3×3 frame→frame-0 similarities for one object, and every attempt made."""
    H = np.tile(np.eye(3), (n_frames, 1, 1))
    attempts: list[Attempt] = []
    anchor, index = 0, 1
    while index < n_frames:
        obj = object_mask(index)
        try:
            Hm, pts, inl = match(flow(index, anchor), flow(anchor, index), obj, consistency, ransac_px)
            denom = (~obj).sum() if upstream_area_ratio else obj.sum()
            area, err = (inl + 0.1) / (denom + 0.1), ""
        except (ValueError, cv2.error) as e:     # too few points, degenerate: identity, score 0
            Hm, pts, inl, area, err = np.eye(3), 0, 0, 0.0, str(e)
        if index == anchor + 1:
            area = 1.0
        ok = area > accept
        attempts.append(Attempt(index, anchor, pts, inl, float(area), ok, err))
        if ok:
            H[index] = H[anchor] @ Hm
            index += 1
            if progress is not None:
                progress(index - 1, n_frames - 1)
        else:
            anchor = index - 1
    return H, attempts


def normalise(H: np.ndarray, width: int, height: int) -> np.ndarray:
    """Map every frame into the unit square: the corners (0,0), (W,0), (0,H), (W,H) of all frames
    through H[t]; m, M = min and max over u and v jointly (one scale for both, the aspect kept);
    result = [[1,0,−m],[0,1,−m],[0,0,M−m]]·H[t], divided through so the last row is (0, 0, 1)."""
    c = np.array([[0, 0, 1], [width, 0, 1], [0, height, 1], [width, height, 1]], np.float64).T
    p = H @ c                                   # T×3×4
    uv = p[:, :2] / p[:, 2:3]
    m, M = float(uv.min()), float(uv.max())
    span = max(M - m, 1e-12)
    N = np.array([[1.0, 0.0, -m], [0.0, 1.0, -m], [0.0, 0.0, span]])
    out = N[None] @ H
    return out / out[:, 2:3, 2:3]


def canvas_coords(transform: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(u, v), each H×W: where every pixel of a frame lands on the object's unit canvas."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    p = np.einsum("ij,jhw->ihw", transform, np.stack([xs, ys, np.ones_like(xs)]))
    return p[0] / p[2], p[1] / p[2]


PREVIEW_FREQS = (96.0, 48.0)            # object 0, the others (step 3)


def uv_pattern(transforms: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Step 3's preview: each object's canvas as sin stripes, (½+½sin(u·f), ½+½sin(v·f), object
    shade), mixed by `weights` (N×H×W, one-hot labels or alphas). f = 96 for object 0, 48 others."""
    n, h, w = weights.shape
    out = np.zeros((h, w, 3), np.float32)
    for k in range(n):
        u, v = canvas_coords(transforms[k], w, h)
        f = PREVIEW_FREQS[0] if k == 0 else PREVIEW_FREQS[1]
        shade = 0.0 if n == 1 else k / (n - 1)
        pat = np.stack([0.5 + 0.5 * np.sin(u * f), 0.5 + 0.5 * np.sin(v * f), np.full_like(u, shade)], -1)
        out += weights[k][..., None] * pat.astype(np.float32)
    return out


def transform_error(H_pred: np.ndarray, H_true: np.ndarray, boxes) -> float:
    """Mean corner error in frame pixels between two T×3×3 frame→canvas chains whose canvases differ
    by an unknown similarity S (the canvas gauge). `boxes`: per frame (x0, y0, x1, y1) whose corners
    are measured — the frame, or the object's bounding box — or None to skip the frame. S is fitted
    by least squares over all measured corners; then each frame's corners go through our canvas, S
    and back through the true chain, and land this far from where they started."""
    idx = [t for t, b in enumerate(boxes) if b is not None]
    if not idx:
        return float("nan")
    cs = {t: np.array([[boxes[t][0], boxes[t][2], boxes[t][2], boxes[t][0]],
                       [boxes[t][1], boxes[t][1], boxes[t][3], boxes[t][3]], [1, 1, 1, 1]], np.float64)
          for t in idx}

    def dehom(p):
        return (p[:2] / p[2]).T

    a = np.concatenate([dehom(H_pred[t] @ cs[t]) for t in idx])
    b = np.concatenate([dehom(H_true[t] @ cs[t]) for t in idx])
    # b ≈ [[s, −r], [r, s]]·a + t, linear least squares in (s, r, tx, ty)
    A = np.zeros((2 * len(a), 4))
    A[0::2] = np.stack([a[:, 0], -a[:, 1], np.ones(len(a)), np.zeros(len(a))], 1)
    A[1::2] = np.stack([a[:, 1], a[:, 0], np.zeros(len(a)), np.ones(len(a))], 1)
    s, r, tx, ty = np.linalg.lstsq(A, b.reshape(-1), rcond=None)[0]
    S = np.array([[s, -r, tx], [r, s, ty], [0, 0, 1.0]])
    errs = [np.linalg.norm(dehom(np.linalg.inv(H_true[t]) @ S @ H_pred[t] @ cs[t]) - cs[t][:2].T, axis=1).mean()
            for t in idx]
    return float(np.mean(errs))


def frame_box(width: int, height: int) -> tuple[int, int, int, int]:
    return (0, 0, width - 1, height - 1)


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) of a mask's True pixels, None when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))

"""Weight-free metrics for the quality benchmarks (numpy / scipy / cv2, and the thinning of
:mod:`celgraph.models.autoclose`).

Binary inputs (``*_bin``, masks) are anything numpy can turn into bool; ink images are coverage
0..1 (ink = 1).  Distances use cv2's exact Euclidean distance transform.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from ..models.autoclose import skeletonize


def _b(x):
    return np.asarray(x).astype(bool)


def _dist_to(mask):
    """Distance (px) from every pixel to the nearest True pixel of ``mask`` (inf if empty)."""
    m = _b(mask)
    if not m.any():
        return np.full(m.shape, np.inf, np.float32)
    return cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


# ---------------------------------------------------------------- flow / masks / transforms

def epe(pred, gt, mask=None):
    """Mean end-point error (px) of flows (H x W x 2), optionally over ``mask`` (True = counted)."""
    d = np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1)
    if mask is not None:
        m = _b(mask)
        return float(d[m].mean()) if m.any() else float("nan")
    return float(d.mean())


def epe_report(pred, gt, occ):
    """EPE over all pixels and over non-occluded pixels (``occ`` True = occluded)."""
    return {"all": epe(pred, gt), "noc": epe(pred, gt, ~_b(occ))}


def warp_back(img, flow):
    """``img`` sampled at p + flow(p) (bilinear, edges replicated): frame t+1 brought back to frame
    t by the t → t+1 flow. img H x W (x C), flow H x W x 2 (px, +x right, +y down)."""
    flow = np.asarray(flow, np.float32)
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(np.ascontiguousarray(img, np.float32), gx + flow[..., 0], gy + flow[..., 1],
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def lands_inside(flow):
    """True where p + flow(p) falls inside the frame (the pixel has somewhere to come from)."""
    flow = np.asarray(flow, np.float32)
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    x, y = gx + flow[..., 0], gy + flow[..., 1]
    return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def fb_consistent(fw, bw, alpha1=0.01, alpha2=0.5):
    """Pixels whose forward flow the backward flow undoes (Sundaram et al. 2010, as UnFlow uses it):
    |fw(p) + bw(p + fw(p))|^2 < alpha1 (|fw|^2 + |bw(p + fw)|^2) + alpha2, and p + fw(p) inside the
    frame. Everything else counts as occluded (or as a flow that is wrong)."""
    fw = np.asarray(fw, np.float32)
    bw_at = warp_back(bw, fw)
    d = ((fw + bw_at) ** 2).sum(-1)
    return (d < alpha1 * ((fw ** 2).sum(-1) + (bw_at ** 2).sum(-1)) + alpha2) & lands_inside(fw)


def photometric_error(img1, img2, flow, mask=None):
    """Mean absolute error of ``img2`` warped back by the img1 → img2 ``flow`` against ``img1``
    (per pixel the mean over channels), over ``mask`` (True = counted; default: pixels whose
    flow lands inside the frame). Images in the same 0..1 space (display values for the real bench)."""
    err = np.abs(warp_back(img2, flow) - np.asarray(img1, np.float32))
    if err.ndim == 3:
        err = err.mean(-1)
    m = lands_inside(flow) if mask is None else _b(mask)
    return float(err[m].mean()) if m.any() else float("nan")


def iou(pred, gt):
    """Intersection over union of two masks (1.0 when both are empty)."""
    p, g = _b(pred), _b(gt)
    u = np.logical_or(p, g).sum()
    return 1.0 if u == 0 else float(np.logical_and(p, g).sum() / u)


mask_iou = iou


def corner_error(H_pred, H_gt, width, height):
    """Mean distance between the images of the frame's 4 corner pixel centres under two 3x3
    transforms (in the target space's pixels, e.g. sprite canvas pixels for frame->canvas)."""
    c = np.array([[0, 0, 1], [width - 1, 0, 1], [width - 1, height - 1, 1], [0, height - 1, 1]], np.float64).T
    a = np.asarray(H_pred, np.float64) @ c
    b = np.asarray(H_gt, np.float64) @ c
    a = a[:2] / a[2]
    b = b[:2] / b[2]
    return float(np.linalg.norm(a - b, axis=0).mean())


def psnr(pred, gt, peak=1.0, mask=None):
    d = (np.asarray(pred, np.float64) - np.asarray(gt, np.float64)) ** 2
    if mask is not None:
        m = _b(mask)
        if d.ndim == m.ndim + 1:
            m = np.broadcast_to(m[..., None], d.shape)
        d = d[m]
    mse = float(d.mean()) if d.size else 0.0
    return float("inf") if mse == 0 else 10.0 * math.log10(peak * peak / mse)


# ---------------------------------------------------------------- line art

def line_prf(pred_bin, gt_bin, tol=1.0):
    """(precision, recall, F1) of ink pixels with a spatial tolerance ``tol`` px.
    Both empty -> (1, 1, 1)."""
    p, g = _b(pred_bin), _b(gt_bin)
    np_, ng = int(p.sum()), int(g.sum())
    if np_ == 0 and ng == 0:
        return 1.0, 1.0, 1.0
    if np_ == 0 or ng == 0:
        return (0.0 if np_ else 1.0), (0.0 if ng else 1.0), 0.0
    dg, dp = _dist_to(g), _dist_to(p)
    prec = float((dg[p] <= tol + 1e-6).mean())
    rec = float((dp[g] <= tol + 1e-6).mean())
    f1 = 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)
    return prec, rec, f1


def line_f1(pred_bin, gt_bin, tol=1.0):
    """F1 of ink pixels within ``tol`` px (BSDS-style, via distance transforms)."""
    return line_prf(pred_bin, gt_bin, tol)[2]


def line_continuity(ink_bin, min_length: int = 3) -> dict:
    """How whole the strokes of a binary line drawing are, from its skeleton (needs no truth).

    The ink is thinned to a 1-px skeleton (:func:`celgraph.models.autoclose.skeletonize`); its
    8-connected pieces of at least ``min_length`` px are the strokes (shorter ones are specks).
    Returns ``{"length": skeleton px in strokes, "strokes": their number, "mean_stroke": length ÷
    strokes, "ends_per_kpx": stroke ends (skeleton px with one 8-neighbour) per 1000 px of
    length}``. A line drawn whole has two ends; the same line broken into dashes has two per dash,
    so breaks show as more ends per length and shorter strokes. Line width does not count (the
    skeleton is 1 px), but lines merged into each other count as fewer, longer strokes: read it
    beside a precision or an inked share."""
    sk = skeletonize(_b(ink_bin))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(sk.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_length
    sk = keep[labels]
    k = np.ones((3, 3), np.float32)
    k[1, 1] = 0
    nb = cv2.filter2D(sk.astype(np.uint8), cv2.CV_32F, k, borderType=cv2.BORDER_CONSTANT)
    length, strokes, ends = int(sk.sum()), int(keep.sum()), int((sk & (nb == 1)).sum())
    return {"length": length, "strokes": strokes, "mean_stroke": length / strokes if strokes else 0.0,
            "ends_per_kpx": 1000.0 * ends / length if length else 0.0}


def chamfer(pred_bin, gt_bin):
    """Symmetric chamfer distance (px): mean of the two mean nearest-ink distances.
    0 if both empty, inf if exactly one is empty."""
    p, g = _b(pred_bin), _b(gt_bin)
    if not p.any() and not g.any():
        return 0.0
    if not p.any() or not g.any():
        return float("inf")
    return 0.5 * (float(_dist_to(g)[p].mean()) + float(_dist_to(p)[g].mean()))


def fill_leaks(lines, gt_regions, thresh=0.5, min_pixels=12, ignore=None, return_details=False):
    """How many ground-truth regions merge when flood-filling the line art.

    The paper of ``lines`` (ink < thresh; or a bool ink mask) is split into 4-connected components
    (what a bucket fill does).  A component "contains" a GT region when they share at least
    ``min_pixels`` pixels.  The leak count is sum over components of (#regions contained - 1).
    ``ignore``: a GT label (or list) not counted, e.g. 0 for the ink label of make_lineart regions.
    """
    L = np.asarray(lines)
    ink = L if L.dtype == bool else (L >= thresh)
    _, cc = cv2.connectedComponents((~ink).astype(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    g = np.asarray(gt_regions).astype(np.int64)
    m = ~ink
    if ignore is not None:
        for v in np.atleast_1d(ignore):
            m &= g != v
    c = cc[m].astype(np.int64)
    r = g[m]
    if c.size == 0:
        return (0, {}) if return_details else 0
    rmin = r.min()
    key = c * (int(r.max() - rmin) + 1) + (r - rmin)
    uk, cnt = np.unique(key, return_counts=True)
    uk = uk[cnt >= min_pixels]
    comp = uk // (int(r.max() - rmin) + 1)
    ucomp, per = np.unique(comp, return_counts=True)
    leaks = int(np.sum(per - 1))
    if return_details:
        return leaks, {int(a): int(b) for a, b in zip(ucomp, per) if b > 1}
    return leaks


def gap_recall(pred_bin, gap_mask, tol=1.0):
    """Share of ground-truth gap pixels (ink removed by the degradation) that have predicted ink
    within ``tol`` px.  1.0 when there are no gap pixels."""
    gm = _b(gap_mask)
    if not gm.any():
        return 1.0
    return float((_dist_to(pred_bin)[gm] <= tol + 1e-6).mean())


def spurious_ink(pred_bin, gt_bin, tol=1.0):
    """Predicted ink pixels farther than ``tol`` px from any GT ink, per megapixel."""
    p = _b(pred_bin)
    n = int((p & (_dist_to(gt_bin) > tol + 1e-6)).sum())
    return n * 1e6 / p.size


def false_closures(pred_bin, input_bin, open_mask):
    """Ink added by a gap closer (pred and not input) inside the open-end mask, in pixels."""
    return int((_b(pred_bin) & ~_b(input_bin) & _b(open_mask)).sum())


def ciede2000(rgb1: np.ndarray, rgb2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference of sRGB colours (…×3, 0..1), via OpenCV's Lab (D65)."""
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

"""Anti-aliased rasterisation of filled polygons and variable-width strokes into ROIs.

* Polygons: supersampled ``cv2.fillPoly`` (``ss`` x ``ss``) followed by an exact box filter
  (``INTER_AREA``), so coverage is quantised to 1/ss^2 and the union of pieces is exact.
* Strokes: analytic coverage from the distance to a dense chain of discs (one per sample,
  spacing <= 0.5 r), i.e. coverage = clip(r - d + 0.5, 0, 1), with thin strokes (2r < 1) faded
  to their true ink amount.  Radius may vary continuously along the stroke (pressure/taper).

A ROI is ``(x0, y0, w, h)`` in integer pixels; pixel (i, j) of the ROI is the pixel centred at
(x0 + j, y0 + i).
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from scipy.spatial import cKDTree

SHIFT = 4
_FP = 1 << SHIFT


def roi_of(points, pad, width, height):
    """Integer ROI (x0, y0, w, h) around points with padding, clipped to [0,width)x[0,height)."""
    pts = np.asarray(points)
    x0 = int(math.floor(pts[:, 0].min() - pad))
    y0 = int(math.floor(pts[:, 1].min() - pad))
    x1 = int(math.ceil(pts[:, 0].max() + pad)) + 1
    y1 = int(math.ceil(pts[:, 1].max() + pad)) + 1
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def union_roi(a, b):
    if a is None:
        return b
    if b is None:
        return a
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1 = max(a[0] + a[2], b[0] + b[2])
    y1 = max(a[1] + a[3], b[1] + b[3])
    return (x0, y0, x1 - x0, y1 - y0)


def _fixed(pts, roi, ss):
    x0, y0 = roi[0], roi[1]
    q = (np.asarray(pts, dtype=np.float64) - (x0, y0) + 0.5) * ss - 0.5
    return np.round(q * _FP).astype(np.int32)


def cover_polys(polys, roi, ss=4):
    """Coverage (float32, ROI-sized) of the union of closed polygons ``polys`` (list of Nx2)."""
    x0, y0, w, h = roi
    hi = np.zeros((h * ss, w * ss), np.uint8)
    cv2.fillPoly(hi, [_fixed(p, roi, ss) for p in polys], 255, lineType=cv2.LINE_8, shift=SHIFT)
    if ss == 1:
        return hi.astype(np.float32) / 255.0
    lo = cv2.resize(hi, (w, h), interpolation=cv2.INTER_AREA)
    return lo.astype(np.float32) * (1.0 / 255.0)


def stroke_samples(pts, radii, closed=False):
    """Densify a stroke so that consecutive disc centres are <= 0.45*r (and <= 0.5 px) apart."""
    pts = np.asarray(pts, dtype=np.float64)
    radii = np.asarray(radii, dtype=np.float64)
    if len(pts) < 2:
        return pts, radii
    if closed:
        pts = np.concatenate([pts, pts[:1]])
        radii = np.concatenate([radii, radii[:1]])
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    rmin = np.maximum(np.minimum(radii[:-1], radii[1:]), 0.05)
    step = np.clip(0.45 * rmin, 0.2, 0.5)
    k = np.maximum(1, np.ceil(seg / step).astype(int))
    if k.max() == 1:
        return pts, radii
    idx = np.repeat(np.arange(len(seg)), k)
    starts = np.concatenate([[0], np.cumsum(k)[:-1]])
    frac = (np.arange(int(k.sum())) - np.repeat(starts, k)) / np.repeat(k, k)
    P = pts[idx] + (pts[idx + 1] - pts[idx]) * frac[:, None]
    R = radii[idx] + (radii[idx + 1] - radii[idx]) * frac
    P = np.concatenate([P, pts[-1:]])
    R = np.concatenate([R, radii[-1:]])
    return P, R


def cover_strokes(strokes, roi, out=None):
    """Ink coverage of strokes in ``roi``; each stroke is (pts Nx2, radii N[, closed]).

    Strokes are combined with ``max`` (a union for equal-width overlaps).  Returns float32 (h, w);
    if ``out`` is given it is updated in place with max and returned.
    """
    x0, y0, w, h = roi
    if out is None:
        out = np.zeros((h, w), np.float32)
    for st in strokes:
        pts, radii = st[0], st[1]
        closed = bool(st[2]) if len(st) > 2 else False
        if len(pts) == 0:
            continue
        P, R = stroke_samples(pts, radii, closed)
        rmax = float(R.max())
        band = np.zeros((h, w), np.uint8)
        th = int(2 * math.ceil(rmax) + 4)
        q = _fixed(P, roi, 1)
        if len(q) == 1:
            cv2.circle(band, tuple(q[0].tolist()), th * _FP // 2, 1, -1, cv2.LINE_8, SHIFT)
        else:
            cv2.polylines(band, [q], False, 1, thickness=th, lineType=cv2.LINE_8, shift=SHIFT)
        ys, xs = np.nonzero(band)
        if len(ys) == 0:
            continue
        pix = np.stack([xs + x0, ys + y0], axis=1).astype(np.float64)
        tree = cKDTree(P)
        k = min(8, len(P))
        d, j = tree.query(pix, k=k, distance_upper_bound=rmax + 1.0)
        if k == 1:
            d, j = d[:, None], j[:, None]
        valid = np.isfinite(d)
        jj = np.where(valid, j, 0)
        f = np.where(valid, R[jj] - d, -np.inf)
        best = np.argmax(f, axis=1)
        fb = f[np.arange(len(f)), best]
        rb = R[jj[np.arange(len(f)), best]]
        ok = np.isfinite(fb)
        jb = jj[np.arange(len(f)), best][ok]
        fb, rb, xs, ys, pix = fb[ok], rb[ok], xs[ok], ys[ok], pix[ok]
        # refine: exact distance to the two segments adjoining the best disc (radius lerped)
        for nb in (-1, 1):
            j2 = np.clip(jb + nb, 0, len(P) - 1)
            a, b = P[jb], P[j2]
            ab = b - a
            L2 = np.maximum((ab * ab).sum(1), 1e-12)
            t = np.clip(((pix - a) * ab).sum(1) / L2, 0.0, 1.0)
            dd = np.linalg.norm(pix - (a + ab * t[:, None]), axis=1)
            rr = R[jb] + (R[j2] - R[jb]) * t
            better = rr - dd > fb
            fb = np.where(better, rr - dd, fb)
            rb = np.where(better, rr, rb)
        d_b = rb - fb
        cov = np.clip(np.maximum(rb, 0.5) - d_b + 0.5, 0.0, 1.0) * np.minimum(1.0, 2.0 * rb)
        cov = cov.astype(np.float32)
        cur = out[ys, xs]
        out[ys, xs] = np.maximum(cur, cov)
    return out


def cover_polylines_fast(strokes, roi, ss=4):
    """Cheap approximate stroke coverage (supersampled cv2 thick polylines, one width per stroke
    segment quantised to 1/ss px).  Used for painted background details, not for line art."""
    x0, y0, w, h = roi
    hi = np.zeros((h * ss, w * ss), np.uint8)
    for st in strokes:
        pts, radii = np.asarray(st[0], np.float64), np.asarray(st[1], np.float64)
        q = _fixed(pts, roi, ss)
        if len(q) < 2:
            continue
        rs = 0.5 * (radii[:-1] + radii[1:])
        th = np.maximum(1, np.round(2 * rs * ss) - 1).astype(int)
        start = 0
        for i in range(1, len(th) + 1):
            if i == len(th) or th[i] != th[start]:
                cv2.polylines(hi, [q[start:i + 1]], False, 255, thickness=int(th[start]),
                              lineType=cv2.LINE_8, shift=SHIFT)
                start = i
    lo = cv2.resize(hi, (w, h), interpolation=cv2.INTER_AREA) if ss > 1 else hi
    return lo.astype(np.float32) * (1.0 / 255.0)

"""Geometry helpers: centripetal Catmull-Rom splines, arc-length resampling, 3x3 matrices.

Coordinates follow the project convention: x right, y down, pixel centres at integer coords.
"""
from __future__ import annotations

import math

import numpy as np


def catmull_rom(points, closed=True, spacing=0.5, alpha=0.5):
    """Dense polyline through ``points`` (K x 2) with a centripetal Catmull-Rom spline.

    Centripetal parameterisation (alpha=0.5) never forms cusps or self-loops inside a segment.
    ``spacing`` is the approximate distance between output samples (pixels).
    Returns an (N, 2) float64 array; for a closed curve the last point is not repeated.
    """
    P = np.asarray(points, dtype=np.float64)
    n = len(P)
    if n < 2:
        return P.copy()
    if closed:
        ext = np.concatenate([P[-1:], P, P[:2]], axis=0)
        nseg = n
    else:
        if n == 2:
            P = np.stack([P[0], (P[0] + P[1]) / 2, P[1]])
            n = 3
        ext = np.concatenate([2 * P[:1] - P[1:2], P, 2 * P[-1:] - P[-2:-1]], axis=0)
        nseg = n - 1
    out = []
    for i in range(nseg):
        p0, p1, p2, p3 = ext[i], ext[i + 1], ext[i + 2], ext[i + 3]
        d01 = max(np.linalg.norm(p1 - p0), 1e-6) ** alpha
        d12 = max(np.linalg.norm(p2 - p1), 1e-6) ** alpha
        d23 = max(np.linalg.norm(p3 - p2), 1e-6) ** alpha
        t0, t1 = 0.0, d01
        t2 = t1 + d12
        t3 = t2 + d23
        m = max(2, int(math.ceil(np.linalg.norm(p2 - p1) * 1.6 / max(spacing, 1e-3))))
        t = np.linspace(t1, t2, m, endpoint=False)[:, None]
        a1 = (t1 - t) / (t1 - t0) * p0 + (t - t0) / (t1 - t0) * p1
        a2 = (t2 - t) / (t2 - t1) * p1 + (t - t1) / (t2 - t1) * p2
        a3 = (t3 - t) / (t3 - t2) * p2 + (t - t2) / (t3 - t2) * p3
        b1 = (t2 - t) / (t2 - t0) * a1 + (t - t0) / (t2 - t0) * a2
        b2 = (t3 - t) / (t3 - t1) * a2 + (t - t1) / (t3 - t1) * a3
        c = (t2 - t) / (t2 - t1) * b1 + (t - t1) / (t2 - t1) * b2
        out.append(c)
    if not closed:
        out.append(P[-1:])
    return resample(np.concatenate(out, axis=0), spacing, closed)


def resample(pts, spacing, closed=False):
    """Resample a polyline at (nearly) uniform arc-length spacing."""
    pts = np.asarray(pts, dtype=np.float64)
    if len(pts) < 2:
        return pts.copy()
    if closed:
        pts = np.concatenate([pts, pts[:1]], axis=0)
    d = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    keep = np.concatenate([[True], d > 1e-9])
    pts = pts[keep]
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    total = s[-1]
    if total <= 1e-9:
        return pts[:1].copy()
    n = max(2, int(round(total / spacing)) + (0 if closed else 1))
    if closed:
        t = np.linspace(0.0, total, n, endpoint=False)
    else:
        t = np.linspace(0.0, total, n)
    x = np.interp(t, s, pts[:, 0])
    y = np.interp(t, s, pts[:, 1])
    return np.stack([x, y], axis=1)


def polygon_area(pts):
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def normals(pts, closed=True):
    """Unit normals of a dense polyline pointing to the *left* of the direction of travel
    (in x-right/y-down coordinates, i.e. rotate the tangent by -90 deg)."""
    if closed:
        tan = np.roll(pts, -1, axis=0) - np.roll(pts, 1, axis=0)
    else:
        tan = np.gradient(pts, axis=0)
    tan /= np.maximum(np.linalg.norm(tan, axis=1, keepdims=True), 1e-9)
    return np.stack([tan[:, 1], -tan[:, 0]], axis=1)


def inward_normals(poly):
    """Unit normals of a closed polygon pointing into its interior."""
    n = normals(poly, closed=True)
    # with y down, positive shoelace area means clockwise on screen; left normal then points out
    return -n if polygon_area(poly) > 0 else n


# ---------------------------------------------------------------- 3x3 matrices

def mat_translate(tx, ty):
    return np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]], dtype=np.float64)


def mat_rotate(theta):
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float64)


def mat_scale(sx, sy=None):
    sy = sx if sy is None else sy
    return np.array([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], dtype=np.float64)


def mat_squash(amount, angle):
    """Area-preserving squash & stretch along direction ``angle``: scale 1+a along, 1/(1+a) across."""
    R = mat_rotate(angle)
    return R @ mat_scale(1.0 + amount, 1.0 / (1.0 + amount)) @ R.T


def apply(M, pts):
    """Apply a 3x3 (affine or projective) matrix to (N, 2) points."""
    pts = np.asarray(pts, dtype=np.float64)
    h = pts @ M[:2, :2].T + M[:2, 2]
    if M[2, 0] != 0 or M[2, 1] != 0 or M[2, 2] != 1:
        w = pts @ M[2, :2] + M[2, 2]
        h = h / w[:, None]
    return h

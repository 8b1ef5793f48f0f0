"""Region matching: which region of a coloured key frame each region of another frame's line art is
(Colorize ``reference`` mode, ``match = regions``).

Optical flow between line drawings is undefined inside large flat regions, so a big region follows
whichever neighbour its pixels' flow lands in. A colourist matches *regions* instead: the same
shape, in the same place once the drawing's overall motion is taken out, with the same neighbours.
This module does that, with numpy, OpenCV and scipy only (the peers — BasicPBC, DACoN — learn
segment features for the same matching):

1. **Regions** are those of :func:`celgraph.models.hintfill.segment` (closed paper areas after
   trapped-ball gap closing) in both frames. Each gets a descriptor (:func:`describe`): area,
   centroid, second moments (shape and orientation) and its neighbours with the length of the line
   between them.
2. **Global motion** (:func:`global_motion`): regions that look alike (area and the two
   rotation-invariant second-moment invariants) propose centroid pairs; RANSAC fits a similarity
   to them (scale, rotation, shift, any size); identity competes with it on inlier count.
3. **Costs** (:func:`_costs`) for each target region against a few key candidates (those its
   pixels land in after the motion, the nearest by position, the most alike in shape anywhere):
   how much of it lands in the candidate, position error (relative to the region's size plus a
   tolerance that grows with the distance to the nearest matched region, capped, so a region that
   moved far can still win on the other cues; a region cut by the frame's edge is judged against
   its own reach), area ratio, shape after rotation, and — when a flow is given — how far the
   share of its pixels the flow takes there falls short of the flow's clearest vote for the region
   (one cue among these; a flow that votes for nothing adds nothing).
4. **Assignment** (:func:`match_regions`): Hungarian (scipy ``linear_sum_assignment``) on the
   costs with a "no match" column per region at ``null_cost``, so look-alikes cannot both take one
   key region; then, three rounds: the motion is refitted as a similarity on the matches, each
   region's local offset is predicted from its matched spatial neighbours (a smooth warp; a match
   that disagrees with its neighbours is left out of it), and a
   neighbour term is added — a candidate whose key neighbours are the key matches of the region's
   own neighbours costs less (neighbours stay neighbours; the term is relative to the region's
   best-supported candidate, and larger neighbours have more say than smaller ones). Regions left
   out by the one-to-one assignment (a key region split in two by a new line) take their best candidate if it is under
   ``null_cost``; with a flow, a region still unmatched (reshaped, half hidden) takes the key
   region that at least half of its pixels' flow lands in — with no confidence unless their areas
   are within ×3 (it may be a new region drawn inside an old one).
5. **Confidence**: the cost gap to the best candidate of a *different key colour* (a mix-up
   between two regions of the same colour costs nothing), over ``null_cost``; a match the flow
   agrees with (its share of the region's pixels, areas within ×3) is at least as sure as that
   share. No candidate under
   ``null_cost`` = no match: the caller leaves the region unpainted and flags it ``unsure``.

:func:`motion_field` turns the result into a per-pixel displacement (the fitted motion plus each
region's own offset) that places the key's shadows and highlights inside matched regions when no
flow is used.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from .hintfill import Segmentation, region_adjacency

__all__ = ["Descriptors", "describe", "global_motion", "match_regions", "identity_match", "motion_field", "fit_motion",
           "key_colors"]


@dataclass
class Descriptors:
    n: int
    area: np.ndarray            # (n+1,) paper pixels
    c: np.ndarray               # (n+1, 2) centroid x, y
    cov: np.ndarray             # (n+1, 2, 2) second central moments / area
    inv: np.ndarray             # (n+1, 2) rotation/scale invariants: (λ1+λ2)/area, ((λ1-λ2)/(λ1+λ2))
    adjacency: np.ndarray       # (m, 3) int64 neighbour pairs a < b and the length of the line between them
    clipped: np.ndarray         # (n+1,) bool: touches the frame's edge (its area and shape are cut)

    @cached_property
    def nbrs(self) -> list[dict[int, int]]:
        """Per region: {neighbour: border length}."""
        nbrs: list[dict[int, int]] = [dict() for _ in range(self.n + 1)]
        for i, j, cnt in self.adjacency.tolist():
            nbrs[i][j] = cnt
            nbrs[j][i] = cnt
        return nbrs


def describe(seg: Segmentation) -> Descriptors:
    """Per-region descriptors of a segmentation (paper pixels only)."""
    n = seg.n
    H, W = seg.labels.shape
    lab = np.where(seg.ink, 0, seg.labels).ravel()
    xs = np.tile(np.arange(W, dtype=np.float64), H)
    ys = np.repeat(np.arange(H, dtype=np.float64), W)

    def per_region(w=None) -> np.ndarray:          # sums over each region's paper pixels (bin 0: ink, left out)
        out = np.bincount(lab, w, n + 1).astype(np.float64)
        out[0] = 0.0
        return out

    area = per_region()
    a = np.maximum(area, 1)
    cx, cy = per_region(xs) / a, per_region(ys) / a
    sxx = per_region(xs * xs) / a - cx * cx + 1 / 12      # raw moments (exact in float64
    syy = per_region(ys * ys) / a - cy * cy + 1 / 12      # at any frame size we meet)
    sxy = per_region(xs * ys) / a - cx * cy
    cov = np.stack([np.stack([sxx, sxy], -1), np.stack([sxy, syy], -1)], -2)
    tr = sxx + syy
    det = sxx * syy - sxy ** 2
    ecc = np.sqrt(np.maximum(tr ** 2 - 4 * det, 0)) / np.maximum(tr, 1e-9)
    inv = np.stack([tr / a, ecc], 1)
    adjacency = np.array([(i, j, cnt) for (i, j), cnt in region_adjacency(seg.labels, n).items()],
                         np.int64).reshape(-1, 3)
    clipped = np.zeros(n + 1, bool)
    lab2 = seg.labels
    clipped[np.concatenate([lab2[0], lab2[-1], lab2[:, 0], lab2[:, -1]])] = True
    clipped[0] = False
    return Descriptors(n, area, np.stack([cx, cy], 1), cov, inv, adjacency, clipped)


def _shape_feat(d: Descriptors) -> np.ndarray:
    """Similarity-invariant shape features (log tr/area, eccentricity)."""
    return np.stack([np.log(np.maximum(d.inv[:, 0], 1e-6)) * 2.0, d.inv[:, 1] * 2.0], 1)


def global_motion(dt: Descriptors, dk: Descriptors, min_area: float = 30.0, k: int = 4,
                  seed: int = 0) -> np.ndarray:
    """2×3 similarity taking frame t to the key, fitted by RANSAC to centroid pairs of regions that
    look alike; the identity when it explains at least as many regions."""
    it = np.flatnonzero(dt.area >= min_area)
    ik = np.flatnonzero(dk.area >= min_area)
    eye = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    if len(it) < 2 or len(ik) < 2:
        return eye
    ft, fk = _shape_feat(dt)[it], _shape_feat(dk)[ik]
    la_t, la_k = np.log(dt.area[it]), np.log(dk.area[ik])
    tree = cKDTree(fk)
    _, nn = tree.query(ft, k=min(k * 3, len(ik)))
    nn = np.atleast_2d(nn)
    src, dst = [], []
    for a in range(len(it)):
        cand = [b for b in nn[a] if abs(la_t[a] - la_k[b]) < 1.6][:k]       # area within ×5
        for b in cand:
            src.append(dt.c[it[a]])
            dst.append(dk.c[ik[b]])
    if len(src) < 2:
        return eye
    src, dst = np.asarray(src, np.float32), np.asarray(dst, np.float32)
    size = float(np.sqrt(dt.area[1:].sum()))
    thr = max(3.0, 0.01 * size)
    cv2.setRNGSeed(seed)
    m, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=thr,
                                       maxIters=5000, confidence=0.999)
    if m is None or not _plausible(m):
        return eye

    def support(mat):               # regions whose centroid lands within thr of an alike key region
        p = dt.c[it] @ mat[:, :2].T + mat[:, 2]
        dist, j = cKDTree(dk.c[ik]).query(p)
        return int(((dist < thr) & (np.abs(la_t - la_k[j]) < 0.7)).sum())

    return m if support(m) > support(eye) else eye


def _plausible(m: np.ndarray) -> bool:
    """A drawing's motion: scale within ×5 either way, no strong shear or squash."""
    sv = np.linalg.svd(m[:, :2], compute_uv=False)
    return bool(0.2 < sv[1] and sv[0] < 5 and sv[0] / sv[1] < 1.5 and np.linalg.det(m[:, :2]) > 0)


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def key_colors(seg_k: Segmentation, ref_rgba: np.ndarray) -> np.ndarray:
    """(n_k+1, 4) dominant colour (RGB, alpha) of each key region, quantised to 5 bits (for the
    confidence: mistaking one region for another of the same colour is harmless)."""
    ref = np.asarray(ref_rgba, np.float32)
    if ref.ndim == 2:
        ref = np.repeat(ref[:, :, None], 3, axis=2)
    if ref.shape[2] == 3:
        ref = np.concatenate([ref, np.ones(ref.shape[:2] + (1,), np.float32)], 2)
    q = np.rint(np.clip(ref[:, :, :4], 0, 1) * np.float32(31)).astype(np.int32)
    key = (((q[..., 0] * 32 + q[..., 1]) * 32 + q[..., 2]) * 32 + q[..., 3]).ravel()
    lab = np.where(seg_k.ink, 0, seg_k.labels).ravel()
    sel = lab > 0
    lab, key = lab[sel].astype(np.int64), key[sel]
    present = np.flatnonzero(np.bincount(key, minlength=32 ** 4))     # colours in use, numbered compactly
    cid = np.zeros(32 ** 4, np.int64)
    cid[present] = np.arange(len(present))
    nc = max(len(present), 1)
    out = np.full(seg_k.n + 1, -1, np.int64)
    if (seg_k.n + 1) * nc <= 2 ** 25:
        counts = np.bincount(lab * nc + cid[key], minlength=(seg_k.n + 1) * nc).reshape(seg_k.n + 1, nc)
        has = counts.sum(1) > 0
        out[has] = present[counts[has].argmax(1)]
        return out
    u, c = np.unique(lab * nc + cid[key], return_counts=True)          # many colours (painted keys): sort
    regs = u // nc
    order = np.lexsort((c, regs))
    out[regs[order]] = present[(u % nc)[order]]
    return out


def _paper_labels(seg: Segmentation) -> np.ndarray:
    """The region ids of the paper pixels (0 on ink), as float32 for cv2.remap."""
    return np.where(seg.ink, 0, seg.labels).astype(np.float32)


def _votes(seg_t: Segmentation, seg_k: Segmentation, disp: np.ndarray, inner: np.ndarray,
           key_paper: np.ndarray | None = None):
    """Per (t region, key region): the share of the t region's inner pixels a displacement field
    (H×W×2, t → key) takes into the key region (``key_paper``: :func:`_paper_labels` of ``seg_k``, when
    the caller keeps it). Returns a dict {(i, j): share}."""
    H, W = seg_t.labels.shape
    mx = disp[:, :, 0] + np.arange(W, dtype=np.float32)[None, :]
    my = disp[:, :, 1] + np.arange(H, dtype=np.float32)[:, None]
    inside = (mx >= 0) & (mx <= W - 1) & (my >= 0) & (my <= H - 1)
    k_lab = cv2.remap(_paper_labels(seg_k) if key_paper is None else key_paper, mx, my, cv2.INTER_NEAREST,
                      borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(np.int64)
    t_lab = seg_t.labels
    m = inner & inside & (k_lab > 0)
    nk1 = seg_k.n + 1
    cnt = np.bincount(t_lab[m].astype(np.int64) * nk1 + k_lab[m], minlength=(seg_t.n + 1) * nk1)
    u = np.flatnonzero(cnt)
    cnt = cnt[u]
    tot = np.bincount(t_lab[inner], minlength=seg_t.n + 1).astype(np.float64)
    ii, jj = u // nk1, u % nk1
    return {(int(i), int(j)): float(c / max(tot[i], 1)) for i, j, c in zip(ii, jj, cnt)}


def motion_field(labels: np.ndarray, m: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """H×W×2 displacement t → key: the fitted motion ``m`` (2×3) plus each region's ``offset``
    ((n+1)×2, indexed by ``labels``)."""
    H, W = labels.shape
    x, y = np.arange(W, dtype=np.float32)[None, :], np.arange(H, dtype=np.float32)[:, None]
    m = m.astype(np.float32)
    out = np.empty((H, W, 2), np.float32)
    for c, (row, col) in enumerate((((m[0, 0] - 1) * x, m[0, 1] * y + m[0, 2]),
                                    (m[1, 0] * x, (m[1, 1] - 1) * y + m[1, 2]))):
        plane = np.take(np.ascontiguousarray(offset[:, c], np.float32), labels)
        plane += row
        plane += col
        out[:, :, c] = plane
    return out


# cost weights: overlap, position, area, shape, flow, neighbours
W_OVERLAP, W_POS, W_AREA, W_SHAPE, W_FLOW, W_NBR = 1.0, 1.0, 1.0, 0.5, 1.0, 3.0
POS_CAP = 1.0
NULL_COST = 2.5                     # a candidate costing this or more is no match
WARP_SLOPE = 0.05                   # how fast a drawing's local offset may change, pixels per pixel


def _costs(dt: Descriptors, dk: Descriptors, m: np.ndarray, pred: np.ndarray, overlap: dict,
           flow_votes: dict | None, flow_weight: float, k_pos: int, k_shape: int,
           tree_k: cKDTree, tree_shape: cKDTree, shape_k: np.ndarray, shape_t: np.ndarray,
           pos_tol: np.ndarray | None = None):
    """Sparse unary costs {(i, j): cost} for every t region i against its candidates; ``pos_tol``
    ((n_t+1,) pixels) widens the position tolerance where the prediction ``pred`` is less sure."""
    A = m[:, :2]
    s2 = abs(np.linalg.det(A))                         # area scale t → key
    cand: dict[int, set] = {i: set() for i in range(1, dt.n + 1)}
    for (i, j) in overlap:
        cand[i].add(j)
    if flow_votes:
        for (i, j) in flow_votes:
            cand[i].add(j)
    ids = np.arange(1, dt.n + 1)
    if dk.n:
        _, near = tree_k.query(pred[ids], k=min(k_pos, dk.n))
        near = np.atleast_2d(near).reshape(len(ids), -1)
        _, alike = tree_shape.query(shape_t[ids], k=min(k_shape, dk.n))
        alike = np.atleast_2d(alike).reshape(len(ids), -1)
        for r, i in enumerate(ids):
            cand[int(i)].update(int(j) + 1 for j in near[r])
            cand[int(i)].update(int(j) + 1 for j in alike[r])
    pairs = [(i, j) for i in ids for j in cand[int(i)]]
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    I = np.array([p[0] for p in pairs], np.int64)
    J = np.array([p[1] for p in pairs], np.int64)
    ov = np.array([overlap.get((int(i), int(j)), 0.0) for i, j in pairs])
    size = np.sqrt(np.maximum(dk.area[J], 1))
    tol = 0.5 * size + 8.0 + (0.0 if pos_tol is None else pos_tol[I])
    pos = np.minimum(np.linalg.norm(pred[I] - dk.c[J], axis=1) / tol, POS_CAP)
    area = np.abs(np.log(np.maximum(dt.area[I], 1) * s2 / np.maximum(dk.area[J], 1)))
    cov_t = np.einsum("ab,nbc,dc->nad", A, dt.cov[I], A)      # t shape moved into the key frame
    cov_k = dk.cov[J]
    scale = np.maximum(np.trace(cov_k, axis1=1, axis2=2), 1e-6)
    shape = np.minimum(np.linalg.norm((cov_t - cov_k).reshape(len(I), -1), axis=1) / scale, 2.0)
    shape *= np.minimum(1.0, np.minimum(dt.area[I], dk.area[J]) / 100.0)     # a speck's shape says little
    # a region cut by the frame's edge: its centroid and shape are not the key's, and it may only be
    # smaller (t cut) or larger (key cut) than its match
    ct, ck = dt.clipped[I], dk.clipped[J]
    ratio = np.log(np.maximum(dt.area[I], 1) * s2 / np.maximum(dk.area[J], 1))
    area = np.where(ct & ck, 0.0, np.where(ct, np.maximum(ratio, 0), np.where(ck, np.maximum(-ratio, 0), area)))
    # a region cut by t's edge is a fragment whose neighbours are out of view: its position says
    # nothing. A whole region against a key region cut by the key's edge must still lie within that
    # region's reach (its radius from the second moments): the cut moved the centroid that far at
    # most, not anywhere in the frame
    cut = ct | ck
    reach = 2.0 * np.sqrt(np.maximum(np.trace(cov_t, axis1=1, axis2=2), np.trace(cov_k, axis1=1, axis2=2)))
    pos_cut = np.minimum(np.linalg.norm(pred[I] - dk.c[J], axis=1) / (reach + tol), POS_CAP)
    pos, shape = np.where(ct, 0.0, np.where(ck, pos_cut, pos)), np.where(cut, 0.0, shape)
    cost = W_OVERLAP * (1 - ov) + W_POS * pos + W_AREA * np.minimum(area, 3.0) + W_SHAPE * shape
    if flow_votes is not None and flow_weight > 0:
        # relative to the region's clearest vote: a flow that takes a thin region's pixels onto lines
        # or spreads them over a large neighbour says little against any candidate
        fv = np.array([flow_votes.get((int(i), int(j)), 0.0) for i, j in pairs])
        top = np.zeros(dt.n + 1)
        np.maximum.at(top, I, fv)
        cost = cost + flow_weight * W_FLOW * (top[I] - fv)
    return I, J, cost


def _neighbour_support(dt: Descriptors, dk: Descriptors, I, J, match):
    """Share of i's border with neighbours whose key match is j itself or a key neighbour of j; 1
    where i has no matched neighbour (no evidence either way: no penalty). Each neighbour's say is
    its line length with i, scaled down when it is smaller than i: large regions anchor the small
    ones inside or beside them, not the other way round."""
    out = np.ones(len(I))
    cache: dict[int, list] = {}
    for r, (i, j) in enumerate(zip(I, J)):
        i, j = int(i), int(j)
        if i not in cache:
            cache[i] = [(int(match[n]), w * min(1.0, dt.area[n] / max(dt.area[i], 1)))
                        for n, w in dt.nbrs[i].items() if match[n] > 0]
        nb = cache[i]
        tot = sum(w for _, w in nb)
        if tot == 0:
            continue
        kn = dk.nbrs[j]
        out[r] = sum(w for mj, w in nb if mj == j or mj in kn) / tot
    return out


def _local_offsets(dt: Descriptors, dk: Descriptors, match: np.ndarray, sure: np.ndarray, m: np.ndarray):
    """((n_t+1)×2 offsets from the motion ``m``, (n_t+1,) position tolerance): each region's offset
    predicted from its nearest sure neighbours (not itself) — the smooth part of the warp. A sure
    match whose own offset disagrees with its neighbours' prediction (a wrong match, or a centroid
    moved by a reshaped region) is left out, so that one error does not drag its neighbourhood
    along. The warp is known less well far from any matched region: the tolerance grows with the
    distance to the nearest one used (``WARP_SLOPE`` pixels per pixel)."""
    n = dt.n + 1
    off = dk.c[match[sure]] - _apply(m, dt.c[sure])

    def predict(keep):
        kk = min(9, len(keep))
        dist, nn = cKDTree(dt.c[keep]).query(dt.c, k=kk)
        dist, nn = dist.reshape(n, kk), nn.reshape(n, kk)
        wgt = (keep[nn] != np.arange(n)[:, None]) / (dist + 10.0)
        pred = (wgt[:, :, None] * off[np.searchsorted(sure, keep)][nn]).sum(1) / np.maximum(wgt.sum(1), 1e-9)[:, None]
        near = np.where(wgt > 0, dist, np.inf).min(1)
        return pred, WARP_SLOPE * np.where(np.isfinite(near), near, 0.0)

    pred, tol = predict(sure)
    if len(sure) >= 6:
        resid = np.linalg.norm(off - pred[sure], axis=1)
        keep = sure[resid <= np.maximum(4.0, 3.0 * np.median(resid)) + tol[sure]]
        if 3 <= len(keep) < len(sure):
            pred, tol = predict(keep)
    return pred, tol


def match_regions(seg_t: Segmentation, seg_k: Segmentation, flow: np.ndarray | None = None,
                  key_color: np.ndarray | None = None, flow_weight: float = 1.0, null_cost: float = NULL_COST,
                  rounds: int = 3, margin: float = 1.5, seed: int = 0,
                  key_desc: Descriptors | None = None) -> dict[str, np.ndarray]:
    """Match every region of frame t to a key region (module doc). ``flow`` (optional, H×W×2,
    t → key) is one cue; ``key_color`` ((n_k+1,) from :func:`key_colors`) makes the confidence
    ignore mix-ups between regions of one colour. Returns {"match": (n_t+1,) key region (0 = none),
    "cost": (n_t+1,), "confidence": (n_t+1,) 0..1, "motion": 2×3, "offset": (n_t+1)×2 (each
    region's offset from the motion, for :func:`motion_field`), "flow_share": (n_t+1,) share of the
    region's pixels the flow takes into its match (0 without a flow)}. ``key_desc``: :func:`describe`
    of ``seg_k`` when the caller keeps it (a key frame matched against many frames)."""
    dt, dk = describe(seg_t), key_desc if key_desc is not None else describe(seg_k)
    nt = dt.n
    inner = cv2.distanceTransform((~seg_t.ink).astype(np.uint8), cv2.DIST_L2, 3) > margin
    small = np.bincount(seg_t.labels[inner], minlength=nt + 1) == 0      # regions thinner than the margin
    if small.any():
        inner = inner | (small[seg_t.labels] & ~seg_t.ink)
    m = global_motion(dt, dk, seed=seed)
    key_paper = _paper_labels(seg_k)
    flow_votes = _votes(seg_t, seg_k, flow, inner, key_paper) if flow is not None and flow_weight > 0 else None
    shape_k, shape_t = _shape_feat(dk), _shape_feat(dt)
    tree_k = cKDTree(dk.c[1:]) if dk.n else None
    tree_shape = cKDTree(np.c_[shape_k[1:], np.log(np.maximum(dk.area[1:], 1)) * 0.5]) if dk.n else None
    pred_off = np.zeros((nt + 1, 2))
    pos_tol = np.zeros(nt + 1)
    match = np.zeros(nt + 1, np.int64)
    cost_of = np.full(nt + 1, np.inf)
    conf = np.zeros(nt + 1)
    for rnd in range(rounds):
        pred = _apply(m, dt.c) + pred_off
        overlap = _votes(seg_t, seg_k, motion_field(seg_t.labels, m, pred_off), inner, key_paper)
        s = np.sqrt(abs(np.linalg.det(m[:, :2])))
        shape_q = np.c_[shape_t, (np.log(np.maximum(dt.area, 1)) + 2 * np.log(max(s, 1e-6))) * 0.5]
        I, J, cost = _costs(dt, dk, m, pred, overlap, flow_votes, flow_weight, 6, 4, tree_k, tree_shape,
                            shape_k, shape_q, pos_tol)
        if rnd > 0:                 # neighbour term, relative to i's best-supported candidate (when no
            sup = _neighbour_support(dt, dk, I, J, match)      # candidate is supported, it says nothing)
            best_sup = np.zeros(nt + 1)
            np.maximum.at(best_sup, I, sup)
            cost = cost + W_NBR * (best_sup[I] - sup)
        match = np.zeros(nt + 1, np.int64)
        cost_of = np.full(nt + 1, np.inf)
        if len(I):
            # one-to-one first: t regions × (key regions + one "no match" column per t region)
            ut, it_inv = np.unique(I, return_inverse=True)
            uk, ik_inv = np.unique(J, return_inverse=True)
            big = 1e6
            C = np.full((len(ut), len(uk) + len(ut)), big)
            C[it_inv, ik_inv] = np.minimum(C[it_inv, ik_inv], cost)
            C[np.arange(len(ut)), len(uk) + np.arange(len(ut))] = null_cost
            rows, cols = linear_sum_assignment(C)
            ok = cols < len(uk)
            match[ut[rows[ok]]] = uk[cols[ok]]
            cost_of[ut[rows[ok]]] = C[rows[ok], cols[ok]]
            # many-to-one for the rest: best candidate under null_cost
            order = np.lexsort((cost, I))
            first = np.r_[True, I[order][1:] != I[order][:-1]]
            bi, bj, bc = I[order][first], J[order][first], cost[order][first]
            free = (match[bi] == 0) & (bc < null_cost)
            match[bi[free]] = bj[free]
            cost_of[bi[free]] = bc[free]
            # confidence: gap to the best candidate of another key colour
            col = key_color if key_color is not None else np.arange(dk.n + 1)
            alt = np.full(nt + 1, null_cost)
            differs = col[J] != col[match[I]]
            np.minimum.at(alt, I[differs], cost[differs])
            conf = np.where(match > 0, np.clip((alt - cost_of) / null_cost, 0, 1), 0.0)
        conf[0] = 0.0
        # refit the motion on the sure matches, and each region's offset from its neighbours'
        sure = np.flatnonzero((match > 0) & (conf > 0.2) & ~dt.clipped & ~dk.clipped[match])
        if len(sure) >= 3:
            src = dt.c[sure].astype(np.float32)
            dst = dk.c[match[sure]].astype(np.float32)
            a, inl = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                          ransacReprojThreshold=max(3.0, 0.02 * np.sqrt(dt.area.sum())),
                                          maxIters=2000, confidence=0.999)
            if a is not None and inl.sum() >= 3 and _plausible(a):
                m = a
                sure = sure[inl.ravel() > 0]
            pred_off, pos_tol = _local_offsets(dt, dk, match, sure, m)
    if flow_votes:
        # a match the flow agrees with (most of the region's pixels land in it, the areas alike) is
        # as sure as that vote: two independent cues decide it, even where the costs are close
        share = np.array([flow_votes.get((i, int(match[i])), 0.0) for i in range(nt + 1)])
        ratio = dt.area / np.maximum(dk.area[match], 1) / max(abs(np.linalg.det(m[:, :2])), 1e-6)
        agree = (match > 0) & (ratio > 1 / 3) & (ratio < 3)
        conf = np.where(agree, np.maximum(conf, share), conf)
        # a region nothing matched (reshaped, half hidden) follows a clear flow vote
        fi = np.array([k[0] for k in flow_votes], np.int64)
        fj = np.array([k[1] for k in flow_votes], np.int64)
        fs = np.array(list(flow_votes.values()))
        order = np.lexsort((fs, fi))
        top_j, top_s = np.zeros(nt + 1, np.int64), np.zeros(nt + 1)
        top_j[fi[order]], top_s[fi[order]] = fj[order], fs[order]
        ratio = dt.area / np.maximum(dk.area[top_j], 1) / max(abs(np.linalg.det(m[:, :2])), 1e-6)
        take = (match == 0) & (top_s >= 0.5)
        take[0] = False
        alike = (ratio > 1 / 3) & (ratio < 3)         # else maybe a new region drawn inside an old one: unsure
        match[take], cost_of[take], conf[take] = top_j[take], null_cost, np.where(alike, top_s, 0.0)[take]
    offset = pred_off.copy()
    has = match > 0
    offset[has] = dk.c[match[has]] - _apply(m, dt.c[has])
    flow_share = np.zeros(nt + 1)
    if flow_votes:
        flow_share = np.array([flow_votes.get((i, int(match[i])), 0.0) for i in range(nt + 1)])
    return {"match": match, "cost": np.where(np.isfinite(cost_of), cost_of, null_cost), "confidence": conf,
            "motion": m, "offset": offset, "flow_share": flow_share}


def identity_match(seg: Segmentation) -> dict[str, np.ndarray]:
    """:func:`match_regions`'s result for a frame against itself (a key frame): each region is its
    own match, sure, with no motion."""
    n = seg.n + 1
    match = np.arange(n)
    return {"match": match, "cost": np.zeros(n), "confidence": (match > 0).astype(np.float64),
            "motion": np.array([[1.0, 0, 0], [0, 1.0, 0]]), "offset": np.zeros((n, 2)), "flow_share": np.zeros(n)}


def fit_motion(seg_t: Segmentation, seg_k: Segmentation, match: np.ndarray,
               key_desc: Descriptors | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(2×3 affine t → key, (n_t+1)×2 per-region offsets) from a given match — for a match made
    step by step through in-between frames, to place the key's colours inside the regions."""
    dt, dk = describe(seg_t), key_desc if key_desc is not None else describe(seg_k)
    match = np.asarray(match, np.int64)
    m = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    sure = np.flatnonzero((match > 0) & ~dt.clipped & ~dk.clipped[match])
    if len(sure) >= 3:
        a, _ = cv2.estimateAffine2D(dt.c[sure].astype(np.float32), dk.c[match[sure]].astype(np.float32),
                                    method=cv2.RANSAC, ransacReprojThreshold=max(3.0, 0.02 * np.sqrt(dt.area.sum())),
                                    maxIters=2000, confidence=0.999)
        if a is not None and _plausible(a):
            m = a
    offset = np.zeros((dt.n + 1, 2))
    has = match > 0
    offset[has] = dk.c[match[has]] - _apply(m, dt.c[has])
    return m, offset

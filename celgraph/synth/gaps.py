"""Gaps cut into real (or any raster) line art, and how well a gap closer restores them.

Real drawings carry no gap truth, but a *closed* drawing does once we cut the gaps ourselves:
:func:`cut_gaps` erases short pieces of stroke (1-12 px, along strokes and at junctions, seeded,
away from the strokes that end freely) and keeps what it erased; :func:`score_closing` compares a
gap closer's result with the uncut drawing.

    cut = cut_gaps(ink, seed=0)                         # ink: H×W bool (or coverage ≥ 0.5)
    closed = my_gap_closer(cut["lines"])
    scores = score_closing(closed >= 0.5, cut)          # dict of the metrics below

Metrics (see :func:`score_closing`): recall of the erased ink within 1 px, spurious ink (% of the
drawing's line pixels), regions restored (the leaks the cuts opened that are closed again), regions
split (paper regions of the drawing cut in two by added ink: closures that should not exist), free
ends joined (stroke ends that are free in the drawing and got ink added), and the added ink's width
÷ the width of the stroke it replaces (median over cuts; 1 = the stroke's own width).
"""
from __future__ import annotations

import cv2
import numpy as np

from ..models.autoclose import find_endpoints, gap_ahead, skeletonize
from . import metrics

__all__ = ["cut_gaps", "score_closing", "stroke_width", "free_ends_joined", "joined_free_ends", "free_end_context",
           "regions_split"]


def _neighbours(sk: np.ndarray) -> np.ndarray:
    k = np.ones((3, 3), np.float32)
    k[1, 1] = 0
    return cv2.filter2D(sk.astype(np.uint8), cv2.CV_16S, k, borderType=cv2.BORDER_CONSTANT)


def stroke_width(piece: np.ndarray) -> float:
    """Mean width (px) of a piece of stroke: its area ÷ the length of its skeleton (a 1-px line
    is 1, a 3-px line 3; a blob is wider than it is long). 0 for an empty piece."""
    piece = np.asarray(piece, bool)
    n = int(piece.sum())
    if n == 0:
        return 0.0
    return n / max(int(skeletonize(piece).sum()), 1)


def cut_gaps(ink, seed=0, n_cuts: int | None = None, min_gap: float = 1.0, max_gap: float = 12.0,
             p_junction: float = 0.35, per_px: float = 600.0, clearance: float = 6.0,
             coverage: np.ndarray | None = None) -> dict:
    """Erase short pieces of the strokes of a closed drawing (bool H×W ink).

    Each cut is a disc of diameter L ~ U[min_gap, max_gap] px centred on a skeleton pixel: a plain
    stroke pixel, or (with probability ``p_junction``) a T/Y/X junction, where it opens several
    strokes at once, as real drawings' missed junctions do. Cuts keep ``clearance`` px between each
    other and stay ``max_gap`` + ``clearance`` px away from free stroke ends, so every erased pixel
    belongs to one cut and ends the drawing leaves open stay recognisable. ``n_cuts`` defaults to
    one per ``per_px`` skeleton pixels.

    Returns a dict: ``lines`` (H×W float32 coverage of the cut drawing), ``gt`` (the uncut ink,
    float32), ``gap_mask`` (bool, erased ink), ``cuts`` (list of dicts: ``center`` (x, y),
    ``radius``, ``kind`` 'stroke' | 'junction'), ``free_ends`` (list of (x, y, width)) and
    ``cut_id`` (int32 H×W: 1 + index of the cut that erased each pixel, 0 elsewhere).
    With ``coverage`` (the drawing's anti-aliased ink coverage, of which ``ink`` is the ≥ 0.5
    mask), ``lines`` and ``gt`` are coverage: the cut discs are erased from it whole, fringes too."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    ink = np.asarray(ink)
    ink = ink if ink.dtype == bool else ink >= 0.5
    H, W = ink.shape
    sk = skeletonize(ink)
    nb = _neighbours(sk)
    ends = find_endpoints(ink, skeleton=sk)
    free_ends = [(e.x, e.y, e.width) for e in ends]
    blocked = np.zeros((H, W), np.uint8)
    for x, y, _ in free_ends:
        cv2.circle(blocked, (x, y), int(np.ceil(max_gap + clearance)), 1, -1)
    pools = {"junction": np.argwhere(sk & (nb >= 3)), "stroke": np.argwhere(sk & (nb == 2))}
    if n_cuts is None:
        n_cuts = max(1, int(round(sk.sum() / per_px)))
    cut = ink.copy()
    cut_id = np.zeros((H, W), np.int32)
    cuts: list[dict] = []
    tries = 0
    while len(cuts) < n_cuts and tries < 50 * n_cuts:
        tries += 1
        kind = "junction" if rng.random() < p_junction and len(pools["junction"]) else "stroke"
        pool = pools[kind]
        if not len(pool):
            break
        y, x = (int(v) for v in pool[rng.integers(len(pool))])
        if blocked[y, x]:
            continue
        L = float(rng.uniform(min_gap, max_gap))
        r = L / 2.0
        R = int(np.ceil(r)) + 1
        y0, y1, x0, x1 = max(y - R, 0), min(y + R + 1, H), max(x - R, 0), min(x + R + 1, W)
        gy, gx = np.mgrid[y0:y1, x0:x1]
        disc = (gy - y) ** 2 + (gx - x) ** 2 <= r * r + 1e-6
        erase = disc & cut[y0:y1, x0:x1]
        if not erase.any():
            continue
        cut[y0:y1, x0:x1] &= ~disc
        cut_id[y0:y1, x0:x1][erase] = len(cuts) + 1
        cuts.append({"center": (x, y), "radius": r, "kind": kind})
        cv2.circle(blocked, (x, y), int(np.ceil(r + max_gap + clearance)), 1, -1)
    if coverage is not None:
        discs = np.zeros((H, W), np.uint8)
        for c in cuts:
            cv2.circle(discs, (c["center"][0] * 16, c["center"][1] * 16), int(round((c["radius"] + 0.5) * 16)), 1,
                       -1, cv2.LINE_8, 4)
        gt_cov = np.asarray(coverage, np.float32)
        cut_cov = np.where(discs > 0, np.float32(0), gt_cov)
        return {"lines": cut_cov, "gt": gt_cov, "gap_mask": ink & (cut_cov < 0.5), "cuts": cuts,
                "free_ends": free_ends, "cut_id": np.where(ink & (cut_cov < 0.5), cut_id, 0)}
    return {"lines": cut.astype(np.float32), "gt": ink.astype(np.float32), "gap_mask": ink & ~cut,
            "cuts": cuts, "free_ends": free_ends, "cut_id": cut_id}


def _paper_regions(ink: np.ndarray) -> np.ndarray:
    """4-connected paper regions of a drawing (what a bucket fill sees); 0 = ink."""
    _, lab = cv2.connectedComponents((~ink).astype(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    return lab


def regions_split(result_ink, drawing_ink, min_pixels: int = 12) -> int:
    """Paper regions of the drawing that the result's ink cuts into two or more fillable parts
    (each of at least ``min_pixels``): closures the drawing does not have."""
    result_ink, drawing_ink = np.asarray(result_ink, bool), np.asarray(drawing_ink, bool)
    g = _paper_regions(drawing_ink)
    r = _paper_regions(result_ink)
    m = (g > 0) & (r > 0)
    if not m.any():
        return 0
    key = g[m].astype(np.int64) * (int(r.max()) + 1) + r[m]
    uk, cnt = np.unique(key, return_counts=True)
    owners = uk[cnt >= min_pixels] // (int(r.max()) + 1)
    _, parts = np.unique(owners, return_counts=True)
    return int((parts > 1).sum())


def joined_free_ends(result_ink, cut_ink, free_ends, margin: float = 2.0) -> list[bool]:
    """Per free stroke end (x, y, width) of the drawing: did ink get added within ``margin`` px of
    its tip (a stroke the drawing leaves open, extended or joined to something)?"""
    added = np.asarray(result_ink, bool) & ~np.asarray(cut_ink, bool)
    if not added.any():
        return [False] * len(free_ends)
    d = cv2.distanceTransform((~added).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return [bool(d[y, x] <= w / 2.0 + margin) for x, y, w in free_ends]


def free_ends_joined(result_ink, cut_ink, free_ends, margin: float = 2.0) -> int:
    """How many free stroke ends got ink added at their tip (:func:`joined_free_ends`)."""
    return sum(joined_free_ends(result_ink, cut_ink, free_ends, margin))


FREE_END_KINDS = ("facing", "short", "open")


def free_end_context(ink, max_gap: float = 12.0, angle: float = 60.0) -> list[str]:
    """What lies ahead of each free stroke end of a drawing (the ends, in ``cut_gaps``' order):
    ``facing`` — another free end within ``max_gap`` px (clear distance between the strokes), each
    inside the other's cone of ``angle`` degrees (OpenToonz's pair rule at its default 60°);
    ``short`` — the end stops within ``max_gap`` px of another stroke; ``open`` — neither.
    A gap closer cannot tell the first two from a gap by their shape: they are what one looks like."""
    ink = np.asarray(ink)
    ink = ink if ink.dtype == bool else ink >= 0.5
    ends = find_endpoints(ink, skeleton=skeletonize(ink))
    cos_cone = float(np.cos(np.radians(angle / 2)))

    def faces(e, f) -> bool:
        v = np.array([f.y - e.y, f.x - e.x], np.float64)
        d = float(np.hypot(*v))
        if d == 0 or d - e.width / 2 - f.width / 2 > max_gap:
            return False
        return v @ (e.dy, e.dx) >= cos_cone * d and -v @ (f.dy, f.dx) >= cos_cone * d

    kinds = []
    for i, e in enumerate(ends):
        if any(faces(e, f) for j, f in enumerate(ends) if j != i):
            kinds.append("facing")
        elif gap_ahead(ink, e, max_gap + e.width / 2 + 1.5, angle) is not None:
            kinds.append("short")
        else:
            kinds.append("open")
    return kinds


def _width_ratios(result_ink, sample: dict) -> list[float]:
    """Per cut: the width of the ink added around it ÷ the width of the stroke it erased."""
    added = np.asarray(result_ink, bool) & ~(sample["lines"] >= 0.5)
    H, W = added.shape
    out = []
    for k, c in enumerate(sample["cuts"], start=1):
        x, y = c["center"]
        R = int(np.ceil(c["radius"])) + 4
        y0, y1, x0, x1 = max(y - R, 0), min(y + R + 1, H), max(x - R, 0), min(x + R + 1, W)
        erased = sample["cut_id"][y0:y1, x0:x1] == k
        near = added[y0:y1, x0:x1]
        if not erased.any() or not near.any():
            continue
        # the added ink that belongs to this cut: its pieces that touch the erased stroke
        n, lab = cv2.connectedComponents(near.astype(np.uint8), connectivity=8)
        touch = np.unique(lab[cv2.dilate(erased.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0])
        piece = np.isin(lab, touch[touch > 0])
        if piece.any():
            out.append(stroke_width(piece) / max(stroke_width(erased), 1e-6))
    return out


def score_closing(result_ink, sample: dict) -> dict:
    """Every gap metric of a gap closer's result (bool H×W ink) against a :func:`cut_gaps` sample.

    Returns ``recall`` (erased ink with result ink within 1 px), ``spurious_pct`` (result ink
    farther than 1 px from the drawing's ink, % of the drawing's line pixels), ``leaks_cut`` and
    ``leaks_left`` (paper regions of the drawing merged by the cuts, and still merged in the result;
    regions of ≥ 12 px), ``restored`` (1 − left ÷ cut), ``regions_split``, ``free_ends_joined`` (and
    ``joined_free_ends``, per end), ``width_ratios`` (list, one per cut with added ink) and
    ``width_ratio`` (their median)."""
    result_ink = np.asarray(result_ink, bool)
    gt = sample["gt"] >= 0.5
    cut_ink = sample["lines"] >= 0.5
    regions = _paper_regions(gt)
    leaks_cut = metrics.fill_leaks(cut_ink, regions, ignore=0)
    leaks_left = metrics.fill_leaks(result_ink, regions, ignore=0)
    ratios = _width_ratios(result_ink, sample)
    joined = joined_free_ends(result_ink, cut_ink, sample["free_ends"])
    spurious = int((result_ink & (metrics._dist_to(gt) > 1.0 + 1e-6)).sum())
    return {
        "recall": metrics.gap_recall(result_ink, sample["gap_mask"]),
        "spurious_pct": 100.0 * spurious / max(int(gt.sum()), 1),
        "leaks_cut": int(leaks_cut), "leaks_left": int(leaks_left),
        "restored": 1.0 - leaks_left / leaks_cut if leaks_cut else 1.0,
        "regions_split": regions_split(result_ink, gt),
        "free_ends_joined": sum(joined), "joined_free_ends": joined,
        "width_ratios": ratios,
        "width_ratio": float(np.median(ratios)) if ratios else float("nan"),
    }

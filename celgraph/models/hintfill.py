"""Hint flat-fill: colour the regions of line art from colour scribbles or dots (Colorize "hints").

The classical stage 1 of ``/shared/reference/lines_and_color.md`` §9.4, made robust to sloppy
hints the way LazyBrush's soft data term is (§5.7), but with region votes instead of a graph cut
(no max-flow package is available, and this runs in well under a second at 1920×1080):

1. **Regions** (:func:`segment`). Ink is ``lines ≥ threshold``; the paper splits into 4-connected
   components (what a bucket fill sees), so a region never crosses a closed line. Gaps up to
   ``close_gaps`` px wide are closed trapped-ball style (§5.6): the "cores" of the paper are the
   pixels farther than ``close_gaps / 2`` from ink, and each 4-connected core becomes a region;
   the rest of its component (the rim along the lines, narrow passages, the gaps themselves)
   goes to the nearest core *of the same component*. Components too narrow to hold a core are
   regions of their own. Ink pixels belong to the nearest paper region (so lines can take the
   colour of the area they border, and the fill runs under the lines).
2. **Votes** (:func:`hint_votes`). A hint is every pixel with hint alpha ≥ 0.5; hint pixels are
   grouped into strokes (8-connected, same colour). A stroke votes for each region it touches
   with its pixel count there — pixels on ink count 5 %, since a scribble that touches a line says
   nothing about the far side. The region holding most of a stroke is the stroke's own; the part
   of a stroke spilling into another region is ignored when it is under ``spill`` (default 25 %)
   of the stroke and counts a quarter otherwise (a deliberate stroke over two regions colours
   both). Each region takes the colour with the largest total vote; so a sloppy scribble that
   wanders into a neighbour does not recolour it, and a neighbour's own hint always wins over
   someone else's spill.
3. **Regions without a hint** (:func:`fill_from_hints`). A region split off by gap closing
   inherits from the hinted region of its own paper component it shares the longest border with
   (a bucket fill would have flowed there). A region whose whole component has no hint gets the
   **documented default**, ``unhinted="transparent"``: colour 0, alpha 0, and it is flagged in
   the ``unhinted`` mask, so a missing hint shows as a hole rather than as a wrong colour
   (other choices: ``"nearest"`` — the colour of the neighbouring region with the longest common
   border, across the line; ``"paper"`` — white). Specks smaller than ``min_region`` px (holes
   between nearly touching lines) always take their neighbour's colour.
4. **Lines** (:func:`composite`): ``"black"`` keeps the ink black over the fill, ``"trace"``
   draws it in the darkened colour of the region under it (colour trace, 45 % value), ``"none"``
   returns the fill alone (the fill extends under the lines, for compositing a line layer on top).

Pure numpy + OpenCV. :func:`sample_hints` makes synthetic hints (one dot, or a sloppy scribble,
per region) from a coloured frame, for tests, examples and the benchmark.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Segmentation", "segment", "hint_votes", "fill_from_hints", "composite", "sample_hints",
           "region_adjacency", "region_palettes", "ReferenceKey", "reference_key", "reference_fill", "compose_flows",
           "UNHINTED", "LINE_MODES"]

UNHINTED = ("transparent", "nearest", "paper")
LINE_MODES = ("black", "trace", "none")


@dataclass
class Segmentation:
    labels: np.ndarray          # H×W int32 region id 1..n for every pixel (ink pixels: nearest paper region)
    component: np.ndarray       # (n+1,) int32 paper component of each region (index 0 unused)
    area: np.ndarray            # (n+1,) int64 paper pixels of each region
    ink: np.ndarray             # H×W bool
    n: int


def _nearest_label(zero_mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For every pixel, ``values`` at the nearest pixel of ``zero_mask`` (Euclidean, 5×5 mask)."""
    src = np.where(zero_mask, 0, 1).astype(np.uint8)
    _, lab = cv2.distanceTransformWithLabels(src, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    lut = np.concatenate([[0], values[zero_mask]]).astype(np.int32)
    return lut[lab]


def segment(lines: np.ndarray, threshold: float = 0.5, close_gaps: float = 4.0) -> Segmentation:
    """Regions of line art (H×W ink coverage 0..1); see the module doc, step 1."""
    lines = np.asarray(lines, np.float32)
    ink = lines >= threshold
    paper = ~ink
    H, W = ink.shape
    if not paper.any():
        return Segmentation(np.ones((H, W), np.int32), np.zeros(2, np.int32), np.zeros(2, np.int64), ink, 1)
    n_comp, comp = cv2.connectedComponents(paper.astype(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    r = close_gaps / 2.0
    if r > 0:
        dist = cv2.distanceTransform(paper.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        core = dist > r
        n_core, core_lab = cv2.connectedComponents(core.astype(np.uint8), connectivity=4, ltype=cv2.CV_32S)
        core_comp = np.zeros(n_core, np.int32)                   # component of each core
        core_comp[core_lab[core]] = comp[core]
        cores_per_comp = np.bincount(core_comp[1:], minlength=n_comp)
        # region ids: cores 1..n_core-1, then one region per component without a core
        comp_region = np.zeros(n_comp, np.int32)                 # the region of single-core/coreless components
        core_ids = np.arange(1, n_core)
        single = core_ids[cores_per_comp[core_comp[1:]] == 1]
        comp_region[core_comp[single]] = single
        coreless = np.flatnonzero(cores_per_comp == 0)[1:]       # skip component 0 (ink)
        comp_region[coreless] = n_core + np.arange(len(coreless))
        labels = comp_region[comp]
        multi = paper & (cores_per_comp[comp] > 1)
        if multi.any():
            todo = multi & ~core
            labels[multi & core] = core_lab[multi & core]
            if todo.any():
                near = _nearest_label(core & multi, core_lab)
                ok = todo & (core_comp[near] == comp)
                labels[ok] = near[ok]
                bad = todo & ~ok
                if bad.any():                                    # nearest core lies in another component (rare):
                    sizes = np.bincount(core_lab[core], minlength=n_core)     # take the component's largest core
                    order = np.lexsort((sizes[1:], core_comp[1:])) + 1
                    largest = np.zeros(n_comp, np.int32)
                    largest[core_comp[order]] = order
                    labels[bad] = largest[comp[bad]]
        n = int(n_core - 1 + len(coreless))
        region_comp = np.zeros(n + 1, np.int32)
        region_comp[1:n_core] = core_comp[1:]
        region_comp[n_core:] = coreless
    else:
        labels = comp.copy()
        n = n_comp - 1
        region_comp = np.arange(n + 1, dtype=np.int32)
    labels[ink] = 0
    area = np.bincount(labels[paper], minlength=n + 1).astype(np.int64)
    if ink.any():
        labels = _nearest_label(paper, labels)
    return Segmentation(labels.astype(np.int32), region_comp, area, ink, n)


def region_adjacency(labels: np.ndarray, n: int) -> dict[tuple[int, int], int]:
    """{(a, b): number of 4-neighbour pixel pairs with labels a < b}."""
    pairs = []
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        d = a != b
        lo, hi = np.minimum(a[d], b[d]).astype(np.int64), np.maximum(a[d], b[d]).astype(np.int64)
        pairs.append(lo * (n + 1) + hi)
    if not pairs or not sum(len(p) for p in pairs):
        return {}
    keys, counts = np.unique(np.concatenate(pairs), return_counts=True)
    return {(int(k // (n + 1)), int(k % (n + 1))): int(c) for k, c in zip(keys, counts)}


def _hint_pixels(hints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ys, xs, rgb N×3 un-premultiplied) of the hint pixels of a hint image: RGBA (alpha ≥ 0.5 is
    a hint, colour premultiplied), or RGB/grey where any channel > 0 is a hint."""
    h = np.asarray(hints, np.float32)
    if h.ndim == 2:
        h = h[:, :, None]
    if h.shape[2] in (2, 4):
        ys, xs = np.nonzero(h[:, :, -1] >= 0.5)
        px = h[ys, xs]
        rgb = px[:, :-1] / px[:, -1:]
    else:
        ys, xs = np.nonzero(h.max(axis=2) > 0)
        rgb = h[ys, xs]
    if rgb.shape[1] == 1:
        rgb = np.repeat(rgb, 3, axis=1)
    return ys, xs, np.clip(rgb[:, :3], 0, 1)


def hint_votes(seg: Segmentation, hints: np.ndarray, spill: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Per region: (colour (n+1)×3 float32, hinted (n+1,) bool); see the module doc, step 2."""
    ys, xs, rgb = _hint_pixels(hints)
    colors = np.zeros((seg.n + 1, 3), np.float32)
    hinted = np.zeros(seg.n + 1, bool)
    if not len(ys):
        return colors, hinted
    mask = np.zeros(seg.labels.shape, np.uint8)
    mask[ys, xs] = 1
    q = np.round(rgb * 63).astype(np.int64)
    ckey = (q[:, 0] * 64 + q[:, 1]) * 64 + q[:, 2]
    _, cc = cv2.connectedComponents(mask, connectivity=8, ltype=cv2.CV_32S)
    skey = cc[ys, xs].astype(np.int64) * (64 ** 3) + ckey
    strokes, sidx = np.unique(skey, return_inverse=True)
    reg = seg.labels[ys, xs].astype(np.int64)
    w = np.where(seg.ink[ys, xs], 0.05, 1.0)
    ns = len(strokes)
    # per (stroke, region) weight
    pk = sidx.astype(np.int64) * (seg.n + 1) + reg
    upk, inv = np.unique(pk, return_inverse=True)
    pw = np.bincount(inv, weights=w)
    ps, pr = upk // (seg.n + 1), upk % (seg.n + 1)
    stroke_total = np.bincount(ps, weights=pw, minlength=ns)
    main = np.zeros(ns, np.int64)                                # each stroke's own region
    order = np.lexsort((pw, ps))                                 # by stroke, then weight ascending
    main[ps[order]] = pr[order]                                  # the last write per stroke is its heaviest region
    # stroke colours: the mean hint colour of the stroke
    scol = np.stack([np.bincount(sidx, weights=rgb[:, c], minlength=ns) for c in range(3)], 1)
    scol /= np.bincount(sidx, minlength=ns)[:, None]
    share = pw / np.maximum(stroke_total[ps], 1e-9)
    own = pr == main[ps]
    vote = np.where(own, pw, np.where(share >= spill, 0.25 * pw, 0.0))
    keep = vote > 0
    ps, pr, vote = ps[keep], pr[keep], vote[keep]
    # per region: the colour (= quantised stroke colour) with the largest total vote
    sq = np.round(scol * 63).astype(np.int64)
    sc_key = (sq[:, 0] * 64 + sq[:, 1]) * 64 + sq[:, 2]
    rk = pr * (64 ** 3) + sc_key[ps]
    urk, inv = np.unique(rk, return_inverse=True)
    tot = np.bincount(inv, weights=vote)
    # a representative stroke per (region, colour) for the exact colour
    rep = np.zeros(len(urk), np.int64)
    rep[inv] = ps
    regs = urk // (64 ** 3)
    order = np.lexsort((tot, regs))
    best_rep = np.zeros(seg.n + 1, np.int64)
    best_rep[regs[order]] = rep[order]
    hinted[regs] = True
    colors[hinted] = scol[best_rep[hinted]]
    hinted[0] = False
    return colors, hinted


def fill_from_hints(seg: Segmentation, hints: np.ndarray, unhinted: str = "transparent", min_region: int = 8,
                    spill: float = 0.25) -> dict[str, np.ndarray]:
    """Flat colours from hints. Returns {"fill": H×W×3 (colour under every pixel, ink included),
    "alpha": H×W (0 where a region stayed unhinted under "transparent"), "unhinted": H×W bool
    (regions that got no hint of their own and no sibling's), "region_color": (n+1)×3,
    "region_alpha": (n+1,)}."""
    if unhinted not in UNHINTED:
        raise ValueError(f"unhinted must be one of {UNHINTED}, got {unhinted!r}")
    colors, hinted = hint_votes(seg, hints, spill)
    n = seg.n
    have = hinted.copy()
    adj = None
    if not have[1:].all():
        adj = region_adjacency(seg.labels, n)
        nbrs: dict[int, list[tuple[int, int]]] = {}
        for (a, b), c in adj.items():
            nbrs.setdefault(a, []).append((c, b))
            nbrs.setdefault(b, []).append((c, a))
        comp = seg.component

        def propagate(allowed) -> None:
            changed = True
            while changed:
                changed = False
                for r in np.flatnonzero(~have[1:]) + 1:
                    cands = [(c, b) for c, b in nbrs.get(int(r), ()) if have[b] and allowed(int(r), b)]
                    if cands:
                        _, b = max(cands)
                        colors[r] = colors[b]
                        have[r] = True
                        changed = True

        propagate(lambda r, b: comp[r] == comp[b])              # siblings split off by gap closing
        flagged = ~have.copy()
        propagate(lambda r, b: seg.area[r] < min_region)         # specks take their neighbour's colour
        flagged &= ~have
        if unhinted == "nearest":
            propagate(lambda r, b: True)
        elif unhinted == "paper":
            colors[~have] = 1.0
            have[:] = True
    else:
        flagged = np.zeros(n + 1, bool)
    flagged[0] = False
    region_alpha = have.astype(np.float32)
    region_alpha[0] = 0.0
    colors[~have] = 0.0
    lab = seg.labels
    return {"fill": colors[lab], "alpha": region_alpha[lab], "unhinted": flagged[lab],
            "region_color": colors, "region_alpha": region_alpha}


def composite(fill: np.ndarray, alpha: np.ndarray, lines: np.ndarray, mode: str = "black",
              line_rgb=(0.0, 0.0, 0.0)) -> np.ndarray:
    """RGBA premultiplied H×W×4: the fill with the line art over it (see the module doc, step 4)."""
    if mode not in LINE_MODES:
        raise ValueError(f"line mode must be one of {LINE_MODES}, got {mode!r}")
    fill = np.asarray(fill, np.float32)
    a = np.asarray(alpha, np.float32)
    out = np.empty(fill.shape[:2] + (4,), np.float32)
    if mode == "none":
        np.multiply(fill, a[:, :, None], out=out[:, :, :3])
        out[:, :, 3] = a
        return out
    ink = np.clip(np.asarray(lines, np.float32), 0, 1)
    paper = (1.0 - ink) * a                                         # (1 − ink)·alpha
    if mode == "trace":                                             # ink in the darkened fill colour
        np.multiply(fill, (paper + np.float32(0.45) * ink)[:, :, None], out=out[:, :, :3])
    else:
        np.multiply(fill, paper[:, :, None], out=out[:, :, :3])
        if any(line_rgb):
            out[:, :, :3] += ink[:, :, None] * np.asarray(line_rgb, np.float32)
    np.add(ink, paper, out=out[:, :, 3])
    return out


def sample_hints(color: np.ndarray, lines: np.ndarray, seed: int = 0, threshold: float = 0.5, radius: float = 2.0,
                 scribble: float = 0.0, spill: float = 0.0, drop: float = 0.0, min_area: int = 1) -> np.ndarray:
    """Synthetic colourist hints (H×W×4 RGBA premultiplied) from a coloured frame and its line art.

    One hint per paper region (4-connected components of ``lines < threshold``): a dot of
    ``radius`` px (shrunk to fit) at the deepest point of the region's dominant colour, in that
    colour — so a region with a cel shadow is hinted with its base colour. ``scribble`` > 0 draws
    instead a stroke of that length (px) through the point in a random direction, not clipped: it
    may cross lines. ``spill`` > 0 moves the stroke's end past the region's border (when the
    border is within ``scribble`` px of it) by 1 to ``spill`` px into whatever lies beyond: a
    sloppy hint. ``drop``: share of regions left without a hint. Regions under ``min_area`` px get
    no hint."""
    rng = np.random.default_rng(seed)
    color = np.clip(np.asarray(color, np.float32)[:, :, :3], 0, 1)
    paper = np.asarray(lines, np.float32) < threshold
    n, lab = cv2.connectedComponents(paper.astype(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    q = np.round(color * 31).astype(np.int64)
    ck = (q[..., 0] * 32 + q[..., 1]) * 32 + q[..., 2]
    key = lab.astype(np.int64) * 32768 + ck
    uk, cnt = np.unique(key[paper], return_counts=True)
    regs = uk // 32768
    order = np.lexsort((cnt, regs))
    mode = np.full(n, -1, np.int64)
    mode[regs[order]] = (uk % 32768)[order]
    dominant = paper & (ck == mode[lab])
    dist = cv2.distanceTransform(dominant.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    ys, xs = np.nonzero(dominant)
    rs = lab[ys, xs]
    order = np.lexsort((dist[ys, xs], rs))
    best = np.full(n, -1, np.int64)
    best[rs[order]] = order                                  # deepest dominant pixel of each region
    area = np.bincount(lab[paper], minlength=n)
    # mean colour of each region's dominant pixels
    sums = np.stack([np.bincount(rs, weights=color[ys, xs, c], minlength=n) for c in range(3)], 1)
    dom_col = sums / np.maximum(np.bincount(rs, minlength=n), 1)[:, None]
    out = np.zeros(color.shape[:2] + (4,), np.float32)
    for r in range(1, n):
        if best[r] < 0 or area[r] < min_area or (drop and rng.random() < drop):
            continue
        y, x = int(ys[best[r]]), int(xs[best[r]])
        col = tuple(float(v) for v in dom_col[r]) + (1.0,)
        if scribble > 0:
            a = rng.uniform(0, 2 * np.pi)
            d = np.array([np.cos(a), np.sin(a)])
            half = scribble / 2
            p0 = np.array([x, y]) - d * half
            p1 = np.array([x, y]) + d * half
            if spill > 0:                                    # push one end past the region's border when near
                t = 0.0
                while t <= scribble and _inside(lab, p1 + d * t, r):
                    t += 1.0
                if t <= scribble:
                    p1 = p1 + d * (t + rng.uniform(1, spill))
            cv2.line(out, (int(round(p0[0])), int(round(p0[1]))), (int(round(p1[0])), int(round(p1[1]))), col,
                     thickness=max(1, int(round(radius))), lineType=cv2.LINE_8)
        else:
            rad = int(max(0, min(radius, dist[y, x] - 1)))
            cv2.circle(out, (x, y), rad, col, -1, lineType=cv2.LINE_8)
    return out


def _inside(lab: np.ndarray, p: np.ndarray, r: int) -> bool:
    x, y = int(round(p[0])), int(round(p[1]))
    if not (0 <= y < lab.shape[0] and 0 <= x < lab.shape[1]):
        return False
    return bool(lab[y, x] == r)


# ---------------------------------------------------------------- reference (colour key) transfer

def _quant_key(rgb: np.ndarray) -> np.ndarray:
    q = np.rint(np.clip(np.asarray(rgb, np.float32), 0, 1) * np.float32(31)).astype(np.int32)
    return ((q[..., 0] * 32 + q[..., 1]) * 32 + q[..., 2]).astype(np.int64)


def region_palettes(seg: Segmentation, color: np.ndarray, min_share: float = 0.005, min_pixels: int = 6,
                    max_colors: int = 8, margin: float = 1.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per region of a coloured frame: its palette (up to ``max_colors`` colours, most frequent
    first; a colour needs ``min_share`` of the region and ``min_pixels`` px, colours quantised to 5
    bits per channel) and the share of the region's pixels the palette explains (near 1 for flat
    cel colours, low for painted areas). Pixels within ``margin`` px of ink are left out
    (anti-aliasing), except in regions too thin to have any other. Returns (palettes
    (n+1)×max_colors×3 float32, the unused slots 0; palette sizes (n+1,); explained (n+1,))."""
    inner = cv2.distanceTransform((~seg.ink).astype(np.uint8), cv2.DIST_L2, 3) > margin
    thin = np.bincount(seg.labels[inner], minlength=seg.n + 1) == 0       # no pixel that far from ink:
    inner |= thin[seg.labels] & ~seg.ink                                   # use all its paper pixels
    lab = np.where(inner, seg.labels, 0)
    ys, xs = np.nonzero(lab)
    rs = lab[ys, xs].astype(np.int64)
    px = color[ys, xs]
    q = _quant_key(px)
    present = np.flatnonzero(np.bincount(q, minlength=32768))     # the colours in use, numbered compactly
    cid = np.zeros(32768, np.int64)
    cid[present] = np.arange(len(present))
    nc = len(present)
    keys = rs * nc + cid[q]
    if (seg.n + 1) * nc <= 2 ** 25:                                # (region, colour) counts by bincount (fast)
        cnt = np.bincount(keys, minlength=(seg.n + 1) * nc)
        uk = np.flatnonzero(cnt)
        cnt = cnt[uk]
        sums = np.stack([np.bincount(keys, weights=px[:, c], minlength=(seg.n + 1) * nc)[uk] for c in range(3)], 1)
    else:                                                          # many colours (painted frames): sort
        uk, inv, cnt = np.unique(keys, return_inverse=True, return_counts=True)
        sums = np.stack([np.bincount(inv, weights=px[:, c]) for c in range(3)], 1)
    means = sums / cnt[:, None]
    regs = uk // nc
    total = np.bincount(rs, minlength=seg.n + 1)
    palettes = np.zeros((seg.n + 1, max_colors, 3), np.float32)
    size = np.zeros(seg.n + 1, np.int64)
    explained = np.zeros(seg.n + 1, np.float32)
    order = np.lexsort((-cnt, regs))
    bounds = np.searchsorted(regs[order], np.arange(seg.n + 2))
    for r in np.unique(regs):
        idx = order[bounds[r]:bounds[r + 1]][:max_colors]
        keep = cnt[idx] >= max(min_share * total[r], min_pixels)
        keep[0] = True
        idx = idx[keep]
        palettes[r, :len(idx)] = means[idx]
        size[r] = len(idx)
        explained[r] = cnt[idx].sum() / max(total[r], 1)
    return palettes, size, explained


@dataclass
class ReferenceKey:
    """A coloured key frame made ready for :func:`reference_fill` (:func:`reference_key`): the work
    that depends on the key alone, done once however many frames are coloured from it."""
    rgb: np.ndarray             # H×W×3 float32 key colours, unpremultiplied
    palettes: np.ndarray        # (n_k+1)×P×3 float32 each key region's palette (region_palettes)
    palette_size: np.ndarray    # (n_k+1,) colours in each palette
    explained: np.ndarray       # (n_k+1,) share of the region the palette explains
    alpha: np.ndarray           # (n_k+1,) mean key alpha of each key region


def reference_key(seg_k: Segmentation, ref_color: np.ndarray, margin: float = 1.5) -> ReferenceKey:
    """The key frame's colours (H×W grey, RGB, or RGBA premultiplied) split into what
    :func:`reference_fill` needs of them."""
    ref = np.asarray(ref_color, np.float32)
    if ref.ndim == 2:
        ref = ref[:, :, None]
    if ref.shape[2] in (2, 4):
        a_ref = ref[:, :, -1]
        rgb = np.clip(ref[:, :, :-1] / np.maximum(a_ref, 1e-6)[:, :, None], 0, 1)
    else:
        a_ref = np.ones(ref.shape[:2], np.float32)
        rgb = ref[:, :, :3]
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    palettes, size, explained = region_palettes(seg_k, rgb, margin=margin)
    # key alpha per key region (transparent regions of an RGBA key stay transparent)
    lab = seg_k.labels.ravel()
    alpha = np.bincount(lab, weights=a_ref.ravel(), minlength=seg_k.n + 1) / \
        np.maximum(np.bincount(lab, minlength=seg_k.n + 1), 1)
    return ReferenceKey(rgb, palettes, size, explained, alpha)


def reference_fill(seg_t: Segmentation, seg_k: Segmentation, key: ReferenceKey | np.ndarray, flow: np.ndarray,
                   shading: str = "palette", flat_share: float = 0.8, margin: float = 1.5,
                   match: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Colour the regions of frame t from a coloured key frame k (:func:`reference_fill` of Colorize).

    ``key``: the key's colours (an image, or :func:`reference_key` of it, made once per key).
    ``flow``: H×W×2 from t to k (pixel p of t sits at p + flow(p) in k). Every pixel of a t region
    (away from ink) votes for the key region it lands in; the winner is the region's match and its
    share of the votes the match ``confidence``. Colours: ``"flat"`` gives each region its match's
    dominant colour; ``"palette"`` (default) warps the key colours through the flow and snaps each
    pixel to its match's palette, so cel shadows and highlights (no ink at their borders) follow
    the motion while every colour stays an exact key colour. Key regions whose palette explains
    under ``flat_share`` of their pixels (painted backgrounds, gradients) are warped as they are.
    ``match`` (optional, (n_t+1,) key region per t region, 0 = none) skips the votes: the regions
    are already matched (:mod:`celgraph.models.regions`) and the flow only places the colours.
    Returns {"fill": H×W×3, "alpha": H×W, "confidence": (n_t+1,), "match": (n_t+1,)}."""
    if shading not in ("palette", "flat"):
        raise ValueError(f"shading must be 'palette' or 'flat', got {shading!r}")
    if not isinstance(key, ReferenceKey):
        key = reference_key(seg_k, key, margin)
    H, W = seg_t.labels.shape
    mx = flow[:, :, 0] + np.arange(W, dtype=np.float32)[None, :]
    my = flow[:, :, 1] + np.arange(H, dtype=np.float32)[:, None]
    nt, nk = seg_t.n, seg_k.n
    t_lab = seg_t.labels
    if match is None:
        # votes from pixels away from the ink of both frames
        inner_t = cv2.distanceTransform((~seg_t.ink).astype(np.uint8), cv2.DIST_L2, 3) > margin
        inside = (mx >= -0.5) & (mx <= W - 0.5) & (my >= -0.5) & (my <= H - 0.5)
        k_lab = cv2.remap(seg_k.labels.astype(np.float32), mx, my, cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_REPLICATE).astype(np.int64)

        def tally(mask):
            keys = t_lab[mask].astype(np.int64) * (nk + 1) + k_lab[mask]
            uk, cnt = np.unique(keys, return_counts=True)
            return uk // (nk + 1), uk % (nk + 1), cnt

        rt, rk, cnt = tally(inner_t & inside)
        missing = np.setdiff1d(np.arange(1, nt + 1), rt)
        if len(missing):                               # regions with no inner pixel: all their pixels vote
            m2 = np.isin(t_lab, missing) & inside
            a, b, c = tally(m2)
            rt, rk, cnt = np.concatenate([rt, a]), np.concatenate([rk, b]), np.concatenate([cnt, c])
        total = np.bincount(rt, weights=cnt, minlength=nt + 1)
        order = np.lexsort((cnt, rt))
        match = np.zeros(nt + 1, np.int64)
        best = np.zeros(nt + 1, np.float64)
        match[rt[order]] = rk[order]
        best[rt[order]] = cnt[order]
        confidence = np.where(total > 0, best / np.maximum(total, 1), 0.0)
    else:
        match = np.asarray(match, np.int64)
        total = (match > 0).astype(np.float64)
        confidence = total.copy()
    confidence[0] = 0.0
    region_alpha = (key.alpha[match] >= 0.5).astype(np.float32)
    region_alpha[total == 0] = 0.0                     # nothing of the region is in the key frame
    fill = cv2.remap(key.rgb, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # a t region is flat when its match's palette explains the key region: its pixels take a colour
    # of that palette (the first = dominant under "flat" or for a one-colour palette; else the nearest
    # to the warped key colour, so shadows and highlights move with the drawing)
    size = np.where((match > 0) & (key.explained[match] >= flat_share), key.palette_size[match], 0)
    size[0] = 0
    pal = key.palettes[match]                                          # (n_t+1)×P×3
    one = (size == 1) | ((size > 1) & (shading == "flat"))
    np.copyto(fill, np.take(pal[:, 0], t_lab, axis=0), where=one[t_lab][:, :, None])     # by label lookup
    multi = np.flatnonzero((size > 1)[t_lab].ravel()) if shading == "palette" else np.zeros(0, np.int64)
    if len(multi):
        labs = t_lab.ravel()[multi]
        fflat = fill.reshape(-1, 3)
        px = fflat[multi]
        best_d = np.full(len(multi), np.inf, np.float32)
        best_c = np.zeros((len(multi), 3), np.float32)
        for s in range(pal.shape[1]):
            used = s < size[labs]
            c = pal[labs, s]
            d = ((px - c) ** 2).sum(1)
            better = used & (d < best_d)
            best_d[better], best_c[better] = d[better], c[better]
        fflat[multi] = best_c
    return {"fill": fill, "alpha": region_alpha[t_lab], "confidence": confidence, "match": match,
            "region_alpha": region_alpha}


def compose_flows(f_ab: np.ndarray, f_bc: np.ndarray) -> np.ndarray:
    """Flow a → c from flows a → b and b → c (H×W×2 each): f_ab(p) + f_bc(p + f_ab(p)), bilinear."""
    H, W = f_ab.shape[:2]
    gx, gy = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    mx, my = gx + f_ab[:, :, 0], gy + f_ab[:, :, 1]
    warped = [cv2.remap(np.ascontiguousarray(f_bc[:, :, c]), mx, my, cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE) for c in range(2)]
    return (f_ab + np.dstack(warped)).astype(np.float32)

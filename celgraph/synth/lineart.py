"""Line-art-only samples (up to 1920x1080) and GapFill degradations with exact targets."""
from __future__ import annotations

import math

import cv2
import numpy as np
from scipy.spatial import cKDTree

from . import _color as C
from ._geom import catmull_rom, mat_rotate, mat_scale, mat_translate

from .raster import cover_polylines_fast, cover_strokes
from .render import composite_ink, render_design
from .shapes import (SPACING, Inside, Part, Stroke, blob, crescent_shadow, detail_stroke, ellipse,
                     leaf, make_design, outline_stroke, rounded_poly, star, taper_profile, transform_design)


def as_rng(rng_or_seed):
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    return np.random.default_rng(rng_or_seed)


# ---------------------------------------------------------------- samples

def _simple_shape(rng, c, R, r0, light, ink):
    kind = rng.choice(["ellipse", "star", "rounded", "blob", "leaf"])
    rot = rng.uniform(0, np.pi)
    if kind == "ellipse":
        poly = ellipse(c, R, R * rng.uniform(0.4, 1.0), rot)
    elif kind == "star":
        poly = star(rng, c, R, n=int(rng.integers(4, 8)), inner=rng.uniform(0.4, 0.7), rot=rot)
    elif kind == "rounded":
        poly = rounded_poly(rng, c, R, n=int(rng.integers(3, 7)), rot=rot, round_=rng.uniform(0.05, 0.3))
    elif kind == "leaf":
        poly = leaf(rng, c, R, rot=rot)
    else:
        poly = blob(rng, c, R, irregular=0.35)
    col = C.sample_family(rng, "any")
    p = Part(name=str(kind), poly=poly, color=col, ink=ink)
    p.strokes.append(outline_stroke(rng, poly, r0 * rng.uniform(0.8, 1.2)))
    if rng.random() < 0.6:
        p.shades.append(crescent_shadow(poly, light, R * rng.uniform(0.1, 0.3), C.shadow_of(col, rng)))
    if rng.random() < 0.5:
        ins = Inside(poly)
        for _ in range(int(rng.integers(1, 4))):
            st = detail_stroke(rng, poly, ins, r0 * rng.uniform(0.5, 0.8), R * rng.uniform(0.2, 0.6),
                               from_outline=rng.random() < 0.5, bend=0.4)
            if st is not None:
                p.strokes.append(st)
    return p


def _free_strokes(rng, W, H, unit, r0, ink):
    """Open strokes that must stay open: speed lines, squiggles, hatching."""
    p = Part(name="free_strokes", poly=None, color=np.zeros(3), ink=ink)
    for _ in range(int(rng.integers(0, 8))):
        kind = rng.choice(["speed", "squiggle", "hatch"])
        c = np.array([rng.uniform(0, W), rng.uniform(0, H)])
        L = rng.uniform(15, 70) * unit
        a = rng.uniform(0, 2 * np.pi)
        d = np.array([math.cos(a), math.sin(a)])
        n = np.array([-d[1], d[0]])
        r = r0 * rng.uniform(0.4, 0.9)
        if kind == "speed":
            ctrl = np.array([c, c + d * L * 0.5 + n * rng.normal(0, 0.05 * L), c + d * L])
            groups = [ctrl + n * k * rng.uniform(4, 8) * unit for k in range(int(rng.integers(1, 4)))]
        elif kind == "squiggle":
            k = int(rng.integers(4, 8))
            groups = [c + np.cumsum(rng.normal(0, 0.3 * L / k ** 0.5, (k, 2)), 0)]
        else:
            groups = [np.array([c + n * j * 4 * unit, c + n * j * 4 * unit + d * L * 0.3])
                      for j in range(int(rng.integers(3, 7)))]
        for g in groups:
            pts = catmull_rom(g, closed=False, spacing=SPACING)
            if len(pts) < 4:
                continue
            Ls = len(pts) * SPACING
            rad = taper_profile(len(pts), r, Ls * rng.uniform(0.1, 0.4), Ls * rng.uniform(0.2, 0.5), rng)
            p.strokes.append(Stroke(pts=pts, radii=rad, closed=False, ends=("free", "free"), kind="free"))
    return p if p.strokes else None


def make_lineart(seed, width=512, height=512, n_items=None, ss=4, with_color=True):
    """A line-art-only sample: several sprites/shapes with occlusion (T-junctions), inner detail
    strokes and free open strokes, rendered with exact ink coverage.

    Returns a dict:
      lines (H,W) float32 ink coverage 0..1 (the clean ground truth),
      color (H,W,3) flat colour render with ink, fill (H,W,3) the same without ink,
      regions (H,W) int32: connected components (4-connectivity) of non-ink pixels (lines < 0.5),
               0 on ink pixels -- what a flood fill of the clean line art gives,
      flat_regions (H,W) int32 flat-colour region ids (incl. shadow/highlight; 0 = paper),
      parts (H,W) int32 line-enclosed part ids by construction (0 = paper),
      strokes: list of dicts (pts, radii, closed, ends, part) in page coords,
      meta: JSON-able dict, and '_scene' (internal; used by degrade_lines for vector degradations).
    """
    rng = as_rng(seed)
    W, H = int(width), int(height)
    unit = min(W, H) / 256.0
    r0 = max(0.8, rng.uniform(0.6, 1.3) * unit ** 0.5)
    la = rng.uniform(0, 2 * np.pi)
    light = np.array([math.cos(la), math.sin(la)])
    ink = C.ink_color(rng, kind="dark")
    n = int(rng.integers(3, 9)) if n_items is None else int(n_items)
    parts = []
    for i in range(n):
        R = rng.uniform(0.1, 0.4) * min(W, H)
        c = np.array([rng.uniform(0.05, 0.95) * W, rng.uniform(0.05, 0.95) * H])
        if rng.random() < 0.45:
            d = make_design(rng, R, r0 * rng.uniform(0.85, 1.15), light=light)
            M = mat_translate(*c) @ mat_rotate(rng.uniform(-0.4, 0.4)) @ mat_scale(1.0)
            parts += transform_design(d, M).parts
        else:
            parts.append(_simple_shape(rng, c, R * 0.6, r0, light, ink))
    fs = _free_strokes(rng, W, H, unit, r0, ink)
    if fs is not None:
        parts.insert(int(rng.integers(0, len(parts) + 1)), fs)
    out = render_design(parts, W, H, ss=ss, keep_layers=True, want_color=with_color)
    lines = np.clip(out["ink"], 0, 1)
    paper = C.hsv(rng.uniform(30, 60), rng.uniform(0, 0.08), rng.uniform(0.93, 1.0)) if rng.random() < 0.7 \
        else C.sample_family(rng, "any")
    res = dict(lines=lines)
    if with_color:
        fill = out["Fp"] + (1.0 - out["a"])[..., None] * paper.astype(np.float32)
        color = out["ink_rgb"] + (1.0 - out["ink"])[..., None] * fill
        res["color"] = np.clip(color, 0, 1).astype(np.float32)
        res["fill"] = np.clip(fill, 0, 1).astype(np.float32)
    _, reg = cv2.connectedComponents((lines < 0.5).astype(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    res["regions"] = reg.astype(np.int32)
    res["flat_regions"] = out["ids"]
    res["parts"] = out["parts"]
    res["strokes"] = [dict(pts=s.pts, radii=s.radii, closed=s.closed, ends=s.ends, part=pi)
                      for pi, p in enumerate(parts) for s in p.strokes]
    res["meta"] = dict(generator="celgraph.synth.make_lineart", version=1, width=W, height=H,
                       n_parts=len(parts), line_radius=float(r0), paper=[float(x) for x in paper],
                       regions=out["regions"])
    res["_scene"] = dict(parts=parts, layers=out["layers"], partmap=out["parts"], W=W, H=H)
    return res


# ---------------------------------------------------------------- degradations

def _runs(mask, closed):
    """Runs of True as (start, length) over a 1-D mask (circular if closed)."""
    n = len(mask)
    if mask.all():
        return [(0, n)] if not closed else [(0, n, True)]
    if not mask.any():
        return []
    if closed:
        first_false = int(np.argmin(mask))
        rolled = np.roll(mask, -first_false)
        runs = _runs(rolled, False)
        return [((s + first_false) % n, L, False) for s, L in runs]
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts = np.nonzero(d == 1)[0]
    ends = np.nonzero(d == -1)[0]
    return [(int(s), int(e - s)) for s, e in zip(starts, ends)]


def _visible(scene, pi, pts):
    pm = scene["partmap"]
    H, W = pm.shape
    q = np.round(pts).astype(int)
    ok = (q[:, 0] >= 0) & (q[:, 0] < W) & (q[:, 1] >= 0) & (q[:, 1] < H)
    vis = np.zeros(len(pts), bool)
    vis[ok] = pm[q[ok, 1], q[ok, 0]] <= pi + 1
    return vis


def _pieces(st, keep, rscale):
    """Split a stroke into kept open pieces (arrays pts, radii)."""
    if keep.all():
        return [(st.pts, st.radii * rscale, st.closed)]
    n = len(keep)
    idx = np.arange(n)
    if st.closed:
        first = int(np.argmin(keep))
        idx = np.roll(idx, -first)
    k = keep[idx]
    out = []
    for s, L in _runs(k, False):
        sel = idx[s:s + L]
        if L >= 2:
            out.append((st.pts[sel], st.radii[sel] * rscale[sel], False))
    return out


def _path_clear_length(img, path):
    """Longest run (px) along a dense path where bilinear(img) < 0.5."""
    vals = cv2.remap(img.astype(np.float32), path[:, 0].astype(np.float32)[None],
                     path[:, 1].astype(np.float32)[None], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    step = float(np.median(seg)) if len(seg) else SPACING
    best = cur = 0
    for v in vals < 0.5:
        cur = cur + 1 if v else 0
        best = max(best, cur)
    return best * step


def _degrade_vector(sample, rng, min_gap, max_gap, n_cuts, n_short, p_taper):
    scene = sample["_scene"]
    parts = scene["parts"]
    H, W = scene["H"], scene["W"]
    # stroke table
    table = []
    for pi, p in enumerate(parts):
        for si, st in enumerate(p.strokes):
            vis = _visible(scene, pi, st.pts)
            table.append(dict(idx=len(table), pi=pi, si=si, st=st, vis=vis, keep=np.ones(len(st.pts), bool),
                              rscale=np.ones(len(st.pts)), busy=np.zeros(len(st.pts), bool)))
    # free (open) ends must stay untouched: protect a disc around them
    open_ends = []
    for e in table:
        st = e["st"]
        if st.closed:
            continue
        for end, j, j2 in ((0, 0, min(4, len(st.pts) - 1)), (1, len(st.pts) - 1, max(len(st.pts) - 5, 0))):
            if st.ends and st.ends[end] == "free" and e["vis"][j]:
                d = st.pts[j] - st.pts[j2]
                d = d / max(np.linalg.norm(d), 1e-9)
                open_ends.append((float(st.pts[j, 0]), float(st.pts[j, 1]), float(d[0]), float(d[1]),
                                  float(st.radii[j])))
    oe = np.array([[o[0], o[1]] for o in open_ends]) if open_ends else np.zeros((0, 2))
    protect_r = max_gap + 6.0

    def far_from_open(pt, extra):
        if len(oe) == 0:
            return True
        return bool(np.min(np.linalg.norm(oe - pt, axis=1)) > protect_r + extra)

    # all stroke samples, to keep cuts away from other strokes (crossings, T-junctions)
    allpts = np.concatenate([e["st"].pts for e in table]) if table else np.zeros((0, 2))
    owner = np.concatenate([np.full(len(e["st"].pts), i) for i, e in enumerate(table)]) if table else np.zeros(0, int)
    tree = cKDTree(allpts) if len(allpts) else None

    gaps = []
    ncut = int(rng.integers(n_cuts[0], n_cuts[1] + 1))
    cand = [e for e in table if e["st"].closed or (e["st"].ends and "free" not in e["st"].ends)]
    tries = 0
    while ncut > 0 and cand and tries < 60:
        tries += 1
        e = cand[int(rng.integers(len(cand)))]
        st = e["st"]
        N = len(st.pts)
        L = float(rng.uniform(min_gap, max_gap))
        taper = rng.random() < p_taper
        runs = _runs(e["vis"] & ~e["busy"], st.closed)
        if not runs:
            continue
        s0, rl = runs[int(rng.integers(len(runs)))][:2]
        r = float(np.median(st.radii))
        hl = max((L / 2 - 0.5) if taper else (L / 2 + r), 0.5)
        margin = (hl + 2 * r + 3.0) / SPACING
        if rl < 2 * margin + 2:
            continue
        c_off = int(rng.integers(int(margin), int(rl - margin)))
        c = (s0 + c_off) % N
        r = float(st.radii[c])
        # clear distance between the ink ends (coverage 0.5 along the centreline) = L:
        # round caps reach r beyond the last kept sample; tapered ends stop at radius 0.5 (1 px wide)
        hl = (L / 2) if taper else (L / 2 + r)
        if not far_from_open(st.pts[c], L):
            continue
        near = tree.query_ball_point(st.pts[c], hl + 2 * r + 3.0 + 2 * float(st.radii.max()))
        if np.any(owner[near] != e["idx"]):
            continue
        hw = max(int(round(hl / SPACING)) - 1, 0)
        rem = (c + np.arange(-hw, hw + 1)) % N if st.closed else np.clip(c + np.arange(-hw, hw + 1), 0, N - 1)
        e["keep"][rem] = False
        zone = (c + np.arange(-hw - int(margin), hw + int(margin) + 1))
        zone = zone % N if st.closed else np.clip(zone, 0, N - 1)
        e["busy"][zone] = True
        if taper:
            T = rng.uniform(5, 15)
            nT = int(T / SPACING)
            r_end = min(0.5, r) / max(r, 1e-6)
            for side in (-1, 1):
                j = c + side * (hw + 1 + np.arange(nT))
                j = j % N if st.closed else np.clip(j, 0, N - 1)
                ramp = r_end + (1.0 - r_end) * (np.arange(nT) * SPACING / T) ** 0.7
                e["rscale"][j] = np.minimum(e["rscale"][j], ramp)
        pz = int((L / 2 + 3 * r + 3) / SPACING)
        pidx = (c + np.arange(-pz, pz + 1))
        pidx = pidx % N if st.closed else np.clip(pidx, 0, N - 1)
        gaps.append(dict(kind="cut", length=L, tapered=bool(taper), center=st.pts[c].tolist(),
                         part=e["pi"], stroke=e["si"], path=st.pts[pidx].copy()))
        ncut -= 1
    # junction shortfalls: explicit junction ends (inner strokes on the outline) and occlusion T-junctions
    nsh = int(rng.integers(n_short[0], n_short[1] + 1))
    ends = []
    for e in table:
        st = e["st"]
        N = len(st.pts)
        if not st.closed and st.ends:
            if st.ends[0] == "junction" and e["vis"][0]:
                ends.append((e, 0, +1, e["pi"]))
            if st.ends[1] == "junction" and e["vis"][-1]:
                ends.append((e, N - 1, -1, e["pi"]))
        vis = e["vis"]
        for s, rl, *rest in _runs(vis, st.closed):
            if rest and rest[0]:
                continue
            for j, direction in ((s, +1), ((s + rl - 1) % N, -1)):
                if not st.closed and ((j == 0 and direction == 1) or (j == N - 1 and direction == -1)):
                    continue  # a real stroke end, not an occlusion boundary
                jo = (j - direction) % N if st.closed else j - direction
                if jo < 0 or jo >= N:
                    continue
                q = np.round(st.pts[jo]).astype(int)
                if not (0 <= q[0] < W and 0 <= q[1] < H):
                    continue
                front = int(scene["partmap"][q[1], q[0]]) - 1
                if front <= e["pi"] or front >= len(parts):
                    continue
                ends.append((e, j, direction, front))
    order = rng.permutation(len(ends)) if ends else []
    for oi in order:
        if nsh <= 0:
            break
        e, j, direction, front = ends[int(oi)]
        st = e["st"]
        N = len(st.pts)
        if e["busy"][j]:
            continue
        L = float(rng.uniform(min_gap, max_gap))
        r = float(np.median(st.radii))
        # where does the ink of the stroke we should meet end along our centreline?
        fo = [i for i, f in enumerate(table) if f["pi"] == front and f["st"].kind == "outline"]
        if not fo:
            continue
        fpts = np.concatenate([table[i]["st"].pts for i in fo])
        frad = np.concatenate([table[i]["st"].radii for i in fo])
        look = j + direction * np.arange(0, int((4 * float(frad.max()) + 6) / SPACING))
        look = look % N if st.closed else np.clip(look, 0, N - 1)
        dd, ii = cKDTree(fpts).query(st.pts[look])
        outside = np.nonzero(dd >= frad[ii])[0]
        if len(outside) == 0:
            continue
        # skip grazing junctions (stroke nearly tangent to the line it meets)
        i0 = int(ii[0])
        ft = fpts[min(i0 + 1, len(fpts) - 1)] - fpts[max(i0 - 1, 0)]
        od = st.pts[look[min(len(look) - 1, 6)]] - st.pts[look[0]]
        cosang = abs(float(ft @ od)) / max(np.linalg.norm(ft) * np.linalg.norm(od), 1e-9)
        if cosang > math.cos(math.radians(40)):
            continue
        edge = float(outside[0]) * SPACING
        cut_len = edge + L + r
        k = max(int(round(cut_len / SPACING)), 1)
        span = j + direction * np.arange(0, k + int((2 * r + 4) / SPACING))
        if st.closed:
            span = span % N
        elif span.min() < 0 or span.max() >= N:
            continue
        if not e["vis"][span].all() or e["busy"][span].any():
            continue
        if st.radii[span[k:]].min() < max(0.6, 0.6 * r):
            continue  # the stroke is too thin there (tapered): the gap would not read as one
        if not far_from_open(st.pts[j], L):
            continue
        rem = span[:k]
        behind = j - direction * np.arange(1, int((r + 2) / SPACING) + 1)  # hidden side (under the occluder)
        behind = behind % N if st.closed else np.clip(behind, 0, N - 1)
        e["keep"][rem] = False
        if st.closed or (j != 0 and j != N - 1):
            e["keep"][behind] = False
        e["busy"][span] = True
        pz = j + direction * np.arange(-int(2 / SPACING), k + int((2 * r + 3) / SPACING))
        pz = pz % N if st.closed else np.clip(pz, 0, N - 1)
        gaps.append(dict(kind="shortfall", length=L, tapered=False, center=st.pts[span[k // 2]].tolist(),
                         part=e["pi"], stroke=e["si"], path=st.pts[pz].copy()))
        nsh -= 1
    # re-render modified parts
    override = {}
    touched = sorted({e["pi"] for e in table if not e["keep"].all() or (e["rscale"] != 1).any()})
    for pi in touched:
        roi = scene["layers"][pi][0]
        pieces = []
        for e in table:
            if e["pi"] == pi:
                pieces += _pieces(e["st"], e["keep"], e["rscale"])
        override[pi] = cover_strokes(pieces, roi) if pieces else np.zeros((roi[3], roi[2]), np.float32)
    deg = composite_ink(scene["layers"], W, H, override) if override else sample["lines"].copy()
    return np.clip(deg, 0, 1), gaps, open_ends


def _degrade_raster(gt, rng, min_gap, max_gap, n_cuts):
    """Cuts perpendicular to strokes of a raster line image (no stroke structure known)."""
    H, W = gt.shape
    ink = (gt >= 0.5).astype(np.uint8)
    dt = cv2.distanceTransform(ink, cv2.DIST_L2, 5)
    ridge = (dt >= 0.9) & (dt >= cv2.dilate(dt, np.ones((3, 3), np.uint8)) - 1e-6)
    ys, xs = np.nonzero(ridge)
    deg = gt.copy()
    gaps = []
    if len(ys) == 0:
        return deg, gaps
    busy = np.zeros((H, W), bool)
    ncut = int(rng.integers(n_cuts[0], n_cuts[1] + 1))
    for _ in range(200):
        if ncut <= 0:
            break
        i = int(rng.integers(len(ys)))
        cx, cy = int(xs[i]), int(ys[i])
        if busy[cy, cx]:
            continue
        L = float(rng.uniform(min_gap, max_gap))
        rw = 5
        y0, y1, x0, x1 = max(cy - rw, 0), min(cy + rw + 1, H), max(cx - rw, 0), min(cx + rw + 1, W)
        wy, wx = np.nonzero(ink[y0:y1, x0:x1])
        if len(wy) < 5:
            continue
        P = np.stack([wx + x0 - cx, wy + y0 - cy], 1).astype(np.float64)
        P = P[np.linalg.norm(P, axis=1) <= rw]
        cov = P.T @ P / len(P)
        ev, evec = np.linalg.eigh(cov)
        if ev[1] < 4.0 * max(ev[0], 1e-3):
            continue  # junction or blob, not a clean stroke
        d = evec[:, 1]
        n = np.array([-d[1], d[0]])
        hw = float(dt[cy, cx]) + 1.5
        # the stroke must continue beyond the cut on both sides
        okc = True
        for sgn in (-1, 1):
            q = np.round(np.array([cx, cy]) + d * sgn * (L / 2 + 3)).astype(int)
            if not (0 <= q[0] < W and 0 <= q[1] < H) or not ink[q[1], q[0]]:
                okc = False
        if not okc:
            continue
        R = int(math.ceil(L / 2 + hw + 3))
        y0, y1, x0, x1 = max(cy - R, 0), min(cy + R + 1, H), max(cx - R, 0), min(cx + R + 1, W)
        gy, gx = np.mgrid[y0:y1, x0:x1]
        u = (gx - cx) * d[0] + (gy - cy) * d[1]
        v = (gx - cx) * n[0] + (gy - cy) * n[1]
        keep = np.clip(np.abs(u) - L / 2 + 0.5, 0, 1)
        keep = np.where(np.abs(v) <= hw + 0.5, keep, 1.0)
        deg[y0:y1, x0:x1] *= keep.astype(np.float32)
        busy[y0:y1, x0:x1] = True
        s = np.arange(-(L / 2 + 3), L / 2 + 3 + 1e-9, SPACING)
        gaps.append(dict(kind="cut", length=L, tapered=False, center=[float(cx), float(cy)],
                         direction=d.tolist(), path=np.array([cx, cy]) + s[:, None] * d))
        ncut -= 1
    return deg, gaps


def degrade_lines(lines, rng_or_seed, max_gap=12, min_gap=1, n_cuts=(1, 6), n_short=(0, 4), p_taper=0.4,
                  n_erase=0, p_identity=0.0):
    """Make GapFill training/test pairs.

    lines: a ``make_lineart`` sample dict (vector mode: arc-length cuts rendered with natural round
           caps or tapered ends, junction shortfalls at T-junctions and at inner strokes that should
           touch an outline; open strokes are never touched) or a 2-D ink-coverage array (raster
           mode: perpendicular cuts across clean stroke segments; open ends unknown).
    Gap lengths are the clear distance along the stroke centreline, drawn from U[min_gap, max_gap] px.
    n_erase: FillLineGaps-style 1-px eraser lines across the image (their removed ink counts as gaps).

    Returns a dict:
      lines (H,W) degraded ink coverage, gt (H,W) clean ink,
      gap_mask (H,W) bool: clean ink (>= 0.5) missing in the degraded lines (< 0.5) = ink to add,
      gaps: list of dicts (kind 'cut'|'shortfall'|'erase', length (intended clear length, px), tapered,
            center, path (Kx2 centreline through the gap), clear_length (measured along path at 0.5;
            not for 'erase')),
      open_mask (H,W) bool: discs around free stroke ends that must stay open,
      open_ends: list of (x, y, dx, dy, radius) with the outward direction,
      regions: the sample's flood-fill regions (vector mode) or None.
    """
    rng = as_rng(rng_or_seed)
    vector = isinstance(lines, dict)
    gt = (lines["lines"] if vector else np.asarray(lines)).astype(np.float32)
    H, W = gt.shape
    open_ends = []
    if rng.random() < p_identity:
        deg, gaps = gt.copy(), []
        if vector:
            _, _, open_ends = _degrade_vector(lines, rng, min_gap, max_gap, (0, 0), (0, 0), 0.0)
    elif vector:
        deg, gaps, open_ends = _degrade_vector(lines, rng, min_gap, max_gap, n_cuts, n_short, p_taper)
    else:
        deg, gaps = _degrade_raster(gt, rng, min_gap, max_gap, n_cuts)
    for _ in range(int(n_erase)):
        side = int(rng.integers(4))
        a = rng.uniform(0, 1, 2)
        p0 = [(a[0] * W, 0), (W - 1, a[0] * H), (a[0] * W, H - 1), (0, a[0] * H)][side]
        p1 = [(a[1] * W, H - 1), (0, a[1] * H), (a[1] * W, 0), (W - 1, a[1] * H)][side]
        er = cover_polylines_fast([(np.array([p0, p1]), np.array([0.5, 0.5]))], (0, 0, W, H), ss=1)
        deg = deg * (1.0 - er)
        gaps.append(dict(kind="erase", length=1.0, tapered=False, center=[(p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2],
                         path=np.linspace(p0, p1, 50)))
    deg = np.minimum(deg, gt).astype(np.float32)  # degradations only ever remove ink
    gap_mask = (gt >= 0.5) & (deg < 0.5)
    for g in gaps:
        if g["kind"] != "erase":
            g["clear_length"] = _path_clear_length(deg, g["path"])
    # drop cuts that other ink hides (the gap_mask stays the exact truth either way)
    gaps = [g for g in gaps if g["kind"] == "erase" or g["clear_length"] >= 0.5]
    open_mask = np.zeros((H, W), np.uint8)
    for x, y, dx, dy, r in open_ends:
        cv2.circle(open_mask, (int(round(x * 16)), int(round(y * 16))), int(round(max(3.0, 2 * r) * 16)), 1, -1,
                   cv2.LINE_8, 4)
    return dict(lines=deg, gt=gt, gap_mask=gap_mask, gaps=gaps, open_mask=open_mask.astype(bool),
                open_ends=open_ends, regions=lines.get("regions") if vector else None)

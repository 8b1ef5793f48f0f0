"""Classical gap closing after OpenToonz / Tahoma2D *autoclose* (numpy + OpenCV only).

The algorithm (``toonzlib/autoclose.cpp``, see ``/shared/reference/lines_and_color.md`` §5.1-5.2):

1. **Ink mask**: coverage ≥ ``threshold`` is ink; enclosed paper specks of ≤ 4 px (the holes
   aliasing leaves in doubled 1-px strokes) count as ink for the search, so a stroke that ends in a
   tiny loop still has an end. They are not written to the output.
2. **Skeleton**: Guo-Hall thinning (the lookup tables of ``skimage.morphology.thin``, re-derived
   here so nothing beyond numpy/OpenCV is needed) to a 1-px, 8-connected skeleton.
3. **Endpoints**: skeleton pixels with exactly one 8-neighbour. Spurs shorter than the local line
   width (thinning artefacts of a stroke's side) are not endpoints; a 1-px stub that a cut leaves
   at a junction of 1-px lines is one.
4. **Direction**: walk the skeleton back from the endpoint for up to ``walk`` px (stopping at a
   junction); the stroke's outward direction is endpoint − mean of the walked pixels.
5. **Pair search**: two endpoints whose gap (centre distance minus their half-widths) is at most
   ``max_gap`` and that each lie inside the other's direction cone (half-angle ``angle/2``) are
   joined first, closest pairs first (OpenToonz ``spotResearchTwoPoints``).
6. **Junctions and corners** (celgraph, ``converge``): ends still open that point at each other
   (within ±``converge``/2) or whose direction lines cross just ahead of both are joined at the
   point where they meet: a missed T/Y/X junction leaves three or four such ends, a missed corner
   two, and OpenToonz's pair cone sees none of them. Two such ends that each point at the other
   within ``CHORD_ANGLE`` (40°) are one curved stroke interrupted and are joined end to end.
7. **Single-endpoint search**: from each endpoint still open, rays are cast every ``angle_step``
   degrees within ±``angle/2`` of its direction; each ray first leaves its own stroke's ink and
   then stops at the first ink pixel, unless the end reaches that pixel along the ink in not
   much more than the ray's length (its own stroke bending back); the closest hit (distance,
   with a mild penalty for turning away from the direction) within ``max_gap`` of the stroke's
   tip is joined (``spotResearchOnePoint``). An end whose stroke thins out towards it (``taper`` < ``min_taper``:
   the width over its last 5 px ÷ the width behind) was drawn to end there and is not extended
   to the drawing's ink: on real production line art that is the mark of a free end (hair strands,
   folds). Such ends and 1-px stubs are joined only to ink this pass added, within ``weak_reach``
   px (the third end of a junction whose other two ends were just joined), or to ink from which
   one narrow stroke goes on straight ahead, along both the ray and the end's direction, for
   ``CONTINUE_LENGTH`` px (the same stroke resuming beyond an X crossing; a free end drawn near
   another stroke sees that stroke's width of ink and then paper). Spurs (branches shorter than
   the line width, which step 3 drops) cast rays as weak ends too: what a cut leaves of a stroke
   next to a thick junction is often one (version 7).
8. **Drawing**: segments continue the stroke at its own width, measured at the end as ink area ÷
   skeleton length (a 2-px stroke is continued 2 px wide; the distance transform alone reads 1
   for both 1- and 2-px strokes), round-capped, together with the convex hull of the stroke end
   faces they join (the end's own ink within width/2 + 1.5 px of its tip): a cut straight stroke
   comes back as the piece that was erased, and the three faces of a missed junction fill the
   junction's blob. Only over paper; they become ink for later searches.
9. **Tahoma2D's rule** (``fillutil.cpp finishGapLines``): with ``keep_separating`` a segment is
   kept only if the paper on its two sides belongs to different flood-fill regions once all
   segments are drawn, i.e. it actually stops a fill from leaking. Segments that only dangle into
   one region (an open stroke pointing at nothing in particular) are removed. It applies only to
   pairs with a tapered end, not to untapered pairs, converging ends and rays (``TRUSTED_KINDS``):
   a closure only separates once every gap on the same region boundary is closed, so the rule
   removed true closures wherever one other gap stayed open.

Parameters (OpenToonz defaults in brackets): ``max_gap`` px, the clear distance between ink edges
[Tape tool 10, fill autoclose 30]; ``angle`` degrees, the full cone opening (40; OpenToonz 60: on
real line art 40 joins half as many free ends for the same closed leaks, bench/real.py);
``converge`` (120°; 0 = OpenToonz, no junction step); ``min_taper`` (0.8; 0 = OpenToonz);
``weak_reach`` (4 px; 0 = tapered ends and stubs are never rayed); ``threshold``
(ink coverage cut, 0.5); ``walk`` (direction estimate, default max(10, max_gap) px).

    closed, added = autoclose(lines, max_gap=12, angle=60)       # lines: H×W coverage 0..1
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["autoclose", "skeletonize", "endpoints", "endpoint_map", "Endpoint", "find_endpoints", "gap_ahead",
           "keep_separating"]

# 8-neighbour code weights (correlation kernel): bit0 E, bit1 NE, bit2 N, bit3 NW, bit4 W,
# bit5 SW, bit6 S, bit7 SE.
_CODE = np.array([[8, 4, 2], [16, 0, 1], [32, 64, 128]], np.float32)
# (dy, dx) of each bit
_OFFS = [(0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1)]


def _thin_luts() -> tuple[np.ndarray, np.ndarray]:
    """Guo & Hall (1989) thinning, the two sub-iteration deletion tables (as skimage's ``thin``)."""
    def bits(n):
        return [bool(n >> i & 1) for i in range(8)]

    def g1(b):
        return sum(1 for i in (0, 2, 4, 6) if not b[i] and (b[i + 1] or b[(i + 2) % 8])) == 1

    def g2(b):
        n1 = sum(1 for k in (1, 3, 5, 7) if b[k] or b[k - 1])
        n2 = sum(1 for k in (1, 3, 5, 7) if b[k] or b[(k + 1) % 8])
        return min(n1, n2) in (2, 3)

    def g3(b):
        return not ((b[1] or b[2] or not b[7]) and b[0])

    def g3p(b):
        return not ((b[5] or b[6] or not b[3]) and b[4])

    l1 = np.array([g1(bits(n)) and g2(bits(n)) and g3(bits(n)) for n in range(256)])
    l2 = np.array([g1(bits(n)) and g2(bits(n)) and g3p(bits(n)) for n in range(256)])
    return l1, l2


_LUT1, _LUT2 = _thin_luts()


def _codes(mask_u8: np.ndarray) -> np.ndarray:
    """8-neighbour code 0..255 of every pixel of a 0/1 uint8 mask (exact: integer weights ≤ 255)."""
    return cv2.filter2D(mask_u8, cv2.CV_8U, _CODE, borderType=cv2.BORDER_CONSTANT)


_TILE = 64           # px: skeletonize re-examines only the tiles near the last deletions


def skeletonize(ink: np.ndarray, max_iter: int = 64) -> np.ndarray:
    """1-px, 8-connected skeleton (bool H×W) of a binary ink mask (Guo-Hall thinning).

    Only the bounding box of the ink is processed; ``max_iter`` bounds the work on solid black
    areas (each iteration peels one pixel layer). A sub-iteration looks only at the tiles near
    the pixels deleted by the two before it: elsewhere every pixel has the 8-neighbourhood it had
    when this sub-iteration's table last kept it, so it would be kept again (the same skeleton as
    thinning the whole box every time, at a fraction of the cost once the thin strokes are done)."""
    ink = np.asarray(ink, bool)
    out = np.zeros_like(ink)
    x0, y0, w, h = cv2.boundingRect(ink.view(np.uint8))      # the ink's bounding box (np.nonzero: 60× slower)
    if w == 0:
        return out
    T = _TILE
    ty, tx = -(-(h + 2) // T), -(-(w + 2) // T)
    sk = np.zeros((ty * T, tx * T), np.uint8)                # a zero ring, then padded to whole tiles
    sk[1:h + 1, 1:w + 1] = ink[y0:y0 + h, x0:x0 + w]
    luts = [lut.astype(np.uint8) for lut in (_LUT1, _LUT2)]
    ring = np.ones((3, 3), np.uint8)
    near: np.ndarray | None = None       # tiles the next sub-iteration looks at (None: all of them)
    last = None                          # tiles where the previous sub-iteration deleted
    for _ in range(max_iter):
        removed = 0
        for lut in luts:
            if near is None or near.mean() > 0.5:                 # whole box: 8-neighbour code, table, delete
                d = cv2.bitwise_and(cv2.LUT(_codes(sk), lut), sk)
            else:
                d = np.zeros_like(sk)
                for i, j in zip(*np.nonzero(near)):
                    a, b = i * T, j * T
                    ya, xa = max(a - 1, 0), max(b - 1, 0)
                    code = _codes(sk[ya:a + T + 1, xa:b + T + 1])[a - ya:a - ya + T, b - xa:b - xa + T]
                    d[a:a + T, b:b + T] = cv2.bitwise_and(cv2.LUT(code, lut), sk[a:a + T, b:b + T])
            n = cv2.countNonZero(d)
            removed += n
            sk = cv2.subtract(sk, d)
            # a pixel's next look with the other table: needed only if a neighbour changed since its last look
            # with that table, i.e. in this sub-iteration or the one before (the first look at each is whole)
            hit = d.reshape(ty, T, tx, T).max(axis=(1, 3)) if n else np.zeros((ty, tx), np.uint8)
            near = None if last is None else cv2.dilate(hit | last, ring) > 0
            last = hit
        if not removed:
            break
    out[y0:y0 + h, x0:x0 + w] = sk[1:h + 1, 1:w + 1].astype(bool)
    return out


def _neighbour_count(sk: np.ndarray) -> np.ndarray:
    """8-neighbours of every pixel of a skeleton, uint8 0..8 (exact: integer weights)."""
    k = np.ones((3, 3), np.float32)
    k[1, 1] = 0
    return cv2.filter2D(np.asarray(sk, bool).view(np.uint8), cv2.CV_8U, k, borderType=cv2.BORDER_CONSTANT)


@dataclass
class Endpoint:
    y: int
    x: int
    dy: float           # unit outward direction (away from the stroke)
    dx: float
    width: float        # local line width, px
    branch: int         # skeleton pixels walked back before a junction / the walk limit
    taper: float = 1.0  # width over the last 5 px ÷ the width behind them (< 1: the stroke thins out)
    spur: bool = False  # a branch shorter than the line width (see find_endpoints' ``spurs``)


def _walk(sk: np.ndarray, nb: np.ndarray, y: int, x: int, limit: int) -> list[tuple[int, int]]:
    """Skeleton pixels from an endpoint inward, up to ``limit`` pixels or the first junction."""
    H, W = sk.shape
    path = [(y, x)]
    prev = None
    cy, cx = y, x
    for _ in range(limit):
        nxt = None
        for dy, dx in _OFFS:
            qy, qx = cy + dy, cx + dx
            if 0 <= qy < H and 0 <= qx < W and sk[qy, qx] and (qy, qx) != prev and (qy, qx) not in path[-3:]:
                # prefer 4-neighbours (thinning leaves both an edge and a corner step at turns)
                if nxt is None or (dy == 0 or dx == 0):
                    nxt = (qy, qx)
        if nxt is None:
            break
        prev = (cy, cx)
        cy, cx = nxt
        path.append(nxt)
        if nb[cy, cx] >= 3:
            break
    return path


def _stroke_width_at(ink: np.ndarray, dist: np.ndarray, path: list[tuple[int, int]]) -> float:
    """Width (px) of the stroke along a skeleton path: the ink pixels whose nearest path pixel is
    an inner one (not the two ends), divided by the inner path length. A 1-px line is 1, a 2-px
    line 2 (the distance transform alone cannot tell those apart: both read 1 at the centre)."""
    if len(path) < 4:
        half = float(np.median([dist[p] for p in path]))
        return max(2.0 * half - 1.0, 1.0)
    H, W = ink.shape
    P = np.array(path, np.int64)
    r = int(math.ceil(float(max(dist[p] for p in path)))) + 1
    y0, y1 = max(int(P[:, 0].min()) - r, 0), min(int(P[:, 0].max()) + r + 1, H)
    x0, x1 = max(int(P[:, 1].min()) - r, 0), min(int(P[:, 1].max()) + r + 1, W)
    wy, wx = np.nonzero(ink[y0:y1, x0:x1])
    if len(wy) == 0:
        return 1.0
    Q = np.stack([wy + y0, wx + x0], 1)
    d2 = ((Q[:, None, :] - P[None, :, :]) ** 2).sum(-1)           # (ink px) × (path px)
    nearest = d2.argmin(1)
    close = d2.min(1) <= r * r
    inner = close & (nearest > 0) & (nearest < len(P) - 1)
    # the path's inner length, diagonal steps counted as √2
    steps = np.sqrt((np.diff(P[1:-1], axis=0) ** 2).sum(1)).sum() + 1.0
    return max(float(inner.sum()) / float(steps), 1.0)


def find_endpoints(ink: np.ndarray, walk: int = 12, skeleton: np.ndarray | None = None,
                   dist: np.ndarray | None = None, min_branch: int = 2, spurs: bool = False) -> list[Endpoint]:
    """Stroke ends of a binary ink mask, with outward direction and local width.

    An endpoint is a skeleton pixel with one 8-neighbour (isolated dots are ignored). A branch
    that reaches a junction in fewer skeleton pixels than the local line width (and than
    ``min_branch``) is a thinning spur on a stroke's side, not a stroke end, and is dropped.
    ``min_branch`` 1 keeps the 1-px stubs a cut leaves where a 1-px line meets a junction (the
    classical closer joins those only to an end facing them); the GapFill networks were trained
    with the endpoint maps of 2. ``spurs`` returns the spurs too, flagged: what is left of a stroke
    cut next to a thick junction looks like one."""
    ink = np.asarray(ink, bool)
    sk = skeletonize(ink) if skeleton is None else skeleton
    if dist is None:
        dist = cv2.distanceTransform(ink.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    nb = _neighbour_count(sk)
    ys, xs = np.nonzero(sk & (nb == 1))
    out = []
    for y, x in zip(ys.tolist(), xs.tolist()):
        path = _walk(sk, nb, y, x, walk)
        py, px = np.array(path, np.float64).T
        reached_junction = nb[path[-1]] >= 3
        width = _stroke_width_at(ink, dist, path)
        spur = reached_junction and len(path) - 1 < max(float(min_branch), width)
        if spur and not spurs:
            continue
        if len(path) < 2:
            continue
        k = len(path)
        vy, vx = y - float(py[1:].mean()), x - float(px[1:].mean())
        n = math.hypot(vy, vx)
        if n < 1e-6:
            continue
        taper = 1.0
        if len(path) >= 12:
            taper = _stroke_width_at(ink, dist, path[:6]) / _stroke_width_at(ink, dist, path[6:])
        out.append(Endpoint(y, x, vy / n, vx / n, width, k - 1, taper, spur))
    return out


def endpoints(lines: np.ndarray, threshold: float = 0.5, walk: int = 12) -> list[Endpoint]:
    """Stroke ends of line art (coverage ≥ threshold is ink)."""
    return find_endpoints(np.asarray(lines) >= threshold, walk=walk)


def endpoint_map(shape: tuple[int, int], eps: list[Endpoint], radius: float = 2.0) -> np.ndarray:
    """float32 H×W: 1 on discs of ``radius`` px around the endpoints, 0 elsewhere (a network input)."""
    m = np.zeros(shape, np.uint8)
    r = max(int(round(radius)), 0)
    for e in eps:
        cv2.circle(m, (e.x, e.y), r, 1, -1)
    return m.astype(np.float32)


# ---------------------------------------------------------------------------------------------

# A ray's hit on ink that its endpoint reaches through ink in at most BEND_FACTOR × the ray's
# length + BEND_SLACK steps is the endpoint's own stroke curving back (a bend, never joined); ink
# reached only the long way round, through the junctions of a dense drawing, is another stroke.
# (The whole connected component, as before v6, refused 5 of the 12 leaks left on bench/real.py.)
BEND_FACTOR = 1.5
BEND_SLACK = 5.0


def _ray_hit(ink: np.ndarray, along: np.ndarray, y: float, x: float, dy: float, dx: float,
             reach: float, target: np.ndarray | None = None) -> float | None:
    """Distance along a ray from (y, x) to the first ink pixel after it leaves the ink it starts
    in, or None within ``reach`` (or when the hit is a bend of its own stroke, see BEND_FACTOR).
    ``ink`` and ``along`` (steps through ink from the start, ``_steps_along_ink``) are windows
    with (y, x) in window coordinates."""
    H, W = ink.shape
    left = False
    t = 0.0
    step = 0.5
    while t <= reach:
        yy, xx = int(round(y + dy * t)), int(round(x + dx * t))
        if not (0 <= yy < H and 0 <= xx < W):
            return None
        if not ink[yy, xx]:
            left = True
        elif left:
            if along[yy, xx] <= BEND_FACTOR * t + BEND_SLACK or (target is not None and not target[yy, xx]):
                return None
            return t
        t += step
    return None


# A weak end's ray (tapered end or 1-px stub) may reach the drawing's ink when one stroke goes on
# along the ray beyond the hit for CONTINUE_LENGTH px: the same stroke resumes on the other side
# of the gap (a cut through a stroke or an X crossing). Across the ray, the ink run nearest to it
# must stay centred on it (drift ≤ CONTINUE_DRIFT px per px: not a stroke the ray grazes at a
# shallow angle) and narrow (≤ CONTINUE_WIDTH px: not a blob). A free end drawn near another
# stroke sees that stroke's width of ink and then paper.
CONTINUE_LENGTH = 8
CONTINUE_DRIFT = 0.15
CONTINUE_WIDTH = 4


def _continues(ink: np.ndarray, y: float, x: float, dy: float, dx: float, t: float) -> bool:
    """Does one narrow stroke run on along the ray (y, x) + s·(dy, dx) for s in t + 2 … t + 2 +
    CONTINUE_LENGTH, centred on it (see CONTINUE_LENGTH)?"""
    H, W = ink.shape
    R = CONTINUE_WIDTH
    centres = []
    for k in range(CONTINUE_LENGTH + 1):
        s = t + 2 + k
        cy, cx = y + dy * s, x + dx * s
        row = []
        for o in range(-R, R + 1):          # across the ray
            yy, xx = int(round(cy - dx * o)), int(round(cx + dy * o))
            row.append(0 <= yy < H and 0 <= xx < W and bool(ink[yy, xx]))
        near = [o for o in (0, -1, 1) if row[o + R]]
        if not near:
            return False        # paper: the ink stopped
        lo = hi = near[0] + R
        while lo > 0 and row[lo - 1]:
            lo -= 1
        while hi < 2 * R and row[hi + 1]:
            hi += 1
        if hi - lo + 1 <= CONTINUE_WIDTH and lo > 0 and hi < 2 * R:
            centres.append((k, (lo + hi) / 2.0 - R))     # (wider: where a crossing stroke passes)
    if len(centres) < 0.7 * (CONTINUE_LENGTH + 1):
        return False
    k, c = np.asarray(centres, np.float64).T
    slope = np.polyfit(k, c, 1)[0]
    return abs(slope) <= CONTINUE_DRIFT and abs(float(c.mean())) <= 1.5


def _own_stroke(ink: np.ndarray, y: int, x: int, radius: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Ink pixels connected to (y, x) inside a (2·radius+1)² window: the endpoint's own stroke."""
    H, W = ink.shape
    y0, y1, x0, x1 = max(y - radius, 0), min(y + radius + 1, H), max(x - radius, 0), min(x + radius + 1, W)
    win = ink[y0:y1, x0:x1].astype(np.uint8)
    _, lab = cv2.connectedComponents(win, connectivity=8)
    own = lab == lab[y - y0, x - x0]
    return own, (y0, x0)


def _steps_along_ink(ink: np.ndarray, y: int, x: int, radius: int, limit: int) -> tuple[np.ndarray, tuple[int, int]]:
    """8-connected steps through ink from (y, x) to every ink pixel of a (2·radius+1)² window
    (float32; inf beyond ``limit`` steps or not connected inside the window), and the window's origin."""
    H, W = ink.shape
    y0, y1, x0, x1 = max(y - radius, 0), min(y + radius + 1, H), max(x - radius, 0), min(x + radius + 1, W)
    win = ink[y0:y1, x0:x1].view(np.uint8)
    steps = np.full(win.shape, np.inf, np.float32)
    reached = np.zeros_like(win)
    reached[y - y0, x - x0] = 1
    steps[y - y0, x - x0] = 0
    k = np.ones((3, 3), np.uint8)
    for n in range(1, limit + 1):
        grown = cv2.dilate(reached, k) & win
        new = grown > reached
        if not new.any():
            break
        steps[new] = n
        reached = grown
    return steps, (y0, x0)


def gap_ahead(ink: np.ndarray, e: Endpoint, reach: float, angle: float = 60.0, angle_step: float = 2.0) -> float | None:
    """Clear distance (px, from the tip's centre) to the nearest ink of another stroke along rays
    within ±``angle``/2 of the end's direction, or None within ``reach``: what the end stops short
    of. Its own stroke bending back does not count (BEND_FACTOR)."""
    ink = np.asarray(ink, bool)
    along, (oy, ox) = _steps_along_ink(ink, e.y, e.x, int(math.ceil(reach + e.width)) + 1,
                                       int(math.ceil(BEND_FACTOR * reach + BEND_SLACK)))
    win = ink[oy:oy + along.shape[0], ox:ox + along.shape[1]]
    base = math.atan2(e.dy, e.dx)
    n = max(int(round(angle / 2 / angle_step)), 0)
    hits = [_ray_hit(win, along, e.y - oy, e.x - ox, math.sin(a), math.cos(a), reach)
            for a in (base + math.radians(k * angle_step) for k in range(-n, n + 1))]
    hits = [t for t in hits if t is not None]
    return min(hits) if hits else None


def _fill_specks(ink: np.ndarray, max_area: int = 4) -> np.ndarray:
    """Ink with its enclosed paper specks of ≤ ``max_area`` px filled: the 1-3 px holes aliasing
    leaves inside doubled 1-px strokes make loops in the skeleton, and a loop has no end to find."""
    n, lab = cv2.connectedComponents((~ink).astype(np.uint8), connectivity=4)
    small = np.bincount(lab.ravel(), minlength=n) <= max_area      # areas (…WithStats: 5× slower)
    small[0] = False
    if not small[1:].any():
        return ink
    return ink | small[lab]


def _facing(a: "Endpoint", b: "Endpoint", cos_min: float) -> bool:
    """Each end points at the other within ±acos(cos_min): one stroke interrupted, not a corner."""
    v = np.array([b.y - a.y, b.x - a.x], np.float64)
    n = np.linalg.norm(v)
    if n == 0:
        return True
    v /= n
    return (a.dy * v[0] + a.dx * v[1]) >= cos_min and -(b.dy * v[0] + b.dx * v[1]) >= cos_min


def _cap(ink: np.ndarray, e: "Endpoint", extra: float = 1.5) -> np.ndarray:
    """(y, x) of the endpoint's own-stroke ink within width/2 + ``extra`` of its skeleton tip: the
    stroke's end face, whose hull with the other side's face rebuilds the erased piece at the
    stroke's own width."""
    r = e.width / 2.0 + extra
    own, (oy, ox) = _own_stroke(ink, e.y, e.x, int(math.ceil(r)) + 1)
    ys, xs = np.nonzero(own)
    ys, xs = ys + oy, xs + ox
    near = (ys - e.y) ** 2 + (xs - e.x) ** 2 <= r * r
    return np.stack([ys[near], xs[near]], 1)


def _disc(c: tuple[int, int], r: float, n: int = 8) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([c[0] + r * np.sin(a), c[1] + r * np.cos(a)], 1)


def _fill_hull(mask: np.ndarray, pts: np.ndarray) -> None:
    """Set the pixels of the convex hull of (y, x) points in a bool mask."""
    if len(pts) < 2:
        return
    H, W = mask.shape
    y0, x0 = max(int(np.floor(pts[:, 0].min())) - 1, 0), max(int(np.floor(pts[:, 1].min())) - 1, 0)
    y1, x1 = min(int(np.ceil(pts[:, 0].max())) + 2, H), min(int(np.ceil(pts[:, 1].max())) + 2, W)
    if y1 <= y0 or x1 <= x0:
        return
    hull = cv2.convexHull(np.round(pts[:, ::-1] - (x0, y0)).astype(np.int32))
    m = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillConvexPoly(m, hull, 1)
    mask[y0:y1, x0:x1] |= m > 0


def _segment_separates(closed_ink: np.ndarray, regions: np.ndarray, seg: tuple, width: float) -> bool:
    """Tahoma2D's rule: does the paper along the segment's two sides belong to ≥ 2 regions?"""
    (y0, x0), (y1, x1) = seg
    H, W = closed_ink.shape
    pad = int(math.ceil(width / 2 + 3))
    ya, yb = max(min(y0, y1) - pad, 0), min(max(y0, y1) + pad + 1, H)
    xa, xb = max(min(x0, x1) - pad, 0), min(max(x0, x1) + pad + 1, W)
    m = np.zeros((yb - ya, xb - xa), np.uint8)
    t = max(int(round(width)), 1)
    cv2.line(m, (x0 - xa, y0 - ya), (x1 - xa, y1 - ya), 1, t + 4)
    labs = regions[ya:yb, xa:xb][(m > 0) & ~closed_ink[ya:yb, xa:xb]]
    labs = labs[labs > 0]
    if labs.size == 0:
        return False
    u, c = np.unique(labs, return_counts=True)
    return int((c >= 2).sum()) >= 2


def _draw_segment(mask: np.ndarray, p: tuple[int, int], q: tuple[int, int], width: float) -> None:
    """Set the pixels of a stroke of ``width`` px from p to q (y, x), round-capped, in a bool mask:
    8-connected 1-px for widths under 1.5 (enough to stop a 4-connected fill), else the pixels
    whose centre lies within width/2 of the segment (so a 2-px stroke is continued 2 px wide)."""
    H, W = mask.shape
    if width < 1.5:
        m = np.zeros((H, W), np.uint8)
        cv2.line(m, (p[1], p[0]), (q[1], q[0]), 1, 1, cv2.LINE_8)
        mask[m > 0] = True
        return
    r = width / 2.0
    R = int(math.ceil(r)) + 1
    y0, y1 = max(min(p[0], q[0]) - R, 0), min(max(p[0], q[0]) + R + 1, H)
    x0, x1 = max(min(p[1], q[1]) - R, 0), min(max(p[1], q[1]) + R + 1, W)
    gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    py, px, qy, qx = float(p[0]), float(p[1]), float(q[0]), float(q[1])
    vy, vx = qy - py, qx - px
    L2 = vy * vy + vx * vx
    t = np.clip(((gy - py) * vy + (gx - px) * vx) / L2, 0.0, 1.0) if L2 > 0 else np.zeros_like(gy)
    d2 = (gy - (py + t * vy)) ** 2 + (gx - (px + t * vx)) ** 2
    mask[y0:y1, x0:x1] |= d2 <= (r * r + 0.25)


def _converging_groups(eps: list[Endpoint], used: list[bool], max_gap: float, cos_min: float):
    """Groups of still-open ends that point at each other (each lies within the ±``converge``/2
    cone of the others' directions and within ``max_gap`` of them, edge to edge), with the point
    they meet at: the least-squares intersection of their direction lines when it lies ahead of
    every end and within reach, else the mean of the ends. Yields ``(indices, (y, x))``; a group
    whose ends lie farther apart than 2·``max_gap`` is split back into its closest pairs."""
    idx = [i for i, u in enumerate(used) if not u]
    if len(idx) < 2:
        return
    P = np.array([[eps[i].y, eps[i].x] for i in idx], np.float64)
    D = np.array([[eps[i].dy, eps[i].dx] for i in idx], np.float64)
    halfw = np.array([eps[i].width / 2 for i in idx])
    diff = P[None, :, :] - P[:, None, :]
    dist_c = np.linalg.norm(diff, axis=2)
    gap = dist_c - halfw[:, None] - halfw[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        u = diff / dist_c[..., None]
        ci = np.einsum("ijk,ik->ij", u, D)
    ok = (gap <= max_gap) & (ci >= cos_min) & (ci.T >= cos_min) & (dist_c > 0)
    # or their direction lines cross ahead of both, within reach (the two sides of a V or a corner)
    cross = D[:, None, 0] * D[None, :, 1] - D[:, None, 1] * D[None, :, 0]          # d_i × d_j
    with np.errstate(invalid="ignore", divide="ignore"):
        ti = (diff[..., 0] * D[None, :, 1] - diff[..., 1] * D[None, :, 0]) / cross   # p_i + t_i d_i = p_j + t_j d_j
        tj = (diff[..., 0] * D[:, None, 1] - diff[..., 1] * D[:, None, 0]) / cross
    reach = max_gap / 2 + halfw[:, None]
    ok |= (np.abs(cross) > 0.2) & (ti >= -0.5) & (tj >= -0.5) & (ti <= reach) & (tj <= reach.T) & (gap <= max_gap)
    n, comp = _components(ok)
    for c in range(n):
        members = np.nonzero(comp == c)[0]
        if len(members) < 2:
            continue
        if dist_c[np.ix_(members, members)].max() > 2 * max_gap:
            sub = np.zeros_like(ok)
            sub[np.ix_(members, members)] = ok[np.ix_(members, members)]
            taken = set()
            ii, jj = np.nonzero(np.triu(sub, 1))
            for k in np.argsort(gap[ii, jj], kind="stable"):
                a, b = int(ii[k]), int(jj[k])
                if a in taken or b in taken:
                    continue
                taken |= {a, b}
                yield [idx[a], idx[b]], _meeting_point(P[[a, b]], D[[a, b]], max_gap)
            continue
        yield [idx[m] for m in members], _meeting_point(P[members], D[members], max_gap)


def _components(adj: np.ndarray) -> tuple[int, np.ndarray]:
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components
    return connected_components(csr_matrix(adj), directed=False)


def _meeting_point(P: np.ndarray, D: np.ndarray, max_gap: float) -> tuple[int, int]:
    """Where ends at P (y, x) with outward directions D meet: the least-squares intersection of
    their direction lines if it lies ahead of every end within ``max_gap`` + 2 px, else their mean."""
    A = np.zeros((2, 2))
    b = np.zeros(2)
    for p, d in zip(P, D):
        M = np.eye(2) - np.outer(d, d)
        A += M
        b += M @ p
    pt = P.mean(0)
    if abs(np.linalg.det(A)) > 1e-3:
        x = np.linalg.solve(A, b)
        t = ((x - P) * D).sum(1)
        if (t >= -0.5).all() and (np.linalg.norm(x - P, axis=1) <= max_gap + 2).all():
            pt = x
    return int(round(pt[0])), int(round(pt[1]))


# Closures that ``keep_separating`` keeps even when they separate no two regions: two untapered
# ends facing each other (one stroke interrupted), ends converging on a missed junction or corner,
# and rays. Tahoma2D's rule removed true closures of these whenever another gap on the same region
# boundary stayed open (a closure only separates once all are closed). On rays (version 6) it cost
# the synthetic bench 0.979 → 0.961 recall and spared one free end on the real bench; it still
# holds for pairs with a tapered end, where it spares four.
TRUSTED_KINDS = ("pair", "converge", "ray")
# Two converging ends that each point at the other within this many degrees are one stroke
# interrupted (joined end to end), not the two sides of a corner (joined at their meeting point).
CHORD_ANGLE = 40.0


def autoclose(lines: np.ndarray, max_gap: float = 12.0, angle: float = 40.0, threshold: float = 0.5,
              walk: int | None = None, angle_step: float = 2.0, min_width: float = 1.0,
              keep_separating: bool = True, pair_first: bool = True,
              eps: list[Endpoint] | None = None, converge: float = 120.0,
              min_taper: float = 0.8, weak_reach: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Close gaps in line art (H×W ink coverage 0..1) the OpenToonz way.

    Returns ``(closed, added)``: the closed line art (input coverage, with added ink at 1) and the
    bool mask of added ink (pixels that were paper, coverage < threshold). See the module doc for
    the steps and parameters."""
    lines = np.asarray(lines, np.float32)
    drawn = lines >= threshold
    ink = _fill_specks(drawn)
    H, W = ink.shape
    walk = int(walk if walk is not None else max(10, round(max_gap)))
    if eps is None:
        eps = find_endpoints(ink, walk=walk, min_branch=1, spurs=True)     # (a windowed distance transform is not
        # exact: OpenCV's precise transform differs in the last bit with the window's alignment)
    half_cone = math.radians(angle) / 2.0
    cos_chord = math.cos(math.radians(CHORD_ANGLE))
    cos_cone = math.cos(half_cone)
    work = ink.copy()
    segments: list[tuple[tuple[int, int], tuple[int, int], float]] = []
    used = [e.spur for e in eps]         # spurs only cast rays, as weak ends (step 7)

    def draw(p, q, width, kind="ray", caps=()):
        pts = np.concatenate([np.array([p, q], np.float64), *caps]) if caps else np.array([p, q], np.float64)
        R = int(math.ceil(width / 2)) + 2
        y0, x0 = max(int(pts[:, 0].min()) - R, 0), max(int(pts[:, 1].min()) - R, 0)
        y1, x1 = min(int(np.ceil(pts[:, 0].max())) + R + 1, H), min(int(np.ceil(pts[:, 1].max())) + R + 1, W)
        piece = np.zeros((y1 - y0, x1 - x0), bool)
        _draw_segment(piece, (p[0] - y0, p[1] - x0), (q[0] - y0, q[1] - x0), width)
        if caps:
            _fill_hull(piece, np.concatenate(caps) - (y0, x0))
        piece &= ~work[y0:y1, x0:x1]
        work[y0:y1, x0:x1] |= piece
        ys, xs = np.nonzero(piece)
        segments.append((p, q, float(width), kind, (ys + y0, xs + x0)))

    # 1) endpoint pairs that face each other, closest first
    if pair_first and len(eps) > 1:
        P = np.array([[e.y, e.x] for e in eps], np.float64)
        D = np.array([[e.dy, e.dx] for e in eps], np.float64)
        halfw = np.array([e.width / 2 for e in eps])
        diff = P[None, :, :] - P[:, None, :]                       # i → j
        dist_c = np.linalg.norm(diff, axis=2)
        gap = dist_c - halfw[:, None] - halfw[None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            u = diff / dist_c[..., None]
            ci = np.einsum("ijk,ik->ij", u, D)                     # j lies along i's direction
            cj = np.einsum("ijk,jk->ij", -u, D)                    # i lies along j's direction
        ok = (gap <= max_gap) & (ci >= cos_cone) & (cj >= cos_cone) & (dist_c > 0)
        ii, jj = np.nonzero(np.triu(ok, 1))
        order = np.argsort(gap[ii, jj], kind="stable")
        for k in order:
            i, j = int(ii[k]), int(jj[k])
            if used[i] or used[j]:
                continue
            used[i] = used[j] = True
            draw((eps[i].y, eps[i].x), (eps[j].y, eps[j].x), max(min(eps[i].width, eps[j].width), min_width),
                 "pair" if min(eps[i].taper, eps[j].taper) >= min_taper else "pair_tapered",
                 (_cap(ink, eps[i]), _cap(ink, eps[j])))
    # 2) ends that converge on one point: a missed junction (3+ ends) or corner (2 ends)
    if converge and len(eps) > 1:
        for group, point in _converging_groups(eps, used, max_gap, math.cos(math.radians(converge / 2))):
            caps = [_cap(ink, eps[i]) for i in group]
            if len(group) == 2 and _facing(eps[group[0]], eps[group[1]], cos_chord):
                a, b = eps[group[0]], eps[group[1]]
                used[group[0]] = used[group[1]] = True
                draw((a.y, a.x), (b.y, b.x), max(min(a.width, b.width), min_width), "converge", tuple(caps))
                continue
            for i, cap in zip(group, caps):
                used[i] = True
                w = max(eps[i].width, min_width)
                draw((eps[i].y, eps[i].x), point, w, "converge", (cap, _disc(point, w / 2)))
            if len(group) >= 3:
                draw(point, point, 1.0, "converge", tuple(caps))
    # 3) rays from the remaining endpoints
    n_rays = max(int(round(angle / 2 / angle_step)), 0)
    for i, e in enumerate(eps):
        if used[i] and not e.spur:
            continue
        weak = e.spur or e.taper < min_taper or e.branch < 2      # drawn thinning out to end there, or a 1-px stub
        if weak and weak_reach <= 0:
            continue
        reach = full_reach = max_gap + e.width / 2 + 1.5
        if weak:          # only to ink this pass added, close by: the third end of a closed junction
            reach = min(reach, weak_reach + e.width / 2 + 1.5)
        span = full_reach + CONTINUE_LENGTH + CONTINUE_WIDTH + 3 if weak else reach
        along, (oy, ox) = _steps_along_ink(work, e.y, e.x, int(math.ceil(span + e.width)) + 1,
                                           int(math.ceil(BEND_FACTOR * full_reach + BEND_SLACK)))
        win = work[oy:oy + along.shape[0], ox:ox + along.shape[1]]
        target = (win & ~ink[oy:oy + along.shape[0], ox:ox + along.shape[1]]) if weak else None
        best = None
        base = math.atan2(e.dy, e.dx)
        for k in range(-n_rays, n_rays + 1):
            a = base + math.radians(k * angle_step)
            dy, dx = math.sin(a), math.cos(a)
            t = _ray_hit(win, along, e.y - oy, e.x - ox, dy, dx, reach, target)
            if t is None and weak:       # or the stroke resumes across the gap (CONTINUE_LENGTH)
                t = _ray_hit(win, along, e.y - oy, e.x - ox, dy, dx, full_reach)
                if t is not None and not (_continues(win, e.y - oy, e.x - ox, dy, dx, t) and
                                          _continues(win, e.y - oy + dy * t, e.x - ox + dx * t, e.dy, e.dx, 0.0)):
                    t = None
            if t is None:
                continue
            cost = t * (1.0 + 0.5 * abs(k * angle_step) / max(angle / 2, 1e-6))
            if best is None or cost < best[0]:
                best = (cost, t, dy, dx)
        if best is None:
            continue
        _, t, dy, dx = best
        q = (int(round(e.y + dy * (t + 0.5))), int(round(e.x + dx * (t + 0.5))))
        q = (min(max(q[0], 0), H - 1), min(max(q[1], 0), W - 1))
        used[i] = True
        draw((e.y, e.x), q, max(e.width, min_width), "ray", (_cap(ink, e), _disc(q, max(e.width, min_width) / 2)))
    added = work & ~ink
    if keep_separating and segments:
        _, regions = cv2.connectedComponents((~work).astype(np.uint8), connectivity=4)
        keep = np.zeros((H, W), bool)
        for p, q, width, kind, pix in segments:
            if kind in TRUSTED_KINDS or _segment_separates(work, regions, (p, q), width):
                keep[pix] = True
        added &= keep
    closed = np.where(added, np.float32(1.0), lines).astype(np.float32, copy=False)
    return closed, added


def keep_separating(ink: np.ndarray, added: np.ndarray, min_pixels: int = 2) -> np.ndarray:
    """Tahoma2D's rule for any gap closer: of the added ink (bool H×W, 8-connected pieces), keep
    the pieces whose surroundings touch at least two different flood-fill regions of the closed
    line art (``ink`` | ``added``) — the closures that stop a fill from leaking."""
    added = np.asarray(added, bool)
    if not added.any():
        return added
    closed = np.asarray(ink, bool) | added
    _, regions = cv2.connectedComponents((~closed).astype(np.uint8), connectivity=4)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(added.astype(np.uint8), connectivity=8)
    H, W = added.shape
    keep = np.zeros_like(added)
    k3 = np.ones((5, 5), np.uint8)
    for i in range(1, n):
        x, y, w, h = stats[i, :4]
        y0, y1, x0, x1 = max(y - 3, 0), min(y + h + 3, H), max(x - 3, 0), min(x + w + 3, W)
        piece = (lab[y0:y1, x0:x1] == i).astype(np.uint8)
        ring_ = (cv2.dilate(piece, k3) > 0) & ~closed[y0:y1, x0:x1]
        labs = regions[y0:y1, x0:x1][ring_]
        if labs.size:
            _, c = np.unique(labs, return_counts=True)
            if int((c >= min_pixels).sum()) >= 2:
                keep[y0:y1, x0:x1] |= piece > 0
    return keep

"""Outlines of dark fills: the line around large near-black paint (hair, ribbons, coats, bows).

In anime, a dark object is outlined by a line barely darker than its fill, so a line detector sees
only the fill's edge — and where that edge is a soft ramp (motion blur, compositing softness; 10-30
px on Violet's black ribbon against a blurred plate) it looks like the out-of-focus paint that
Sketch is taught to leave alone. :func:`dark_outlines` finds such fills classically and draws their
edge as a 1-px line at the middle of the dark-to-light ramp:

1. Luminance, smoothed (Gaussian σ = 1.5·s px, s = the frame's short side ÷ 720, so the sizes below
   mean the same at every resolution; grain and JPEG noise fall out).
2. Dark regions, over a ladder of levels — ``threshold`` (the lightest) and below it in steps of
   :data:`STEP` down to :data:`LOWEST`: at each level, 8-connected pieces of ``luma < level`` —
   apart from the ``ink`` already found and the pixel around it (a thick line would join a shadow
   band, a blurred tree behind or the hair beside into one region) — that hold a pixel below
   ``level − 0.05`` (hysteresis), of at least :data:`MIN_AREA`·s² px; dark paint in a piece larger
   than :data:`MAX_AREA` of the frame (ink included: a dark sky, a night plate) is background, not
   an object, and so is a region that merges into such a piece one level up (the darker patches
   of a night plate).
3. Character paint, not plate: a region qualifies when the ink lies within 3·s + 1 px of at least
   :data:`MIN_SUPPORT` of its edge — a drawn object is outlined for much of its edge where the
   edge is sharp; an out-of-focus post, a window, a dark sky has no drawn line along it. Regions
   nest across the ladder; each dark object is taken at the level where that share is highest
   (walking up, a region replaces the ones it holds when its share is at least theirs): a level
   too dark for the fill gives a piece of it with an unsupported edge, a level too light merges it
   with a post or a shadow band beside it, and either loses to the level that fits. No single
   luminance has to suit every object (the v4 threshold 0.35 held Violet's ribbon only between
   0.33 and 0.38).
   **Arms** (v6): a region's parts thinner than :data:`NECK` × its body (what an opening by a disc
   of that fraction of its largest inscribed radius takes off, reaching further out than that
   radius) whose own edge the ink lines for less than :data:`MIN_SUPPORT` are cut off, and what
   they held together is judged piece by piece, the cut counting as unlined edge. Out-of-focus
   plate paint can be as dark as the object it touches (Violet 070: a blurred patch beside the
   ribbon at the ribbon's very luminance, 0.31-0.33; 050: the dark stripe of a building behind
   it), so no level parts them; the union's outline bulged into the plate (070), or the stripe's
   long unlined edge sank the union under :data:`MIN_SUPPORT` and the ribbon got nothing (050).
4. The line: per pixel, the local fill level D and the local light level L′ (Gaussian-weighted
   means, σ = 12·s px, of the region's core pixels and of the pixels more than 12·s px from any
   paint below the region's level — beyond the ramp, whose lighter half would pull L′ down);
   where ``L′ − D ≥`` :data:`MIN_CONTRAST` and ``L′ ≥`` :data:`MIN_RATIO` ``· D`` (a fill darker than
   its surroundings, not a cel shadow ×0.67-0.85 of its colour), the iso-contour ``luma = (D + L′) / 2`` — its dark
   side, 1 px wide — around the pieces of ``luma < (D + L′) / 2`` that hold the region's core,
   their holes filled (light paint inside a fill is a highlight, not an outline), less the cut
   arms and the ramp nearer them than the region. A soft ramp of any width gives one line at its
   middle; where the fill meets other dark paint (no light side) no line is drawn.
5. What it returns is the ink to add: the outline where it runs within :data:`BESIDE` px of the
   ink is that ink's line already (1-2 px off, it would thicken it) and is left out, but for the
   few px by which each added piece reaches the ink, so it joins it.

Pure numpy + OpenCV: a few connected-component and distance passes, and the wide Gaussian means
run on a frame σ/3 times smaller. Work is done only where it can change the answer (issue 15, the
same output bit for bit): a level whose luminance has no core pixel is skipped, the pieces of the
whole dark area are labelled only when it is large enough to hold one over :data:`MAX_AREA`, each
level's paint is labelled on its bounding box and each region kept on its own box. The
1920×1080 bench frame: 0.475 → 0.156 s on one thread (the 7-level ladder; ≈ 0.09 s of it the
line, step 4, on the whole frame); 34 real and synthetic frames 1280×720-1920×1080: 8.8 → 4.6 s.
"""
from __future__ import annotations

import cv2
import numpy as np

from .xdog import luminance

__all__ = ["dark_outlines", "MIN_AREA", "MAX_AREA", "MIN_SUPPORT", "MIN_CONTRAST", "MIN_RATIO", "NECK"]

MIN_AREA = 1500          # px at 720 lines (×s²): ≈ 0.16 % of a 1280×720 frame
MAX_AREA = 0.2           # share of the frame: larger dark areas are background
MIN_SUPPORT = 0.3        # share of a region's edge within 3·s + 1 px of the ink already found
MIN_CONTRAST = 0.12      # light level − fill level, luminance 0..1
MIN_RATIO = 1.5          # and light level ÷ fill level
HYSTERESIS = 0.05        # a region's core is darker than its level by this much
STEP = 0.05              # the ladder of dark levels: its step
LOWEST = 0.1             # and its lowest level
DEFAULT_THRESHOLD = 0.4  # its lightest level (the node's default)
BESIDE = 3.0             # px: outline this close to the ink is the ink's line
NECK = 0.7               # arms thinner than this × a region's body are judged on their own (0: off)


def _levels(threshold: float) -> np.ndarray:
    """The ladder of dark levels tried: ``threshold`` and below it in steps of :data:`STEP`, down to
    :data:`LOWEST` (a fill at 0.05 has its core below 0.1 − :data:`HYSTERESIS`)."""
    if threshold <= LOWEST:
        return np.array([threshold])
    return np.round(np.arange(threshold, LOWEST - 1e-6, -STEP)[::-1], 4)


def _regions(luma, ink_zone, far, level, H, W, s, neck):
    """The dark regions at one ``level``: (labels, [(label, support, region)] of those that qualify
    as character paint — ``region`` a :class:`_Region`: the region, or one piece of it once its
    unlined arms are cut off (:func:`_arms`), with the rest of the region as its ``cut`` — and the
    mask of the dark background: pieces over :data:`MAX_AREA` of the frame, or None where there is
    none). ``labels`` is a :class:`_Labels` (None where no region qualifies). See steps 2-3 of the
    module doc.

    The work is done where it can change the answer: a level with no core pixel has no region; the
    pieces of the whole dark area are labelled only when it is large enough to hold one over
    :data:`MAX_AREA`; the paint is labelled on its bounding box, and each region on its own."""
    weak = luma < level
    core = luma < level - HYSTERESIS
    huge_area = MAX_AREA * H * W
    background = None
    if np.count_nonzero(weak) > huge_area:            # else no piece of it can be over MAX_AREA
        _, whole, wstats, _ = cv2.connectedComponentsWithStats(weak.astype(np.uint8), connectivity=8)
        huge = wstats[:, cv2.CC_STAT_AREA] > huge_area
        huge[0] = False
        if huge.any():
            background = huge[whole]                  # weak & huge[whole]: label 0 is not weak
    if not core.any():
        return None, [], background
    paint = weak & ~ink_zone
    if background is not None:
        paint &= ~background
    rows, cols = np.flatnonzero(paint.any(1)), np.flatnonzero(paint.any(0))
    if rows.size == 0:
        return None, [], background
    # the paint's bounding box, 1 px wider (a region's box below reaches 1 px past it)
    y0, x0 = max(rows[0] - 1, 0), max(cols[0] - 1, 0)
    y1, x1 = min(rows[-1] + 2, H), min(cols[-1] + 2, W)
    n, crop, stats, _ = cv2.connectedComponentsWithStats(paint[y0:y1, x0:x1].astype(np.uint8), connectivity=8)
    labels = _Labels(crop, y0, x0)
    kept = []
    min_area = MIN_AREA * s * s
    for i in np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= min_area):
        if i == 0:
            continue
        x, y, w, h = stats[i, :4]
        x, y = x + x0, y + y0
        ys, xs = slice(max(y - 1, 0), y + h + 1), slice(max(x - 1, 0), x + w + 1)   # the frame's border is no edge
        box = (ys, xs)
        region = crop[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0] == i
        if not (region & core[box]).any():            # a region needs a core pixel (hysteresis)
            continue
        arms = _arms(region, far[box], neck)
        if arms.any():                                   # what the arms held together is judged apart
            n_pieces, pieces = cv2.connectedComponents((region & ~arms).astype(np.uint8), connectivity=8)
            parts = [pieces == j for j in range(1, n_pieces)]
        else:
            parts = [region]
        for part in parts:
            if part.sum() < min_area:
                continue
            edge = _edge(part)                           # where it was cut off too: no line outlines a cut
            support = 1.0 - far[box][edge].mean() if edge.any() else 0.0
            if support >= MIN_SUPPORT:
                kept.append((i, support, _Region(ys.start, xs.start, part, region & ~part)))
    return (labels if kept else None), kept, background


class _Labels:
    """The labels of a level's dark paint, computed on a crop of the frame at (``y0``, ``x0``)."""

    def __init__(self, crop: np.ndarray, y0: int, x0: int):
        self.crop, self.y0, self.x0 = crop, y0, x0

    def at(self, y: int, x: int) -> int:
        """The label at frame pixel (y, x): 0 (no paint) outside the crop."""
        h, w = self.crop.shape
        y, x = y - self.y0, x - self.x0
        return int(self.crop[y, x]) if 0 <= y < h and 0 <= x < w else 0


class _Region:
    """A dark region on its box of the frame: ``mask`` (bool h×w) at (``y0``, ``x0``), and ``cut``
    (same box) the arms cut off it."""

    def __init__(self, y0: int, x0: int, mask: np.ndarray, cut: np.ndarray):
        self.y0, self.x0, self.mask, self.cut = y0, x0, mask, cut
        self.box = np.s_[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]]

    def first(self) -> tuple[int, int]:
        """The frame pixel of the mask first in raster order."""
        r, c = np.unravel_index(int(np.argmax(self.mask)), self.mask.shape)
        return self.y0 + int(r), self.x0 + int(c)

    def any_in(self, frame_mask: np.ndarray | None) -> bool:
        """Whether the region has a pixel in ``frame_mask`` (H×W bool; None: empty)."""
        return frame_mask is not None and bool(frame_mask[self.box][self.mask].any())

    def meets(self, other: "_Region") -> bool:
        """Whether the two regions share a pixel."""
        y0, x0 = max(self.y0, other.y0), max(self.x0, other.x0)
        y1 = min(self.y0 + self.mask.shape[0], other.y0 + other.mask.shape[0])
        x1 = min(self.x0 + self.mask.shape[1], other.x0 + other.mask.shape[1])
        if y0 >= y1 or x0 >= x1:
            return False
        a = self.mask[y0 - self.y0:y1 - self.y0, x0 - self.x0:x1 - self.x0]
        b = other.mask[y0 - other.y0:y1 - other.y0, x0 - other.x0:x1 - other.x0]
        return bool((a & b).any())


_SQUARE = np.ones((3, 3), np.uint8)


def _edge(region: np.ndarray) -> np.ndarray:
    """The pixels of ``region`` (bool) with a pixel outside it among their 8 neighbours (the box's
    border is no edge)."""
    return region & (cv2.erode(region.astype(np.uint8), _SQUARE, borderType=cv2.BORDER_REPLICATE) == 0)


def _arms(region: np.ndarray, far: np.ndarray, neck: float) -> np.ndarray:
    """The arms of a dark ``region`` (bool) that the ink does not outline: the parts an opening by a
    disc of ``neck`` × the region's largest inscribed radius (its holes filled) takes off — thinner
    than the body —, that reach more than that radius beyond what stays (not a corner the disc
    rounds off), and whose own edge the ink (``far``: pixels away from it) lines for less than
    :data:`MIN_SUPPORT` (``neck``: :data:`NECK` by default; 0: no arms).
    A ribbon joined to a blurred dark patch of the plate, or to the dark stripe of an out-of-focus
    building behind it, loses the patch or the stripe; a bow's thin tail, outlined on both sides,
    stays."""
    nh, holes = cv2.connectedComponents((~region).astype(np.uint8), connectivity=4)
    outside = np.zeros(nh, bool)
    outside[np.concatenate([holes[0], holes[-1], holes[:, 0], holes[:, -1]])] = True
    solid = region | ~outside[holes]                  # a highlight or a line inside the fill makes it no thinner
    dist = cv2.distanceTransform(solid.astype(np.uint8), cv2.DIST_L2, 5)
    radius = neck * float(dist.max())
    none = np.zeros_like(region)
    if neck <= 0 or radius < 2.0:
        return none
    body = (cv2.distanceTransform((dist <= radius).astype(np.uint8), cv2.DIST_L2, 5) <= radius) & solid
    n, pieces = cv2.connectedComponents((solid & ~body).astype(np.uint8), connectivity=8)
    if n <= 1:
        return none
    reach = cv2.distanceTransform((~body).astype(np.uint8), cv2.DIST_L2, 5)
    longest = np.zeros(n, np.float32)
    np.maximum.at(longest, pieces.ravel(), reach.ravel())
    edge = _edge(region)
    edge_px = np.bincount(pieces[edge], minlength=n)
    unlined = np.bincount(pieces[edge & far], minlength=n)
    support = 1.0 - unlined / np.maximum(edge_px, 1)
    drop = (longest > radius) & (support < MIN_SUPPORT)
    drop[0] = False
    return drop[pieces] & region


def _best_supported(luma, ink_zone, far, levels, H, W, s, neck) -> list[tuple[float, "_Region"]]:
    """The dark regions over the ladder, each at the level where the ink
    outlines the largest share of its edge. Regions nest (a region at one level holds those of
    the levels below); walking up, a region replaces the ones it holds when its support is at
    least their best, else they stand (a lighter level that merges the fill with a shadow band or
    a post beside it is outlined less and loses); those in an arm cut off it stand too. A region
    whose piece one level up is dark background is dropped. Returns [(level, region)], the arms
    cut off each in its ``cut``."""
    chosen: list[tuple[float, float, _Region]] = []   # (level, support, region) standing so far
    for level in levels:
        labels, kept, background = _regions(luma, ink_zone, far, level, H, W, s, neck)
        # the darker patches of a night plate: a region whose piece one level up is background
        chosen = [c for c in chosen if not (level - c[0] <= STEP + 1e-6 and c[2].any_in(background))]
        if not kept:
            continue
        standing = [(lv, sup, reg, labels.at(*reg.first())) for lv, sup, reg in chosen]   # the region holding it
        for i, sup, reg in kept:
            inside = [c[3] == i and reg.meets(c[2]) for c in standing]         # not those in a cut arm
            if all(sup >= c[1] for c, held in zip(standing, inside) if held):
                standing = [c for c, held in zip(standing, inside) if not held] + [(level, sup, reg, i)]
        chosen = [(lv, sup, reg) for lv, sup, reg, _ in standing]
    return [(lv, reg) for lv, _, reg in chosen]


def dark_outlines(image: np.ndarray, ink: np.ndarray, threshold: float = DEFAULT_THRESHOLD,
                  neck: float = NECK) -> np.ndarray:
    """The outline (H×W bool, 1 px) of the dark fills of ``image`` (H×W×C float 0..1, RGB or RGBA
    premultiplied over white) that ``ink`` (H×W bool: the lines already found) partly outlines,
    where ``ink`` lacks it: OR it with ``ink``. ``threshold``: the lightest level of the ladder of
    luminance levels below which paint is tried as dark (:func:`_levels`); ``neck``: arms thinner
    than this × a region's body are judged on their own (:func:`_arms`; 0: none, version 5)."""
    img = np.asarray(image, np.float32)
    ink = np.asarray(ink, bool)
    H, W = img.shape[:2]
    if ink.shape != (H, W):
        raise ValueError(f"ink is {ink.shape[1]}×{ink.shape[0]}, the image {W}×{H}")
    s = min(H, W) / 720.0
    luma = cv2.GaussianBlur(luminance(img), (0, 0), 1.5 * s)
    # dark paint apart from the ink (a thick line joins a shadow band, a blurred tree behind, the
    # dark hair beside into one region)
    ink_zone = cv2.dilate(ink.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    to_ink = cv2.distanceTransform((~ink).astype(np.uint8), cv2.DIST_L2, 5)
    far = to_ink > 3 * s + 1                                                    # + the px around the ink
    found = _best_supported(luma, ink_zone, far, _levels(threshold), H, W, s, neck)
    outline = np.zeros((H, W), bool)
    for level in sorted({lv for lv, _ in found}):
        dark, cut = np.zeros((H, W), bool), np.zeros((H, W), bool)
        for lv, reg in found:
            if lv == level:
                dark[reg.box] |= reg.mask
                cut[reg.box] |= reg.cut
        outline |= _edge_line(luma, dark, luma < level, luma < level - HYSTERESIS, s, cut & ~dark)
    if not outline.any():
        return outline

    # 5. not beside the ink already found (the line is there, 1-2 px off: two would make it thick),
    # but up to it: the pieces away from the ink grow back along the outline for a few px
    beside = to_ink <= BESIDE
    grown = (outline & ~beside).astype(np.uint8)
    square = np.ones((3, 3), np.uint8)
    for _ in range(int(np.ceil(BESIDE)) + 1):
        grown = cv2.dilate(grown, square) & outline
    return grown.astype(bool)


def _edge_line(luma, dark, weak, core, s, cut=None) -> np.ndarray:
    """Step 4: the 1-px iso-contour halfway between the local fill level and the local light level
    around the ``dark`` regions (taken at one level: ``weak``/``core`` its masks), not around the
    arms ``cut`` off them nor the ramp nearer those arms than the regions."""
    H, W = luma.shape
    sigma = 12 * s
    f = max(1, int(sigma // 3))                       # a blur this wide runs as well on a frame f× smaller

    def blur(a):
        small = cv2.resize(a, (max(W // f, 1), max(H // f, 1)), interpolation=cv2.INTER_AREA) if f > 1 else a
        small = cv2.GaussianBlur(small, (0, 0), sigma / f)
        return cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR) if f > 1 else small

    def local_mean(mask):
        weight = blur(mask.astype(np.float32))
        return blur(np.where(mask, luma, 0).astype(np.float32)) / np.maximum(weight, 1e-6), weight

    fill, w_fill = local_mean(dark & core)
    # the light level from paint beyond the ramp: a soft edge's lighter half would pull it down
    light, w_light = local_mean(cv2.distanceTransform((~weak).astype(np.uint8), cv2.DIST_L2, 5) > sigma)
    valid = (w_fill > 0.02) & (w_light > 0.02) & (light - fill >= MIN_CONTRAST) & (light >= MIN_RATIO * fill)
    mid = (fill + light) / 2
    below = ((luma < mid) & valid) | dark
    if cut is not None and cut.any():                 # the cut arms and their own ramp: nearer them than the regions
        to_dark = cv2.distanceTransform((~dark).astype(np.uint8), cv2.DIST_L2, 5)
        to_cut = cv2.distanceTransform((~cut).astype(np.uint8), cv2.DIST_L2, 5)
        below &= ~(to_cut < to_dark)
    nb, blabels = cv2.connectedComponents(below.astype(np.uint8), connectivity=8)
    held = np.zeros(nb, bool)
    held[blabels[dark & core]] = True
    held[0] = False
    below = held[blabels]
    # only the outer edge: light paint enclosed by the fill (a highlight, a shine) is no outline
    nh, hlabels = cv2.connectedComponents((~below).astype(np.uint8), connectivity=4)
    open_ = np.zeros(nh, bool)
    open_[np.concatenate([hlabels[0], hlabels[-1], hlabels[:, 0], hlabels[:, -1]])] = True
    below |= ~open_[hlabels]
    above = ((luma >= mid) & valid & ~below).astype(np.uint8)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    return below & (cv2.dilate(above, cross) > 0)

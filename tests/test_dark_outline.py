"""The outline of dark fills (celgraph.models.dark_outline) and Sketch's `dark_outline`, on tiny
hand-made frames whose answer is known."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import celgraph as cg
from celgraph.engine import registry
from celgraph.models.dark_outline import dark_outlines
from celgraph.nodes import sketch as sketch_nodes

if registry.get("celgraph.Sketch") is None:
    registry.register_module(sketch_nodes)

SIZE = 360                       # s = 0.5: the sizes below are those of a 720-line frame halved
CENTER, RADIUS, RAMP = (180, 180), 80, 15


def _radius():
    yy, xx = np.mgrid[:SIZE, :SIZE]
    return np.hypot(yy - CENTER[0], xx - CENTER[1])


def disc(fill=0.08, paper=0.9, radius=RADIUS, ramp=RAMP, soft_side="right"):
    """A grey disc of luminance ``fill`` on ``paper``, its edge a linear ramp ``ramp`` px wide
    centred on ``radius`` — only on the right half (x ≥ centre) when ``soft_side`` is "right", as
    Violet's ribbon against the blurred plate, and a 1-px edge on the left, where a line detector
    draws it; all round when ``soft_side`` is None. RGB H×W×3 float32."""
    r = _radius()
    t = np.clip((r - (radius - ramp / 2)) / ramp, 0, 1)
    if soft_side == "right":
        sharp = np.clip(r - radius + 0.5, 0, 1)
        t = np.where(np.mgrid[:SIZE, :SIZE][1] >= CENTER[1], t, sharp)
    luma = fill + (paper - fill) * t
    return np.repeat(luma[..., None], 3, 2).astype(np.float32)


def arc_ink(share=0.5, radius=RADIUS):
    """Drawn ink (bool) along the left ``share`` of the circle of ``radius``: the part of the outline
    a line detector found (the sharp half of :func:`disc`)."""
    ink = np.zeros((SIZE, SIZE), np.uint8)
    half = 180 * share
    cv2.ellipse(ink, CENTER[::-1], (radius, radius), 180, -half, half, 1, 1)
    return ink.astype(bool)


def encloses(outline, point):
    """Whether ``outline`` (bool) separates ``point`` (y, x) from the frame's corner (4-connected
    paper cannot reach it)."""
    paper = (~outline).astype(np.uint8)
    _, labels = cv2.connectedComponents(paper, connectivity=4)
    return labels[point] != labels[0, 0]


def test_a_dark_disc_with_a_soft_ramp_gets_a_closed_1px_outline_at_the_ramps_middle():
    ink = arc_ink(0.5)
    out = dark_outlines(disc(), ink)
    right = out & (np.mgrid[:SIZE, :SIZE][1] > CENTER[1] + 10)
    assert right.sum() > 0.6 * np.pi * RADIUS                   # the soft half is outlined (8-connected px)
    assert np.abs(_radius()[out] - RADIUS).max() <= 1.5          # at the middle of its 15-px ramp
    assert encloses(out | ink, CENTER)                           # and joins the drawn half: closed
    assert not encloses(ink, CENTER)
    assert cv2.erode(out.astype(np.uint8), np.ones((2, 2), np.uint8)).sum() == 0    # 1 px: no 2×2 block


def test_the_outline_does_not_double_a_line_already_drawn():
    """Along the sharp half the drawn arc is the outline: nothing is added beside it but the few
    px where the added half joins it."""
    ink = arc_ink(0.5)
    out = dark_outlines(disc(), ink)
    near = cv2.distanceTransform((~ink).astype(np.uint8), cv2.DIST_L2, 5) <= 1.5
    assert (out & near).sum() <= 2 * 4                           # two joins


def test_a_mid_grey_blurred_blob_gets_no_outline():
    blob = cv2.GaussianBlur(disc(fill=0.5, ramp=1, soft_side=None), (0, 0), 8)
    assert not dark_outlines(blob, arc_ink(0.5)).any()


def test_a_highlight_inside_a_dark_fill_gets_no_outline():
    img = disc()
    yy, xx = np.mgrid[:SIZE, :SIZE]
    spot = np.hypot(yy - 170, xx - 200) < 12
    img[spot] = 0.9                                              # a shine on the fill
    out = dark_outlines(img, arc_ink(0.5))
    assert encloses(out | arc_ink(0.5), CENTER)
    assert not out[np.hypot(yy - 170, xx - 200) < 20].any()


def test_a_thick_drawn_line_is_not_a_dark_fill():
    ring = np.zeros((SIZE, SIZE), np.uint8)
    cv2.circle(ring, CENTER[::-1], RADIUS, 1, 8)                  # an 8-px black line, found whole
    img = np.repeat(np.where(ring > 0, 0.0, 0.9)[..., None], 3, 2).astype(np.float32)
    assert not dark_outlines(img, ring > 0).any()


def test_a_dark_region_below_the_minimum_area_gets_no_outline():
    small = disc(radius=10, ramp=4, soft_side=None)              # ≈ 270 px < 1500·0.5² = 375 px
    assert not dark_outlines(small, arc_ink(1.0, radius=10)).any()


def test_dark_paint_that_no_drawn_line_outlines_gets_none():
    """An out-of-focus dark post or a window on the plate: dark, large, but no line along it."""
    assert not dark_outlines(disc(), np.zeros((SIZE, SIZE), bool)).any()
    assert not dark_outlines(disc(), arc_ink(0.2)).any()        # under 30 % of its edge


def test_a_dark_night_plate_filling_the_frame_gets_no_outline():
    night = disc(fill=0.9, paper=0.08, radius=60, soft_side=None)                # a light moon on a dark sky: the sky is > 20 % of the frame
    assert not dark_outlines(night, arc_ink(0.6, radius=60)).any()


def test_no_outline_where_the_fill_meets_other_dark_paint():
    img = disc()
    img[150:210, 250:300] = 0.1                                  # dark paint over the disc's right edge
    ink = arc_ink(0.5)
    out = dark_outlines(img, ink)
    assert encloses(out | ink, CENTER)                           # around disc and patch together
    assert not out[152:208, 240:298].any()                       # not between them


def test_the_ink_must_match_the_frame():
    with pytest.raises(ValueError, match="ink is 10×10"):
        dark_outlines(disc(), np.zeros((10, 10), bool))


def test_the_outline_is_seeded_by_nothing_and_repeats():
    a = dark_outlines(disc(), arc_ink(0.5))
    assert (a == dark_outlines(disc(), arc_ink(0.5))).all()


# ---- the ladder: one default for fills of any darkness ---------------------------------------------

def drawn_on(fill, paper):
    """:func:`disc` of ``fill`` on ``paper`` (soft 15-px ramp on the right), its left half's edge
    drawn as a studio draws it (a 1-px line 0.05 darker than the fill), and that line as the ink a
    line detector found."""
    img = disc(fill=fill, paper=paper)
    ink = arc_ink(0.5)
    img[ink] = max(fill - 0.05, 0.0)
    return img, ink


@pytest.mark.parametrize("paper", [0.9, 0.65], ids=["light", "mid"])
@pytest.mark.parametrize("fill", [0.1, 0.25, 0.35])
def test_dark_discs_of_any_darkness_get_their_outline_with_the_default(fill, paper):
    """The ladder tries every level up to the default: a near-black disc and a grey one on light
    and mid paper are each taken at a level that fits them and closed at the middle of the ramp."""
    img, ink = drawn_on(fill, paper)
    out = dark_outlines(img, ink)
    assert encloses(out | ink, CENTER) and not encloses(ink, CENTER)
    assert np.abs(_radius()[out] - RADIUS).max() <= 3.0                # within a fifth of the 15-px ramp of its middle


@pytest.mark.parametrize("paper", [0.9, 0.65], ids=["light", "mid"])
def test_a_fill_at_0_4_needs_the_ladder_to_reach_0_5(paper):
    """A fill's core must lie 0.05 below a level: 0.4 is past the default's lightest level (0.4,
    chosen for the background ink on real frames) and is outlined with dark_threshold 0.5."""
    img, ink = drawn_on(0.4, paper)
    assert not dark_outlines(img, ink).any()
    out = dark_outlines(img, ink, 0.5)
    assert encloses(out | ink, CENTER)


def test_a_fill_at_0_28_is_outlined_whatever_the_lightest_level_from_0_35_up():
    """v4's single threshold missed a 0.28 fill at 0.30 and lost it at 0.40 (on Violet's ribbon,
    merged with the paint beside it); over the ladder it is closed at the ramp's middle whatever
    the lightest level (the level it is taken at moves the line by 1-2 px)."""
    img, ink = drawn_on(0.28, 0.7)
    for t in (0.35, 0.4, 0.45, 0.5, 0.6):
        out = dark_outlines(img, ink, t)
        assert encloses(out | ink, CENTER)
        assert np.abs(_radius()[out] - RADIUS).max() <= 3.0


def test_a_cel_shadow_band_along_a_drawn_outline_gets_none():
    """A shadow band (the fill's colour ×0.75) inside a drawn outline, along half of it: its edge is
    half drawn line, but it is only 1.33× darker than the paint beside it, not a dark fill: no line
    along it, only a stub of a few px where each of its ends meets the drawn line (whose paper
    side lights the local light level there)."""
    r = _radius()
    x = np.mgrid[:SIZE, :SIZE][1]
    base = 0.45
    luma = np.where(r < RADIUS, base, 0.9)
    band = (r < RADIUS) & (r > RADIUS - 25) & (x < CENTER[1])
    luma[band] = 0.75 * base
    ink = np.zeros((SIZE, SIZE), np.uint8)
    cv2.circle(ink, CENTER[::-1], RADIUS, 1, 1)
    ink = ink > 0
    luma[ink] = 0.0
    img = np.repeat(luma[..., None], 3, 2).astype(np.float32)
    out = dark_outlines(img, ink)
    near = cv2.distanceTransform((~ink).astype(np.uint8), cv2.DIST_L2, 5) <= 8
    assert out.sum() <= 2 * 15 and (out <= near).all()          # its inner edge (≈ 130 px) is not drawn


def test_a_dark_plate_area_without_lines_gets_none_at_any_lightest_level():
    for t in (0.35, 0.4, 0.5, 0.6):
        assert not dark_outlines(disc(fill=0.25, paper=0.65, soft_side=None), np.zeros((SIZE, SIZE), bool), t).any()


# ---- the node -----------------------------------------------------------------------------------

def drawn_disc():
    """:func:`disc` with its sharp half inked as a studio draws it: a 2-px black line on the edge."""
    img = disc()
    line = arc_ink(0.5).astype(np.uint8)
    line = cv2.dilate(line, np.ones((2, 2), np.uint8)) > 0
    img[line] = 0.0
    return img


def _run_sketch(tmp_path, img, **params):
    path = tmp_path / "disc.png"
    cv2.imwrite(str(path), cv2.cvtColor((img * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR))
    g = cg.Graph(frames="1")
    plate = g.add("Read", name="plate", path=str(path))
    g.add("Sketch", name="sk", image=plate["image"], **params)
    r = g.run(targets=["sk"])
    return r.value("sk", "binary", 1) >= 0.5, r.value("sk", "lines", 1)


def test_sketch_closes_a_dark_objects_outline_where_its_edge_is_soft(tmp_path):
    """A line on the left (the network draws it), a 15-px ramp on the right (it does not): with
    `dark_outline` the outline is closed, without it it is open; both outputs carry the line."""
    with_, soft = _run_sketch(tmp_path, drawn_disc())
    without, _ = _run_sketch(tmp_path, drawn_disc(), dark_outline=False)
    assert encloses(with_, CENTER) and not encloses(without, CENTER)
    assert (soft[with_ & ~without] == 1.0).all()
    added = with_ & ~without
    assert added[:, CENTER[1] + 20:].sum() > RADIUS               # the soft half's line


def test_sketch_dark_threshold_below_the_fill_finds_no_dark_object(tmp_path):
    low, _ = _run_sketch(tmp_path, drawn_disc(), dark_threshold=0.05)
    without, _ = _run_sketch(tmp_path, drawn_disc(), dark_outline=False)
    assert (low == without).all()


def test_xdog_is_left_as_it_is(tmp_path):
    on, _ = _run_sketch(tmp_path, drawn_disc(), method="xdog")
    off, _ = _run_sketch(tmp_path, drawn_disc(), method="xdog", dark_outline=False)
    assert (on == off).all()


# ---- arms: dark plate paint joined to a dark object ---------------------------------------------

def with_blurred_patch(img, rows, cols, fill=0.08, sigma=4.0):
    """``img`` with a blurred dark patch of the plate (luminance ``fill`` in ``rows`` × ``cols``,
    Gaussian σ ``sigma``: out of focus) painted under it — as dark as the object it touches, so
    no level of the ladder tells them apart."""
    patch = np.full((SIZE, SIZE), 0.9, np.float32)
    patch[rows, cols] = fill
    patch = cv2.GaussianBlur(patch, (0, 0), sigma)
    return np.minimum(img, patch[..., None])


def test_a_blurred_dark_patch_beside_a_dark_disc_gets_no_outline():
    """Violet 070: an out-of-focus dark patch of the plate joins the ribbon, and the outline of the
    union bulged 40 px into the plate. The patch is an arm thinner than the disc with no drawn line
    along it: cut off, it gets no outline; the disc's own undrawn edge beside it still does."""
    img = with_blurred_patch(disc(soft_side=None, ramp=1), slice(168, 192), slice(240, 330))
    ink = arc_ink(0.8)                                           # all but the right 36° of the edge drawn
    out = dark_outlines(img, ink)
    patch_zone = np.zeros((SIZE, SIZE), bool)
    patch_zone[150:210, CENTER[1] + RADIUS + 6:] = True          # beyond the disc's edge, round the patch
    assert not out[patch_zone].any()
    right = out & (np.mgrid[:SIZE, :SIZE][1] > CENTER[1] + 40)
    assert right.sum() > 20                                      # the disc's undrawn edge above and below it
    assert np.abs(_radius()[right] - RADIUS).max() <= 3.0
    assert dark_outlines(img, ink, neck=0)[patch_zone].sum() > 40    # without the rule (v5): round the patch


def test_a_dark_disc_joined_to_a_dark_stripe_of_the_plate_is_still_outlined():
    """Violet 050: the ribbon touches the dark stripe of an out-of-focus building behind it; the
    stripe's long unlined edge took the union's support under 30 % and the ribbon got nothing. The
    stripe, an arm, is judged on its own: the disc is outlined, the stripe is not."""
    img = with_blurred_patch(disc(), slice(0, CENTER[0] - RADIUS + 10), slice(170, 190), sigma=2.0)
    ink = arc_ink(0.5)                                           # the disc alone: half its edge drawn
    out = dark_outlines(img, ink)
    right = out & (np.mgrid[:SIZE, :SIZE][1] > CENTER[1] + 10)
    assert right.sum() > 0.6 * np.pi * RADIUS                   # the soft half is outlined
    assert np.abs(_radius()[out] - RADIUS).max() <= 3.0          # at its ramp's middle, and nowhere else
    assert not out[:CENTER[0] - RADIUS - 8].any()                # nothing along the stripe
    assert not dark_outlines(img, ink, neck=0).any()            # without the rule (v5): nothing


# ---- the fast path is the v6 computation ------------------------------------------------------
# dark_outlines labels each level's paint on its bounding box, skips levels without a core pixel,
# labels the whole dark area only when it can hold a piece over MAX_AREA and keeps regions on their
# boxes. The v6 code, full-frame masks throughout, is kept here as the reference it must equal.

def _v6_regions(luma, ink_zone, far, level, H, W, s, neck):
    from celgraph.models import dark_outline as do
    weak = luma < level
    core = luma < level - do.HYSTERESIS
    _, whole, wstats, _ = cv2.connectedComponentsWithStats(weak.astype(np.uint8), connectivity=8)
    huge = wstats[:, cv2.CC_STAT_AREA] > do.MAX_AREA * H * W
    huge[0] = False
    paint = weak & ~huge[whole] & ~ink_zone
    n, labels, stats, _ = cv2.connectedComponentsWithStats(paint.astype(np.uint8), connectivity=8)
    has_core = np.zeros(n, bool)
    has_core[labels[core]] = True
    candidate = has_core & (stats[:, cv2.CC_STAT_AREA] >= do.MIN_AREA * s * s)
    candidate[0] = False
    kept = []
    for i in np.flatnonzero(candidate):
        x, y, w, h = stats[i, :4]
        box = np.s_[max(y - 1, 0):y + h + 1, max(x - 1, 0):x + w + 1]
        region = labels[box] == i
        arms = do._arms(region, far[box], neck)
        if arms.any():
            n_pieces, pieces = cv2.connectedComponents((region & ~arms).astype(np.uint8), connectivity=8)
            parts = [pieces == j for j in range(1, n_pieces)]
        else:
            parts = [region]
        for part in parts:
            if part.sum() < do.MIN_AREA * s * s:
                continue
            edge = do._edge(part)
            support = 1.0 - far[box][edge].mean() if edge.any() else 0.0
            if support >= do.MIN_SUPPORT:
                mask, cut = np.zeros((H, W), bool), np.zeros((H, W), bool)
                mask[box], cut[box] = part, region & ~part
                kept.append((i, support, mask, cut))
    return labels, kept, weak & huge[whole]


def _v6_dark_outlines(image, ink, threshold=0.4, neck=0.7):
    from celgraph.models import dark_outline as do
    from celgraph.models.xdog import luminance
    img, ink = np.asarray(image, np.float32), np.asarray(ink, bool)
    H, W = img.shape[:2]
    s = min(H, W) / 720.0
    luma = cv2.GaussianBlur(luminance(img), (0, 0), 1.5 * s)
    ink_zone = cv2.dilate(ink.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    to_ink = cv2.distanceTransform((~ink).astype(np.uint8), cv2.DIST_L2, 5)
    far = to_ink > 3 * s + 1
    chosen = []
    for level in do._levels(threshold):
        labels, kept, background = _v6_regions(luma, ink_zone, far, level, H, W, s, neck)
        standing = []
        for lv, sup, mask, cut in chosen:
            if level - lv <= do.STEP + 1e-6 and background[mask].any():
                continue
            standing.append((lv, sup, mask, cut, labels[mask][0]))
        for i, sup, mask, cut in kept:
            inside = [c[4] == i and mask[c[2]].any() for c in standing]
            if all(sup >= c[1] for c, held in zip(standing, inside) if held):
                standing = [c for c, held in zip(standing, inside) if not held] + [(level, sup, mask, cut, i)]
        chosen = [(lv, sup, mask, cut) for lv, sup, mask, cut, _ in standing]
    outline = np.zeros((H, W), bool)
    for level in sorted({c[0] for c in chosen}):
        dark, cut = np.zeros((H, W), bool), np.zeros((H, W), bool)
        for lv, _, mask, arms in chosen:
            if lv == level:
                dark |= mask
                cut |= arms
        outline |= do._edge_line(luma, dark, luma < level, luma < level - do.HYSTERESIS, s, cut & ~dark)
    if not outline.any():
        return outline
    beside = to_ink <= do.BESIDE
    grown = (outline & ~beside).astype(np.uint8)
    for _ in range(int(np.ceil(do.BESIDE)) + 1):
        grown = cv2.dilate(grown, np.ones((3, 3), np.uint8)) & outline
    return grown.astype(bool)


def busy_frame():
    """A 360×480 frame with most of what dark_outlines handles: a soft-edged dark disc half drawn,
    a blurred dark patch joined to it (an arm), a second disc at 0.3 cut by the frame's right edge,
    a dark band over 20 % of the frame at 0.3 (background at the levels above it), and a mid-grey
    blob (no core at the low levels)."""
    img = np.full((SIZE, 480, 3), 0.9, np.float32)
    img[:, :SIZE] = with_blurred_patch(disc(), slice(168, 192), slice(240, 330))
    yy, xx = np.mgrid[:SIZE, :480]
    second = np.hypot(yy - 90, xx - 470) < 60
    img[second] = 0.3
    img[SIZE - 80:, :] = np.minimum(img[SIZE - 80:, :], 0.3)    # 80 × 480 px: 22 % of the frame
    img[(yy - 60) ** 2 + (xx - 60) ** 2 < 30 ** 2] = 0.5
    ink = np.zeros((SIZE, 480), bool)
    ink[:, :SIZE] = arc_ink(0.5)
    ring = cv2.circle(np.zeros((SIZE, 480), np.uint8), (470, 90), 60, 1, 1) > 0
    ink |= ring & (xx < 440)                                     # the second disc: its left side drawn
    return img, ink


def night_plate_frame():
    """A 360×480 frame: a dark plate at 0.3 over 26 % of it (150 × 300 px, its edge drawn), a
    darker patch at 0.1 inside it with the left half of its edge drawn, and a disc at 0.2 that
    touches the plate at the levels above 0.3 (then one piece with it), its left half drawn."""
    img = np.full((SIZE, 480, 3), 0.9, np.float32)
    yy, xx = np.mgrid[:SIZE, :480]
    img[100:250, 40:340] = 0.3
    patch = np.hypot(yy - 175, xx - 190) < 40
    img[patch] = 0.1
    blob = np.hypot(yy - 175, xx - 400) < 60
    img[blob] = 0.2
    img = cv2.GaussianBlur(img, (0, 0), 1.0)
    ink = np.zeros((SIZE, 480), np.uint8)
    cv2.rectangle(ink, (38, 98), (341, 251), 1, 1)
    cv2.ellipse(ink, (190, 175), (40, 40), 180, -90, 90, 1, 1)
    cv2.ellipse(ink, (400, 175), (61, 61), 180, -90, 90, 1, 1)
    return img, ink > 0


@pytest.mark.parametrize("frame", [busy_frame, night_plate_frame])
@pytest.mark.parametrize("threshold,neck", [(0.4, 0.7), (0.6, 0.7), (0.4, 0.0), (0.35, 0.9), (0.1, 0.7)])
def test_the_outline_is_bitwise_the_v6_computation(frame, threshold, neck):
    img, ink = frame()
    ref = _v6_dark_outlines(img, ink, threshold, neck)
    assert np.array_equal(dark_outlines(img, ink, threshold, neck), ref)
    if threshold >= 0.35:
        assert ref.any()                                         # something to compare


def test_a_region_on_its_box_tells_where_it_is_and_what_it_meets():
    from celgraph.models.dark_outline import _Labels, _Region
    a = _Region(2, 3, np.array([[0, 1], [1, 1]], bool), np.zeros((2, 2), bool))     # px (2,4) (3,3) (3,4)
    b = _Region(3, 4, np.array([[1, 0], [0, 0]], bool), np.zeros((2, 2), bool))     # px (3,4)
    c = _Region(3, 5, np.ones((1, 1), bool), np.zeros((1, 1), bool))               # px (3,5): beside a
    assert a.first() == (2, 4)
    assert a.meets(b) and b.meets(a) and not a.meets(c) and not c.meets(b)
    frame = np.zeros((8, 8), bool)
    frame[3, 3] = True
    assert a.any_in(frame) and not b.any_in(frame) and not a.any_in(None)
    labels = _Labels(np.array([[0, 7], [7, 7]], np.int32), 2, 3)
    assert labels.at(2, 4) == 7 and labels.at(2, 3) == 0 and labels.at(0, 0) == 0 and labels.at(9, 9) == 0

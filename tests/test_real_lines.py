"""Gap truth cut into closed drawings, the real-line-art metrics, the studio-style generator and
the classical closer's behaviour on such drawings (issue 15), on tiny hand-made drawings."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from celgraph.models.autoclose import autoclose
from celgraph.synth.gaps import (cut_gaps, free_end_context, free_ends_joined, regions_split, score_closing,
                                 stroke_width)
from celgraph.synth.genga import STYLES, make_genga


def square(size=64, lo=12, hi=52, width=1):
    """A closed square outline, ``width`` px thick, on paper."""
    ink = np.zeros((size, size), bool)
    for k in range(width):
        ink[lo + k, lo:hi] = ink[hi - 1 - k, lo:hi] = True
        ink[lo:hi, lo + k] = ink[lo:hi, hi - 1 - k] = True
    return ink


def sample_with_one_gap(width=1):
    """The square with a 5-px gap cut in its top side: a cut_gaps-shaped dict with known truth."""
    gt = square(width=width)
    cut = gt.copy()
    cut[12:12 + width, 30:35] = False
    cut_id = np.zeros(gt.shape, np.int32)
    cut_id[gt & ~cut] = 1
    return {"lines": cut.astype(np.float32), "gt": gt.astype(np.float32), "gap_mask": gt & ~cut,
            "cuts": [{"center": (32, 12), "radius": 2.5, "kind": "stroke"}], "free_ends": [], "cut_id": cut_id}


# ---------------------------------------------------------------- metrics

def test_stroke_width_reads_the_drawn_width():
    line1 = np.zeros((20, 40), bool)
    line1[10, 5:35] = True
    line3 = np.zeros((20, 40), bool)
    line3[9:12, 5:35] = True
    assert stroke_width(line1) == pytest.approx(1.0, abs=0.05)
    assert stroke_width(line3) == pytest.approx(3.0, abs=0.4)
    assert stroke_width(np.zeros((5, 5), bool)) == 0.0


def test_the_uncut_drawing_scores_perfectly_and_the_cut_one_leaks():
    s = sample_with_one_gap()
    perfect = score_closing(s["gt"] >= 0.5, s)
    assert perfect["recall"] == 1.0 and perfect["restored"] == 1.0 and perfect["spurious_pct"] == 0.0
    assert perfect["width_ratio"] == pytest.approx(1.0, abs=0.05)
    assert perfect["leaks_cut"] == 1 and perfect["leaks_left"] == 0
    raw = score_closing(s["lines"] >= 0.5, s)
    assert raw["leaks_left"] == 1 and raw["restored"] == 0.0 and raw["recall"] < 0.5


def test_a_blob_closure_is_too_wide_and_a_closure_outside_the_drawing_is_spurious():
    s = sample_with_one_gap()
    blob = s["lines"] >= 0.5
    blob[10:15, 29:36] = True                       # closes the gap, 5 px thick
    sc = score_closing(blob, s)
    assert sc["restored"] == 1.0
    assert sc["width_ratio"] > 2.5
    assert sc["spurious_pct"] > 0


def test_a_free_end_joined_to_its_neighbour_counts_and_splits_a_region():
    ink = square()
    ink[30, 12:40] = True                           # a stroke from the left side, ending freely at x=39
    ends = [(39, 30, 1.0)]
    joined = ink.copy()
    joined[30, 40:52] = True                        # extended to the right side: closes a region
    assert free_ends_joined(joined, ink, ends) == 1
    assert free_ends_joined(ink, ink, ends) == 0
    assert regions_split(joined, ink) == 1
    assert regions_split(ink, ink) == 0


def test_free_end_context_tells_facing_short_and_open_ends_apart():
    ink = np.zeros((96, 96), bool)
    ink[10:86, 80] = True                           # a long vertical stroke on the right
    ink[20, 10:74] = True                           # ends 5 px short of it: "short"
    ink[50, 10:40] = True                           # two strokes facing across 6 px: "facing" both
    ink[50, 46:60] = True                           # (its right end points into 19 px of paper: "open")
    ink[80, 10:40] = True                           # ends in the open: "open"
    by_tip = {(e_y, e_x): k for (e_x, e_y, _), k in zip(cut_gaps(ink, n_cuts=0)["free_ends"], free_end_context(ink))}
    assert by_tip[(20, 73)] == "short"
    assert by_tip[(50, 39)] == by_tip[(50, 46)] == "facing"
    assert by_tip[(50, 59)] == "open" and by_tip[(80, 39)] == "open"
    far = ink.copy()
    far[20, 60:74] = False                          # now 19 px short: beyond 12 px, "open"
    assert dict(zip([(y, x) for x, y, _ in cut_gaps(far, n_cuts=0)["free_ends"]], free_end_context(far)))[(20, 59)] == "open"


def test_cut_gaps_truth_matches_the_pixels_and_keeps_free_ends_whole():
    ink = square(96, 10, 86, width=2)
    ink[48, 10:60] = True                           # a free stroke (T on the left, free at x=59)
    ink[48, 10:60] |= True
    a, b = cut_gaps(ink, seed=3, n_cuts=4, max_gap=8), cut_gaps(ink, seed=3, n_cuts=4, max_gap=8)
    assert np.array_equal(a["lines"], b["lines"]) and a["cuts"] == b["cuts"]      # seeded
    gt, cut = a["gt"] >= 0.5, a["lines"] >= 0.5
    assert np.array_equal(a["gap_mask"], gt & ~cut)
    assert np.array_equal(a["cut_id"] > 0, a["gap_mask"])
    assert not (cut & ~gt).any()                    # cutting only removes ink
    assert len(a["cuts"]) >= 1
    assert any(abs(x - 59) <= 1 and y == 48 for x, y, _ in a["free_ends"])
    for x, y, _ in a["free_ends"]:                  # no cut near a free end
        for c in a["cuts"]:
            assert np.hypot(c["center"][0] - x, c["center"][1] - y) > 8


# ---------------------------------------------------------------- generator

@pytest.mark.parametrize("style", STYLES)
def test_make_genga_is_seeded_and_its_coverage_is_the_scan(style):
    a = make_genga(5, 256, 256, style=style)
    b = make_genga(5, 256, 256, style=style)
    assert np.array_equal(a["lines"], b["lines"]) and a["style"] == style
    lum = a["rgb"] @ np.float32([0.2126, 0.7152, 0.0722])
    np.testing.assert_allclose(a["lines"], np.clip(1 - lum, 0, 1), atol=1e-5)
    assert np.array_equal(a["ink"], a["lines"] >= 0.5)
    assert 0.002 < a["ink"].mean() < 0.2
    assert not np.array_equal(a["lines"], make_genga(6, 256, 256, style=style)["lines"])


def test_genga_style_is_aliased_and_pencil_has_faint_construction_lines():
    g = make_genga(1, 256, 256, style="genga")
    black = (g["rgb"].max(-1) < 0.05) | (g["rgb"].min(-1) > 0.95)
    coloured = ~black                                # trace lines: pure red or blue, no grey ramps
    assert set(np.unique(g["lines"][black]).round(4)) <= {0.0, 1.0}
    assert coloured.any()
    p = make_genga(1, 256, 256, style="pencil")
    assert ((p["lines"] > 0.08) & (p["lines"] < 0.4)).sum() > 50


def test_genga_drawings_hold_free_ends_closed_regions_and_junctions():
    d = make_genga(2, 384, 384, style="pen")
    c = cut_gaps(d["ink"], seed=0, n_cuts=10)
    assert len(c["free_ends"]) >= 10                 # strands, folds, hatching, notes
    n, _ = cv2.connectedComponents((~d["ink"]).astype(np.uint8), connectivity=4)
    assert n - 1 >= 10                               # many closed regions
    assert sum(k["kind"] == "junction" for k in c["cuts"]) >= 1


# ---------------------------------------------------------------- the classical closer

def test_autoclose_continues_a_2px_stroke_at_2px():
    s = sample_with_one_gap(width=2)
    closed, added = autoclose(s["lines"], max_gap=12)
    sc = score_closing(closed >= 0.5, s)
    assert sc["restored"] == 1.0
    assert 0.8 <= sc["width_ratio"] <= 1.25


def _y_junction(cut_radius=None):
    ink = np.zeros((80, 80), np.uint8)
    c = (40, 40)
    for ang in (90, 210, 330):
        a = np.radians(ang)
        cv2.line(ink, c, (int(40 + 38 * np.cos(a)), int(40 + 38 * np.sin(a))), 1, 1, cv2.LINE_8)
    cv2.circle(ink, c, 38, 1, 1, cv2.LINE_8)
    ink = ink.astype(bool)
    if cut_radius:
        yy, xx = np.mgrid[:80, :80]
        ink &= (yy - 40) ** 2 + (xx - 40) ** 2 > cut_radius ** 2
    return ink


def test_autoclose_restores_a_missed_y_junction():
    gt = _y_junction()
    cut = _y_junction(cut_radius=4)
    closed, _ = autoclose(cut.astype(np.float32), max_gap=12)
    n_gt = cv2.connectedComponents((~gt).astype(np.uint8), connectivity=4)[0]
    n_cut = cv2.connectedComponents((~cut).astype(np.uint8), connectivity=4)[0]
    n_closed = cv2.connectedComponents((closed < 0.5).astype(np.uint8), connectivity=4)[0]
    assert n_cut < n_gt
    assert n_closed == n_gt


def _stroke_towards_a_wall(tapered: bool):
    """A 3-px horizontal stroke ending 6 px short of a vertical line, inside a closed box."""
    lines = np.zeros((60, 80), np.float32)
    cv2.rectangle(lines, (2, 2), (77, 57), 1.0, 1)
    cv2.line(lines, (60, 2), (60, 57), 1.0, 1)
    for x in range(2, 54):
        w = 3 if not tapered or x < 44 else 1
        lines[30 - w // 2:30 + w // 2 + 1, x] = 1.0
    return lines


def test_autoclose_leaves_a_tapered_free_end_open_but_closes_a_blunt_one():
    blunt, _ = autoclose(_stroke_towards_a_wall(False), max_gap=12)
    tapered, _ = autoclose(_stroke_towards_a_wall(True), max_gap=12)
    assert (blunt[30, 54:60] >= 0.5).all()
    assert not (tapered[28:33, 54:60] >= 0.5).any()
    assert (autoclose(_stroke_towards_a_wall(True), max_gap=12, min_taper=0.0)[0][30, 54:60] >= 0.5).all()


def test_autoclose_rebuilds_the_erased_piece_of_a_thick_diagonal_stroke():
    """The hull of the two end faces puts back the erased pixels themselves, not a thinner line
    beside them: every erased pixel of a 3-px diagonal is ink again."""
    gt = np.zeros((80, 80), np.uint8)
    cv2.line(gt, (5, 20), (75, 60), 1, 3, cv2.LINE_8)
    cut = gt.copy()
    cv2.circle(cut, (40, 40), 5, 0, -1)
    erased = (gt > 0) & (cut == 0)
    closed, _ = autoclose(cut.astype(np.float32), max_gap=12)
    assert erased.sum() > 20
    near = cv2.distanceTransform((closed < 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    assert (closed[erased] >= 0.5).mean() >= 0.85
    assert (near[erased] <= 1.0).all()
    off = cv2.distanceTransform((gt == 0).astype(np.uint8), cv2.DIST_L2, 5)
    assert ((closed >= 0.5) & (off > 1.0)).sum() <= 3                 # no ink added beside the stroke


def test_autoclose_finds_the_end_of_a_stroke_that_ends_in_a_tiny_loop():
    """A doubled 1-px stroke leaves 1-2 px paper specks inside it; an end that is such a loop has
    no skeleton end unless the specks are filled for the search. The specks stay paper."""
    s = sample_with_one_gap(width=1)
    lines = s["lines"].copy()
    lines[11, 26:30] = lines[13, 26:30] = 1.0     # 2×1 holes at both ends: each side ends in a loop
    lines[12, 27:29] = 0.0
    lines[11, 35:39] = lines[13, 35:39] = 1.0
    lines[12, 36:38] = 0.0
    closed, _ = autoclose(lines, max_gap=12)
    assert (closed[12, 30:35] >= 0.5).all()
    assert (closed[12, 27:29] < 0.5).all() and (closed[12, 36:38] < 0.5).all()


def test_autoclose_keeps_a_closure_whose_region_leaks_through_another_gap():
    """Tahoma2D's rule alone drops the closure of a clean 5-px gap when a second gap of the same
    outline is too wide to close (the inside still leaks, so the closure separates nothing); a
    colourist still wants the first gap closed."""
    s = sample_with_one_gap(width=2)
    lines = s["lines"].copy()
    lines[50:52, 16:48] = 0.0                       # the bottom side: a 32-px gap, out of reach
    closed, _ = autoclose(lines, max_gap=12)
    assert (closed[12:14, 30:35] >= 0.5).all()
    assert not (closed[50:52, 22:42] >= 0.5).any()


def test_autoclose_joins_an_interrupted_curve_end_to_end():
    """Two ends of one gently curved stroke point at each other within 40°: joined along the curve,
    not at the corner their direction lines meet (which lies off the stroke)."""
    gt = np.zeros((90, 140), np.uint8)
    cv2.ellipse(gt, (70, 120), (100, 70), 0, 200, 340, 1, 1, cv2.LINE_8)   # a wide arc, 1 px
    cut = gt.copy()
    cut[:, 62:71] = 0
    erased = (gt > 0) & (cut == 0)
    closed, added = autoclose(cut.astype(np.float32), max_gap=12, keep_separating=False)
    d = cv2.distanceTransform((gt == 0).astype(np.uint8), cv2.DIST_L2, 5)
    assert added.any()
    assert d[added].max() <= 1.5                       # the added ink lies on the arc
    near = cv2.distanceTransform((~(closed >= 0.5)).astype(np.uint8), cv2.DIST_L2, 5)
    assert (near[erased] <= 1.0).all()


def test_autoclose_joins_the_third_end_of_a_junction_to_the_closure_of_the_other_two():
    """A cut at a T junction leaves two ends of the bar, joined to each other, and the stem's end,
    which here thins out (drawn tapered) and so is never extended to the drawing's ink. It still
    meets the ink the pass just added, a few px ahead: without that the two halves of the box above
    the bar stay one region."""
    lines = np.zeros((64, 64), np.float32)
    cv2.rectangle(lines, (0, 0), (63, 63), 1.0, 1)    # the box is the frame's edge: no paper outside
    lines[31:33, :] = 1.0                              # the bar, 2 px
    lines[31:33, 28:36] = 0.0                          # its cut: an 8-px gap
    for y in range(1, 28):                             # the stem, 3 px wide, thinning over its last 8 px
        w = 3 if y < 20 else 1
        lines[y, 32 - w // 2:32 + w // 2 + 1] = 1.0
    closed, _ = autoclose(lines, max_gap=12)
    _, regions = cv2.connectedComponents((closed < 0.5).astype(np.uint8), connectivity=4)
    assert regions.max() == 3                           # above-left, above-right, below
    old, _ = autoclose(lines, max_gap=12, weak_reach=0)
    _, regions = cv2.connectedComponents((old < 0.5).astype(np.uint8), connectivity=4)
    assert regions.max() == 2


def _hook_beside_a_line(gap: int = 6):
    """A vertical line with a branch that leaves it, turns down and comes back to end ``gap`` px
    short of it: the end's ray meets ink of the same connected drawing, but only the long way round."""
    lines = np.zeros((70, 60), np.float32)
    cv2.rectangle(lines, (0, 0), (59, 69), 1.0, 1)       # the frame's edge closes every region
    lines[:, 20] = 1.0                                    # the line
    lines[30, 20:41] = 1.0                                # the branch: right,
    lines[30:46, 40] = 1.0                                # down,
    lines[45, 21 + gap:41] = 1.0                          # and back left, ending `gap` px short
    return lines


def test_autoclose_closes_a_gap_to_ink_the_end_reaches_only_the_long_way_round():
    """A ray that hits ink connected to its own stroke is a bend only when the way along the ink is
    short; here it is ~60 px for a 6-px gap, so the box the hook draws is closed."""
    lines = _hook_beside_a_line(6)
    closed, _ = autoclose(lines, max_gap=12)
    assert (closed[45, 21:27] >= 0.5).all()
    n_open = cv2.connectedComponents((lines < 0.5).astype(np.uint8), connectivity=4)[0]
    n_closed = cv2.connectedComponents((closed < 0.5).astype(np.uint8), connectivity=4)[0]
    assert n_closed == n_open + 1


def test_autoclose_keeps_a_ray_whose_regions_leak_through_other_gaps():
    """A bar whose blunt end stops 8 px short of the box's wall (a T junction cut at the junction)
    is joined to the wall although both halves of the box leak through wide gaps elsewhere, so the
    closure separates nothing yet: the colourist closes those gaps next, and this one must hold."""
    lines = np.zeros((72, 72), np.float32)
    cv2.rectangle(lines, (6, 6), (65, 65), 1.0, 2)
    lines[5:9, 20:50] = 0.0                             # a 30-px gap in the top side
    lines[63:67, 20:50] = 0.0                           # and one in the bottom side
    lines[35:38, 6:56] = 1.0                            # the bar, 3 px, ending 8 px before the wall
    closed, _ = autoclose(lines, max_gap=12)
    assert (closed[35:38, 56:64] >= 0.5).all()


def _tapered_stroke_towards(beyond: str):
    """A 3-px stroke thinning to 1 px over its last 8 px, ending 8 px before a vertical line that it
    crosses (``"resumes"``: the stroke goes on beyond the line), meets (``"wall"``), or a line
    crossing its way at 17° (``"graze"``)."""
    lines = np.zeros((60, 90), np.float32)
    cv2.rectangle(lines, (0, 0), (89, 59), 1.0, 1)
    for x in range(1, 48):
        w = 3 if x < 40 else 1
        lines[30 - w // 2:30 + w // 2 + 1, x] = 1.0
    if beyond == "graze":
        cv2.line(lines, (52, 25), (88, 36), 1.0, 1)
    else:
        lines[:, 56] = 1.0
    if beyond == "resumes":
        lines[29:32, 56:] = 1.0
    return lines


def test_autoclose_joins_a_tapered_end_to_its_stroke_resuming_beyond_a_crossing():
    """A tapered end is never extended to the drawing's ink, unless one stroke goes on straight
    ahead beyond the hit: the same stroke cut next to an X crossing (CONTINUE_LENGTH)."""
    closed, _ = autoclose(_tapered_stroke_towards("resumes"), max_gap=12)
    assert (closed[30, 47:57] >= 0.5).all()
    for beyond in ("wall", "graze"):
        _, added = autoclose(_tapered_stroke_towards(beyond), max_gap=12)
        assert not added.any(), beyond


def _connector_stub(stub: int = 3):
    """Two 3-px bars joined by a 3-px connector; the lower bar is cut at the junction and the
    connector erased but for a ``stub``-px stump under the upper bar, whose skeleton branch is
    shorter than the line is wide (a thinning spur)."""
    lines = np.zeros((40, 80), np.float32)
    cv2.rectangle(lines, (0, 0), (79, 39), 1.0, 1)
    lines[12:15, :] = lines[22:25, :] = 1.0
    lines[12:25, 38:41] = 1.0
    lines[22:25, 34:45] = 0.0
    lines[15 + stub:25, 38:41] = 0.0
    return lines


def test_autoclose_joins_a_spur_left_by_a_cut_connector_to_the_closure_beside_it():
    """The stump of a connector erased next to a thick junction has no stroke end, only a spur;
    as a weak end it still reaches the closure of the bar below, and the two cells come back."""
    from celgraph.models.autoclose import find_endpoints
    lines = _connector_stub()
    ink = lines >= 0.5
    assert any(e.spur for e in find_endpoints(ink, min_branch=1, spurs=True))
    assert not any(e.spur for e in find_endpoints(ink, min_branch=1))

    def regions(a):
        return cv2.connectedComponents((a < 0.5).astype(np.uint8), connectivity=4)[0] - 1
    assert regions(autoclose(lines, max_gap=12)[0]) == 4             # above, two cells, below
    without = autoclose(lines, max_gap=12, eps=find_endpoints(ink, walk=12, min_branch=1))[0]
    assert regions(without) == 3


def test_gapfill_training_frames_mix_studio_styles():
    from celgraph.train.gapfill import degraded_frame, frame_patches
    g = degraded_frame(7, (320, 256), genga_share=1.0)
    assert np.array_equal(g["gap_mask"], (g["gt"] >= 0.5) & (g["lines"] < 0.5))
    assert (g["lines"] <= g["gt"] + 1e-6).all()                   # cutting only removes ink
    assert g["gaps"] and g["open_mask"].any() and g["endpoints"].any()
    p = frame_patches(g, np.random.default_rng(0), 2)
    assert p["deg"].shape == (2, 256, 256) and p["deg"].dtype == np.uint8
    s = degraded_frame(7, (320, 256), genga_share=0.0)            # the recipe of the bundled weights
    assert s["regions"] is not None and not np.array_equal(s["gt"], g["gt"])

"""Region matching (Colorize reference mode, match = regions) on small hand-made drawings."""
from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import cKDTree

import celgraph as cg
from celgraph.colorspace import from_working
from celgraph.engine import registry
from celgraph.models import hintfill as hf
from celgraph.models import regions as rg
from celgraph.nodes import color as color_nodes

if registry.get("celgraph.Colorize") is None:
    registry.register_module(color_nodes)

PAPER, RED, BLUE, GREEN, YELLOW, PINK = ((0.9, 0.9, 0.9), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 0.8, 0.0),
                                         (1.0, 1.0, 0.0), (1.0, 0.5, 0.7))


def draw(shapes, h=140, w=220):
    """Line art (2 px ink) from [("circle", (x, y), r) | ("rect", (x0, y0), (x1, y1)) | ("vline", x)]."""
    ink = np.zeros((h, w), np.float32)
    for kind, a, *b in shapes:
        if kind == "circle":
            cv2.circle(ink, a, b[0], 1.0, 2)
        elif kind == "rect":
            cv2.rectangle(ink, a, b[0], 1.0, 2)
        else:
            cv2.line(ink, (a, 0), (a, h - 1), 1.0, 2)
    return ink


def paint(ink, seeds):
    """Key colours: each region takes the colour of the seed point inside it ((x, y) → rgb)."""
    seg = hf.segment(ink, 0.5, 0.0)
    rgb = np.zeros(ink.shape + (3,), np.float32)
    for (x, y), c in seeds.items():
        rgb[seg.labels == seg.labels[y, x]] = c
    rgb[ink >= 0.5] = 0.0
    return rgb


def match(ink_t, ink_k, key_rgb):
    st, sk = hf.segment(ink_t, 0.5, 0.0), hf.segment(ink_k, 0.5, 0.0)
    r = rg.match_regions(st, sk, key_color=rg.key_colors(sk, key_rgb))
    return st, sk, r


def key_colour_of(st, sk, r, key_rgb, x, y):
    """The key colour the t region at (x, y) was matched to (None = no match)."""
    j = r["match"][st.labels[y, x]]
    if j == 0:
        return None
    ys, xs = np.nonzero((sk.labels == j) & ~sk.ink)
    return tuple(np.round(key_rgb[ys[0], xs[0]], 3))


def test_a_region_that_moved_far_is_matched_by_shape_and_neighbours():
    # a bar moves 110 px across the frame (far beyond its own size: where it lands, the key has paper)
    key = draw([("circle", (45, 45), 18), ("rect", (130, 25), (170, 65)), ("rect", (20, 100), (80, 114))])
    t = draw([("circle", (45, 45), 18), ("rect", (130, 25), (170, 65)), ("rect", (130, 100), (190, 114))])
    key_rgb = paint(key, {(5, 5): PAPER, (45, 45): RED, (150, 45): BLUE, (50, 107): GREEN})
    st, sk, r = match(t, key, key_rgb)
    assert key_colour_of(st, sk, r, key_rgb, 160, 107) == GREEN
    assert key_colour_of(st, sk, r, key_rgb, 45, 45) == RED
    assert key_colour_of(st, sk, r, key_rgb, 150, 45) == BLUE
    assert key_colour_of(st, sk, r, key_rgb, 5, 5) == PAPER
    # what the old flow method would see: the bar's pixels land on paper in the key
    assert sk.labels[107, 160] == sk.labels[5, 5]


def test_two_look_alike_regions_are_told_apart_by_their_neighbours():
    # two equal circles, one in the red half and one in the blue half; in t the red half has grown
    # and its circle sits exactly where the blue half's circle was in the key
    key = draw([("vline", 110), ("circle", (55, 70), 12), ("circle", (165, 70), 12)])
    t = draw([("vline", 190), ("circle", (165, 70), 12), ("circle", (205, 70), 12)], w=220)
    key_rgb = paint(key, {(5, 5): RED, (215, 5): BLUE, (55, 70): YELLOW, (165, 70): GREEN})
    st, sk, r = match(t, key, key_rgb)
    assert key_colour_of(st, sk, r, key_rgb, 5, 5) == RED
    assert key_colour_of(st, sk, r, key_rgb, 215, 5) == BLUE
    assert key_colour_of(st, sk, r, key_rgb, 165, 70) == YELLOW       # inside red, like the key's yellow one
    assert key_colour_of(st, sk, r, key_rgb, 205, 70) == GREEN


def test_a_new_region_with_no_match_is_unsure_and_never_given_a_colour(tmp_path):
    key = draw([("circle", (60, 70), 30), ("rect", (130, 30), (190, 110))])
    t = draw([("circle", (60, 70), 30), ("rect", (130, 30), (190, 110)), ("rect", (150, 62), (196, 78))])
    key_rgb = paint(key, {(5, 5): PAPER, (60, 70): RED, (140, 40): BLUE})
    st, sk, r = match(t, key, key_rgb)
    assert r["match"][st.labels[70, 170]] == 0                         # the new bar: no match
    assert key_colour_of(st, sk, r, key_rgb, 140, 40) == BLUE          # the rest of the box still matches
    # through the node: the new region is transparent and flagged, the others are coloured
    out = tmp_path / "in"
    out.mkdir()
    from celgraph.nodes.io import write_image
    for f, ink in ((1, key), (2, t)):
        write_image(out / f"lines.{f:04d}.png", np.repeat(1 - ink[:, :, None], 3, 2))
    write_image(out / "key.png", key_rgb)
    g = cg.Graph(frames="1-2")
    lines = g.add("Read", name="lines", path=str(out / "lines.####.png"))
    ink = g.add("ToLineArt", name="ink", image=lines["image"])
    ref = g.add("Read", name="key", path=str(out / "key.png"))
    g.add("Colorize", name="col", mode="reference", lines=ink["lines"], reference=ref["image"], close_gaps=0.0,
          flow_cue=0.0)                                                 # regions alone
    g.add("Colorize", name="col_flow", mode="reference", lines=ink["lines"], reference=ref["image"],
          close_gaps=0.0, backend="dis")                                # + the flow cue (default)
    res = cg.Engine(tmp_path / "cache").run(g, frames=[2])
    fill, unsure = res.value("col", "fill", 2), res.value("col", "unsure", 2)
    assert fill[70, 170, 3] == 0.0 and unsure[70, 170] == 1.0
    assert np.allclose(fill[70, 60], RED + (1.0,), atol=0.01) and unsure[70, 60] == 0.0
    assert np.allclose(fill[40, 140], BLUE + (1.0,), atol=0.01)
    # with the flow cue the new bar shows the colour of the box it is drawn in, and stays flagged
    fill, unsure = res.value("col_flow", "fill", 2), res.value("col_flow", "unsure", 2)
    assert unsure[70, 170] == 1.0 and (fill[70, 170, 3] == 0.0 or np.allclose(fill[70, 170], BLUE + (1.0,), atol=0.01))
    assert np.allclose(fill[70, 60], RED + (1.0,), atol=0.01) and unsure[70, 60] == 0.0


def test_global_motion_recovers_a_rotation_and_scale():
    key = draw([("circle", (60, 50), 20), ("rect", (120, 30), (180, 60)), ("rect", (40, 95), (70, 130)),
                ("circle", (160, 105), 12)], h=150)
    m = cv2.getRotationMatrix2D((110, 75), 25, 0.9)
    t = cv2.warpAffine(key, m, (220, 150), flags=cv2.INTER_LINEAR)
    t = (t >= 0.3).astype(np.float32)
    st, sk = hf.segment(t, 0.5, 0.0), hf.segment(key, 0.5, 0.0)
    got = rg.global_motion(rg.describe(st), rg.describe(sk))
    want = cv2.invertAffineTransform(m)
    pts = np.array([[60, 50], [150, 45], [55, 112]], np.float64)
    assert np.abs(pts @ got[:, :2].T + got[:, 2] - (pts @ want[:, :2].T + want[:, 2])).max() < 4.0


def _two_key_scene(tmp_path, drawings, keys, frame=2, **params):
    """Frames of line art, coloured keys at some of them; returns the fill of ``frame``."""
    from celgraph.nodes.io import write_image
    out = tmp_path / "in"
    out.mkdir()
    for f, ink in enumerate(drawings, start=1):
        write_image(out / f"lines.{f:04d}.png", np.repeat(1 - ink[:, :, None], 3, 2))
    for f, rgb in keys.items():
        write_image(out / f"key.{f:04d}.png", rgb)
    g = cg.Graph(frames=f"1-{len(drawings)}")
    lines = g.add("Read", name="lines", path=str(out / "lines.####.png"))
    ink = g.add("ToLineArt", name="ink", image=lines["image"])
    ref = g.add("Read", name="key", path=str(out / "key.####.png"), missing="black")
    g.add("Colorize", name="col", mode="reference", lines=ink["lines"], reference=ref["image"], close_gaps=0.0,
          key_frames=sorted(keys), **params)
    fill = np.array(cg.Engine(tmp_path / "cache").run(g, frames=[frame]).value("col", "fill", frame))
    fill[..., :3] = from_working(fill[..., :3], "sRGB")      # Image values are scene-linear; keys were sRGB
    return fill


def test_a_region_only_the_later_key_has_is_coloured_from_it(tmp_path):
    a = draw([("circle", (60, 70), 30)])
    b = draw([("circle", (60, 70), 30), ("rect", (140, 40), (200, 100))])
    fill = _two_key_scene(tmp_path, [a, b, b], {1: paint(a, {(5, 5): PAPER, (60, 70): RED}),
                                                3: paint(b, {(5, 5): PAPER, (60, 70): RED, (170, 70): BLUE})})
    assert np.allclose(fill[70, 170], BLUE + (1.0,), atol=0.01)
    assert np.allclose(fill[70, 60], RED + (1.0,), atol=0.01)


def test_on_a_tie_between_keys_the_nearer_one_wins(tmp_path):
    a = draw([("circle", (60, 70), 30)])
    keys = {1: paint(a, {(5, 5): PAPER, (60, 70): RED}), 4: paint(a, {(5, 5): PAPER, (60, 70): PINK})}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert np.allclose(_two_key_scene(tmp_path / "a", [a] * 4, keys, 2)[70, 60], RED + (1.0,), atol=0.01)
    assert np.allclose(_two_key_scene(tmp_path / "b", [a] * 4, keys, 3)[70, 60], PINK + (1.0,), atol=0.01)


def test_chained_matching_follows_a_region_frame_by_frame(tmp_path):
    # the bar shrinks and moves a little each frame; after three frames it no longer looks like the
    # key's bar, but each step does
    frames = [draw([("circle", (45, 45), 18), ("rect", (20 + 12 * i, 95), (120 - 10 * i, 118 - 2 * i))])
              for i in range(4)]
    key_rgb = paint(frames[0], {(5, 5): PAPER, (45, 45): RED, (60, 105): GREEN})
    st, sk, r = match(frames[3], frames[0], key_rgb)
    assert key_colour_of(st, sk, r, key_rgb, 70, 104) != GREEN      # straight to the key: lost
    fill = _two_key_scene(tmp_path, frames, {1: key_rgb}, 4, flow_cue=0.0)      # regions alone: chained
    assert np.allclose(fill[104, 70], GREEN + (1.0,), atol=0.01)
    assert np.allclose(fill[45, 45], RED + (1.0,), atol=0.01)


def test_a_key_region_cut_by_the_frame_edge_does_not_match_a_region_far_from_it():
    # a thin bar moves a little (off its own pixels); a look-alike bar cut by the key's left edge,
    # far away, has left the frame in t: the moved bar is still the near one, not the cut one
    key = draw([("rect", (120, 60), (180, 68)), ("rect", (-20, 110), (36, 118))], h=140)
    t = draw([("rect", (120, 74), (180, 82))], h=140)
    key_rgb = paint(key, {(5, 5): PAPER, (150, 64): GREEN, (10, 114): RED})
    st, sk, r = match(t, key, key_rgb)
    assert sk.labels[114, 0] != sk.labels[5, 5]                          # the key's bar touches the edge
    assert key_colour_of(st, sk, r, key_rgb, 150, 78) == GREEN


def test_a_flow_that_votes_for_no_region_adds_no_cost():
    # the flow takes every pixel of t onto the key's lines: it says nothing for or against any match
    key = draw([("circle", (60, 70), 30), ("rect", (130, 30), (190, 110))])
    st, sk = hf.segment(key, 0.5, 0.0), hf.segment(key, 0.5, 0.0)
    ys, xs = np.nonzero(key >= 0.5)
    h, w = key.shape
    yy, xx = np.mgrid[0:h, 0:w]
    near = cKDTree(np.c_[xs, ys]).query(np.c_[xx.ravel(), yy.ravel()])[1]
    flow = np.stack([xs[near] - xx.ravel(), ys[near] - yy.ravel()], 1).reshape(h, w, 2).astype(np.float32)
    colours = rg.key_colors(sk, paint(key, {(5, 5): PAPER, (60, 70): RED, (140, 40): BLUE}))
    plain = rg.match_regions(st, sk, key_color=colours)
    with_flow = rg.match_regions(st, sk, flow, key_color=colours)
    assert np.array_equal(with_flow["match"], plain["match"])
    assert np.allclose(with_flow["cost"], plain["cost"])


def test_the_key_frame_itself_is_coloured_as_the_key_and_sure(tmp_path):
    key = draw([("circle", (60, 70), 30), ("rect", (130, 30), (190, 110))])
    key_rgb = paint(key, {(5, 5): PAPER, (60, 70): RED, (140, 40): BLUE})
    from celgraph.nodes.io import write_image
    write_image(tmp_path / "lines.0001.png", np.repeat(1 - key[:, :, None], 3, 2))
    write_image(tmp_path / "key.png", key_rgb)
    g = cg.Graph(frames="1")
    lines = g.add("Read", name="lines", path=str(tmp_path / "lines.####.png"))
    ink = g.add("ToLineArt", name="ink", image=lines["image"])
    ref = g.add("Read", name="key", path=str(tmp_path / "key.png"))
    g.add("Colorize", name="col", mode="reference", lines=ink["lines"], reference=ref["image"], close_gaps=0.0)
    res = cg.Engine(tmp_path / "cache").run(g, frames=[1])
    fill, unsure = res.value("col", "fill", 1), res.value("col", "unsure", 1)
    paper = key < 0.5
    assert unsure[paper].max() == 0.0
    want = from_working(fill, "sRGB")[:, :, :3]
    assert np.abs(want[paper] - key_rgb[paper]).max() < 0.01


def test_a_match_the_flow_agrees_with_is_sure():
    # the look-alike circles again: their costs are close (each circle is as alike to the other
    # key circle), but an exact flow takes each one onto its match: two cues agree, so it is sure
    key = draw([("vline", 110), ("circle", (55, 70), 12), ("circle", (165, 70), 12)])
    t = draw([("vline", 190), ("circle", (165, 70), 12), ("circle", (205, 70), 12)], w=220)
    key_rgb = paint(key, {(5, 5): RED, (215, 5): BLUE, (55, 70): YELLOW, (165, 70): GREEN})
    st, sk = hf.segment(t, 0.5, 0.0), hf.segment(key, 0.5, 0.0)
    h, w = t.shape
    yy, xx = np.mgrid[0:h, 0:w]
    flow = np.zeros((h, w, 2), np.float32)
    flow[..., 0] = np.where(xx < 190, xx * 110 / 190 - xx, (xx - 190) * (110 / 30) + 110 - xx)
    for cx, kx in ((165, 55), (205, 165)):
        flow[..., 0][(xx - cx) ** 2 + (yy - 70) ** 2 <= 14 ** 2] = kx - cx
    colours = rg.key_colors(sk, key_rgb)
    plain = rg.match_regions(st, sk, key_color=colours)
    r = rg.match_regions(st, sk, flow, key_color=colours)
    for x in (165, 205):
        i = st.labels[70, x]
        assert plain["confidence"][i] < 0.6 <= r["confidence"][i]
        assert r["match"][i] == plain["match"][i]
    assert key_colour_of(st, sk, r, key_rgb, 165, 70) == YELLOW


def test_one_wrong_match_does_not_drag_its_neighbours_offsets():
    # a 3×3 grid of small circles moved 10 px right; one circle matched to a far one by mistake
    centres = [(40 + 60 * i, 30 + 40 * j) for j in range(3) for i in range(3)]
    key = draw([("circle", c, 8) for c in centres])
    t = draw([("circle", (x - 10, y), 8) for x, y in centres])
    st, sk = hf.segment(t, 0.5, 0.0), hf.segment(key, 0.5, 0.0)
    dt, dk = rg.describe(st), rg.describe(sk)
    match = np.zeros(st.n + 1, np.int64)
    for x, y in centres:
        match[st.labels[y, x - 10]] = sk.labels[y, x]
    wrong = st.labels[70, 90]                                    # the middle circle → the top-left one
    match[wrong] = sk.labels[30, 40]
    sure = np.array([st.labels[y, x - 10] for x, y in centres])
    sure.sort()
    offsets, _ = rg._local_offsets(dt, dk, match, sure, np.array([[1.0, 0, 0], [0, 1.0, 0]]))
    for x, y in centres:
        i = st.labels[y, x - 10]
        if i != wrong:
            assert np.abs(offsets[i] - (10, 0)).max() < 1.0

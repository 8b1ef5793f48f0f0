"""Colorize: hint flat-fill (regions, sloppy hints, defaults, lines), reference mode, model mode."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import celgraph as cg
from celgraph.engine import registry
from celgraph.models import hintfill as hf
from celgraph.nodes import color as color_nodes
from celgraph.nodes import sketch as sketch_nodes

for _m in (color_nodes, sketch_nodes):
    if registry.get(f"celgraph.{'Colorize' if _m is color_nodes else 'Sketch'}") is None:
        registry.register_module(_m)

RED, BLUE, GREEN = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 0.8, 0.0)


def rings(h=64, w=96, gap=0):
    """Line art: a closed circle (left) and a closed square (right), 2 px ink, on paper; ``gap`` px
    cut out of the circle's right side."""
    ink = np.zeros((h, w), np.float32)
    cv2.circle(ink, (24, 32), 16, 1.0, 2)
    cv2.rectangle(ink, (56, 12), (88, 52), 1.0, 2)
    if gap:
        ink[32 - gap // 2:32 - gap // 2 + gap, 36:44] = 0.0
    return ink


def dots(shape, *pts):
    """RGBA hints: ((x, y), rgb, radius) → filled discs."""
    h = np.zeros(shape + (4,), np.float32)
    for (x, y), rgb, r in pts:
        cv2.circle(h, (x, y), r, tuple(rgb) + (1.0,), -1)
    return h


def fill(lines, hints, **kw):
    seg = hf.segment(lines, 0.5, kw.pop("close_gaps", 4.0))
    return seg, hf.fill_from_hints(seg, hints, **kw)


# ---- hints mode ---------------------------------------------------------------------------------

def test_hint_fill_never_crosses_a_closed_line():
    lines = rings()
    _, paper = cv2.connectedComponents((lines < 0.5).astype(np.uint8), connectivity=4)
    inside = paper == paper[32, 24]
    _, r = fill(lines, dots(lines.shape, ((24, 32), RED, 3)), unhinted="transparent")
    assert np.allclose(r["fill"][inside], RED)
    outside = (lines < 0.5) & ~inside
    assert (r["alpha"][outside] == 0).all()          # the red never leaks past the circle


def test_region_without_hint_gets_the_documented_default():
    lines = rings()
    hints = dots(lines.shape, ((24, 32), RED, 3), ((3, 3), BLUE, 1))       # circle + outside paper
    seg, r = fill(lines, hints)
    square = seg.labels[32, 72]
    sel = seg.labels == square
    assert (r["alpha"][sel] == 0).all() and r["unhinted"][sel].all()         # transparent and flagged
    assert not r["unhinted"][seg.labels == seg.labels[32, 24]].any()
    _, white = fill(lines, hints, unhinted="paper")
    assert np.allclose(white["fill"][sel], 1.0) and (white["alpha"][sel] == 1).all()
    _, near = fill(lines, hints, unhinted="nearest")
    assert np.allclose(near["fill"][sel], BLUE)      # its only neighbour across the line: the outside


def test_sloppy_scribble_spilling_into_a_hinted_neighbour_does_not_recolour_it():
    lines = rings()
    hints = dots(lines.shape, ((72, 32), GREEN, 2), ((3, 3), BLUE, 1))
    cv2.line(hints, (16, 32), (45, 32), RED + (1.0,), 3)        # circle scribble crossing the line into the paper
    seg, r = fill(lines, hints)
    assert np.allclose(r["fill"][32, 24], RED)
    assert np.allclose(r["fill"][5, 5], BLUE)                     # the outside keeps its own dot
    assert np.allclose(r["fill"][32, 72], GREEN)


def test_small_spill_into_an_unhinted_region_is_ignored():
    lines = rings()
    hints = dots(lines.shape, ((24, 32), BLUE, 1))
    cv2.line(hints, (58, 20), (80, 20), RED + (1.0,), 3)         # square scribble, its end past the line
    cv2.line(hints, (80, 20), (91, 20), RED + (1.0,), 3)
    seg, r = fill(lines, hints)
    assert np.allclose(r["fill"][32, 72], RED)
    outside = seg.labels == seg.labels[2, 2]
    assert r["unhinted"][outside].all()                            # the tail did not colour the outside


def test_hint_on_the_line_itself_counts_little():
    lines = rings()
    hints = dots(lines.shape, ((24, 32), RED, 2), ((72, 32), GREEN, 2))
    cv2.circle(hints, (40, 32), 1, BLUE + (1.0,), -1)             # a dot on the circle's line, mostly ink
    _, r = fill(lines, hints)
    assert np.allclose(r["fill"][32, 24], RED)


def test_gaps_up_to_close_gaps_are_closed():
    lines = rings(gap=3)
    hints = dots(lines.shape, ((24, 32), RED, 3), ((3, 3), BLUE, 1), ((72, 32), GREEN, 2))
    _, closed = fill(lines, hints, close_gaps=4.0)
    assert np.allclose(closed["fill"][32, 24], RED) and np.allclose(closed["fill"][5, 5], BLUE)
    _, leaky = fill(lines, hints, close_gaps=0.0)                  # a plain bucket fill leaks
    assert np.allclose(leaky["fill"][32, 24], leaky["fill"][5, 5])


def test_unhinted_part_split_off_by_gap_closing_inherits_its_siblings_colour():
    lines = rings(gap=3)
    _, r = fill(lines, dots(lines.shape, ((3, 3), BLUE, 1)), close_gaps=4.0)
    assert np.allclose(r["fill"][32, 24], BLUE) and not r["unhinted"][32, 24]   # as a bucket fill would


def test_lines_are_coloured_by_the_region_they_border():
    lines = rings()
    seg, r = fill(lines, dots(lines.shape, ((24, 32), RED, 3), ((3, 3), BLUE, 1), ((72, 32), GREEN, 2)))
    ink = lines >= 0.5
    assert (r["alpha"][ink] == 1).all()                            # the fill runs under the lines
    trace = hf.composite(r["fill"], r["alpha"], lines, "trace")
    on_circle = (32, 40)                                          # right edge of the circle
    assert trace[on_circle][0] > 0 or trace[on_circle][2] > 0    # a darkened region colour, not black
    assert trace[on_circle][:3].max() <= 0.45 + 1e-6
    black = hf.composite(r["fill"], r["alpha"], lines, "black")
    assert np.allclose(black[ink][:, :3], 0.0) and np.allclose(black[ink][:, 3], 1.0)
    none = hf.composite(r["fill"], r["alpha"], lines, "none")
    assert np.allclose(none[:, :, :3], r["fill"])


def test_one_hint_per_region_recovers_every_region_colour_on_synthetic_line_art():
    from celgraph.synth import make_lineart
    s = make_lineart(5, 256, 160)
    hints = hf.sample_hints(s["fill"], s["lines"], seed=0)
    seg, r = fill(s["lines"], hints)
    gt = s["regions"]
    wrong = []
    for i in np.unique(gt[gt > 0]):
        m = gt == i
        if m.sum() < 20:                                            # specks of anti-aliasing: no colour to speak of
            continue
        q = np.round(s["fill"][m] * 31).astype(int) @ np.array([1024, 32, 1])
        vals, counts = np.unique(q, return_counts=True)
        dom = q == vals[counts.argmax()]
        if np.abs(np.median(r["fill"][m][dom], 0) - s["fill"][m][dom].mean(0)).max() > 0.03:
            wrong.append(int(i))
    assert wrong == []


def test_colorize_node_hints_mode_outputs(tmp_path):
    g = cg.Graph(frames="1-2")
    clip = g.add("SynthClip", name="clip", seed=4, width=128, height=80)
    hints = g.add("ColorHints", name="hints", image=clip["image"], lines=clip["lines"])
    g.add("Colorize", name="col", lines=clip["lines"], hints=hints["hints"], line_color="trace")
    assert g.validate() == []
    r = cg.Engine(tmp_path / "cache").run(g, frames=[2])
    img, fill_, regions, unsure = (r.value("col", o, 2) for o in ("image", "fill", "regions", "unsure"))
    assert img.shape == (80, 128, 4) and fill_.shape == (80, 128, 4)
    assert regions.dtype == np.int32 and regions.min() >= 1
    assert unsure.max() == 0.0                                    # every region got a hint
    assert (img[:, :, 3] == 1).all()


def test_colorize_without_hints_is_all_transparent_and_unsure(tmp_path):
    g = cg.Graph(frames="1")
    clip = g.add("SynthClip", name="clip", seed=4, width=96, height=64)
    g.add("Colorize", name="col", lines=clip["lines"], line_color="none")
    r = cg.Engine(tmp_path / "cache").run(g)
    assert r.value("col", "image", 1)[:, :, 3].max() == 0.0
    assert r.value("col", "unsure", 1).min() == 1.0


def test_hints_of_another_size_are_an_error(tmp_path):
    g = cg.Graph(frames="1")
    clip = g.add("SynthClip", name="clip", seed=4, width=96, height=64)
    other = g.add("SynthClip", name="other", seed=4, width=64, height=64)
    g.add("Colorize", name="col", lines=clip["lines"], hints=other["image"])
    with pytest.raises(cg.NodeFailed, match="hints are 64×64"):
        cg.Engine(tmp_path / "cache").run(g)


# ---- reference mode -----------------------------------------------------------------------------

def region_accuracy(pred, frame_fill, regions, lines, min_pixels=20, tol=0.05):
    inner = cv2.distanceTransform((lines < 0.5).astype(np.uint8), cv2.DIST_L2, 3) > 1
    ok = total = 0
    for i in np.unique(regions[regions > 0]):
        m = (regions == i) & inner
        if m.sum() < min_pixels:
            continue
        total += 1
        ok += np.abs(np.median(pred[m], 0) - np.median(frame_fill[m], 0)).max() < tol
    return ok / total


def test_reference_mode_colours_later_frames_from_the_key(tmp_path):
    g = cg.Graph(frames="1-4")
    clip = g.add("SynthClip", name="clip", seed=7, width=192, height=112, sprites=2)
    g.add("Colorize", name="col", mode="reference", lines=clip["lines"], reference=clip["image"])
    r = cg.Engine(tmp_path / "cache").run(g, frames=[1, 4])
    key = r.value("col", "fill", 1)
    assert region_accuracy(key[:, :, :3], r.value("clip", "fill", 1), r.value("clip", "regions", 1),
                           r.value("clip", "lines", 1)) == 1.0
    acc = region_accuracy(r.value("col", "fill", 4)[:, :, :3], r.value("clip", "fill", 4),
                          r.value("clip", "regions", 4), r.value("clip", "lines", 4))
    assert acc >= 0.8


def test_reference_mode_takes_hints_over_the_key_and_clears_unsure(tmp_path):
    g = cg.Graph(frames="1-3")
    clip = g.add("SynthClip", name="clip", seed=7, width=160, height=96, sprites=1)
    darker = g.add("Grade", name="darker", image=clip["fill"], gain=0.5)         # hints unlike the key
    hints = g.add("ColorHints", name="hints", image=darker["image"], lines=clip["lines"])
    g.add("Colorize", name="col", mode="reference", lines=clip["lines"], reference=clip["image"],
          hints=hints["hints"], confidence=1.0)                                  # every match unsure
    r = cg.Engine(tmp_path / "cache").run(g, frames=[3])
    h = r.value("hints", "hints", 3)
    hinted = h[:, :, 3] >= 0.5
    regions, fill_ = r.value("col", "regions", 3), r.value("col", "fill", 3)
    ids = np.unique(regions[hinted])
    for i in ids:
        m = (regions == i) & hinted
        if m.sum() >= 5:                                # each hinted region carries its hint's colour
            assert np.allclose(np.median(fill_[m][:, :3], 0), np.median(h[m][:, :3], 0), atol=0.02)
    assert r.value("col", "unsure", 3)[np.isin(regions, ids)].max() == 0.0


def test_the_key_frame_is_prepared_once_for_every_frame_coloured_from_it(tmp_path, monkeypatch):
    prepared = []
    real = hf.reference_key
    monkeypatch.setattr(hf, "reference_key", lambda *a, **kw: prepared.append(1) or real(*a, **kw))
    g = cg.Graph(frames="1-4")
    clip = g.add("SynthClip", name="clip", seed=7, width=160, height=96, sprites=1)
    g.add("Colorize", name="col", mode="reference", lines=clip["lines"], reference=clip["image"], chain=False)
    first = cg.Engine(tmp_path / "cache").run(g, frames=[1, 2, 3], workers=1)
    assert len(prepared) == 1                       # three frames, one key: its regions and palettes made once
    later = cg.Engine(tmp_path / "cache").run(g, frames=[4], workers=1)    # a new process, the same store
    assert len(prepared) == 1                       # read back from the store, not made again
    again = cg.Engine(tmp_path / "cache").run(g, frames=[2, 4], workers=1, use_cache=False)
    assert len(prepared) == 3                       # no cache: made per task, and the same result
    assert np.array_equal(first.value("col", "image", 2), again.value("col", "image", 2))
    assert np.array_equal(later.value("col", "image", 4), again.value("col", "image", 4))


def _key_files(folder, key_colours):
    """Line art of two frames (rings(), then moved 3 px right) and a coloured key for frame 1: the
    circle, the square and the paper in the given colours. Returns the lines pattern and the key path."""
    from celgraph.nodes.io import write_image
    lines = rings()
    for f, shift in ((1, 0), (2, 3)):
        ink = np.roll(lines, shift, axis=1)
        write_image(folder / f"lines.{f:04d}.png", np.repeat(1 - ink[:, :, None], 3, 2))
    seg = hf.segment(lines, 0.5, 0.0)
    circle, square, paper = (seg.labels[32, 24], seg.labels[32, 72], seg.labels[3, 3])
    colours = np.zeros((seg.n + 1, 3), np.float32)
    for r, c in zip((circle, square, paper), key_colours):
        colours[r] = c
    key = np.where(seg.ink[:, :, None], 0.0, colours[seg.labels])
    write_image(folder / "key.png", key)
    return str(folder / "lines.####.png"), str(folder / "key.png")


def test_a_repainted_key_frame_recolours_the_frames_it_colours(tmp_path):
    engine = cg.Engine(tmp_path / "cache")          # one engine: its caches stay warm between the runs

    def run(key_colours):
        pattern, key_path = _key_files(tmp_path, key_colours)
        g = cg.Graph(frames="1-2")
        lines = g.add("Read", name="lines_file", path=pattern)
        ink = g.add("ToLineArt", name="ink", image=lines["image"])
        key = g.add("Read", name="key_file", path=key_path)
        g.add("Colorize", name="col", mode="reference", lines=ink["lines"], reference=key["image"],
              key_frames=[1], close_gaps=0.0)
        r = engine.run(g, targets=["col", "key_file"], frames=[1, 2], workers=1)
        return r.value("col", "fill", 2)[32, 27, :3], r.value("key_file", "image", 1)[32, 24, :3]

    red, red_key = run([RED, BLUE, (1.0, 1.0, 1.0)])
    green, green_key = run([GREEN, BLUE, (1.0, 1.0, 1.0)])   # the same lines, the circle repainted
    assert np.allclose(red, red_key, atol=1e-3) and np.allclose(green, green_key, atol=1e-3)
    assert not np.allclose(red, green, atol=0.1)


def test_reference_mode_needs_the_reference_input(tmp_path):
    g = cg.Graph(frames="1-2")
    clip = g.add("SynthClip", name="clip", seed=7, width=96, height=64)
    g.add("Colorize", name="col", mode="reference", lines=clip["lines"])
    with pytest.raises(cg.NodeFailed, match="needs the 'reference' input"):
        cg.Engine(tmp_path / "cache").run(g, frames=[2])


def test_reference_key_frames_outside_the_scene_are_a_validation_error():
    g = cg.Graph(frames="1-3")
    clip = g.add("SynthClip", name="clip", seed=7, width=96, height=64)
    g.add("Colorize", name="col", mode="reference", lines=clip["lines"], reference=clip["image"], key_frames=[9])
    assert [i.code for i in g.validate()] == ["bad_frames"]


def test_reference_mode_reads_the_frames_between_the_key_and_t():
    from pathlib import Path
    from celgraph.engine import Context, Params
    t = color_nodes.Colorize()
    params = Params({p.name: p.default for p in t.params})
    params.update(mode="reference", key_frames=[2, 9], match="flow")
    ctx = Context("col", t, params, 6, list(range(1, 11)), base_dir=Path("."))
    assert t.frames_needed(ctx) == {"lines": [6, 7, 8, 9], "reference": [9]}
    params.update(chain=False)
    assert t.frames_needed(ctx) == {"lines": [6, 9], "reference": [9]}


def test_region_matching_reads_the_nearest_key_on_each_side_and_the_frames_between_when_chained():
    from pathlib import Path
    from celgraph.engine import Context, Params
    t = color_nodes.Colorize()
    params = Params({p.name: p.default for p in t.params})
    params.update(mode="reference", key_frames=[1, 2, 9, 10])
    ctx = Context("col", t, params, 6, list(range(1, 11)), base_dir=Path("."))
    assert t.frames_needed(ctx) == {"lines": [2, 3, 4, 5, 6, 7, 8, 9], "reference": [2, 9]}   # chained
    assert t._keys(ctx) == [9, 2]                       # nearest first
    params.update(chain=False)
    assert t.frames_needed(ctx) == {"lines": [2, 6, 9], "reference": [2, 9]}
    params.update(flow_cue=1.0)                         # the flow cue alone reads only t and the keys too
    assert t.frames_needed(ctx) == {"lines": [2, 6, 9], "reference": [2, 9]}
    ctx9 = Context("col", t, params, 9, list(range(1, 11)), base_dir=Path("."))
    assert t.frames_needed(ctx9) == {"lines": [9], "reference": [9]}


# ---- model mode ---------------------------------------------------------------------------------

def test_pix2pix_trains_a_few_steps_and_its_l1_loss_decreases(tmp_path):
    from celgraph.train.colorize import TrainConfig, colorize_sample, sample_patches, train
    d = colorize_sample(12345, size=(224, 160), guide=False)      # line art alone: all colour to learn
    data = sample_patches(d, np.random.default_rng(0), 4)
    cfg = TrainConfig(arch="pix2pix_tiny", steps=12, batch=4, crop=64, lr=2e-3, d_layers=2, ndf=8,
                      out=str(tmp_path / "run"), log_every=3, eval_every=0, ckpt_every=12)
    torch.manual_seed(0)
    res = train(cfg, data=data, val=[d], echo=lambda s: None)
    assert res["step"] == 12 and len(res["l1"]) == 4
    assert res["l1"][-1] < 0.8 * res["l1"][0]
    assert (tmp_path / "run" / "colorize_pix2pix.safetensors").is_file()


def test_colorize_training_resumes_where_it_stopped(tmp_path):
    from celgraph.train.colorize import TrainConfig, colorize_sample, sample_patches, train
    d = colorize_sample(12346, size=(224, 160), guide=True)
    data = sample_patches(d, np.random.default_rng(0), 2)
    cfg = TrainConfig(arch="pix2pix_tiny", steps=6, batch=2, crop=64, d_layers=2, ndf=8,
                      out=str(tmp_path / "run"), log_every=1, eval_every=0, ckpt_every=2)
    first = train(cfg, data=data, val=[d], echo=lambda s: None, stop_at=4)
    assert first["interrupted"] and first["step"] == 4
    second = train(cfg, resume=True, data=data, val=[d], echo=lambda s: None)
    assert second["step"] == 6 and not second["interrupted"]


def test_a_shows_frames_become_a_pool_through_sketch_with_the_asked_share_of_unguided_pairs(tmp_path):
    from celgraph.nodes.io import write_image
    from celgraph.synth import make_clip
    from celgraph.train.colorize import load_pool, make_pool
    clip = make_clip(7, 192, 160, n_frames=2, flow=False)
    frames = [str(tmp_path / f"show.{i:04d}.png") for i in (1, 2)]
    for path, fr in zip(frames, clip.frames):
        write_image(path, fr["color"])
    guided = {}
    for share in (0.0, 1.0):
        pool = make_pool(tmp_path / f"pool{share}", per_frame=3, show_frames=frames, unguided=share, echo=lambda s: None)
        data = load_pool(pool)
        assert data["lines"].shape == (6, 160, 160) and data["target"].shape == (6, 160, 160, 3)
        assert data["lines"].max() > 128                   # Sketch found the ink
        guided[share] = [bool(m.any()) for m in data["mask"]]
    assert not any(guided[1.0]) and sum(guided[0.0]) >= 5   # a patch may miss every hinted region


def test_model_mode_runs_with_the_bundled_weights(tmp_path):
    assert color_nodes.bundled_weights() is not None, "the bundled Colorize weights are missing"
    g = cg.Graph(frames="1")
    clip = g.add("SynthClip", name="clip", seed=4, width=128, height=80)
    hints = g.add("ColorHints", name="hints", image=clip["image"], lines=clip["lines"])
    g.add("Colorize", name="col", mode="model", lines=clip["lines"], hints=hints["hints"])
    g.add("Colorize", name="bare", mode="model", lines=clip["lines"])
    engine = cg.Engine(tmp_path / "cache")
    r = engine.run(g)
    for node in ("col", "bare"):
        img = r.value(node, "image", 1)
        assert img.shape == (80, 128, 4) and 0 <= img.min() and img.max() <= 1
    models = [k for k in engine.objects._items if k[0] == "colorize_pix2pix"]
    assert len(models) == 1                  # both nodes ran on one loaded model (auto may add its ORT session)


def test_model_mode_without_weights_is_a_validation_error(tmp_path):
    g = cg.Graph(frames="1")
    clip = g.add("SynthClip", name="clip", seed=4, width=96, height=64)
    g.add("Colorize", name="col", mode="model", lines=clip["lines"], model_weights=str(tmp_path / "none.safetensors"))
    assert [i.code for i in g.validate()] == ["file_not_found"]


def test_converting_runs_of_equal_pixels_once_gives_the_whole_conversion():
    from celgraph import colorspace as cs
    from celgraph.nodes.color import Colorize
    img = np.zeros((40, 60, 4), np.float32)
    img[:, :30] = (0.8, 0.2, 0.1, 1.0)                      # flat fills: long runs
    img[10:20, 30:] = (0.1, 0.5, 0.9, 0.5)
    img[25, 40:45] = np.random.default_rng(0).random((5, 4), dtype=np.float32)
    assert np.array_equal(cs.node_out_runs(Colorize, img), cs.node_out(Colorize, img))
    busy = np.random.default_rng(1).random((8, 8, 4), dtype=np.float32)
    assert np.array_equal(cs.node_out_runs(Colorize, busy), cs.node_out(Colorize, busy))

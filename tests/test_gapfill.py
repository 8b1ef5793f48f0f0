"""GapFill: classical autoclose, the networks and their tiling, the node in a graph, training."""
import cv2
import numpy as np
import pytest
import torch

import celgraph as cg
from celgraph.engine import Int, LineArt, NodeType, Out, register, registry
from celgraph.models import autoclose as ac
from celgraph.models import gapfill as gf
from celgraph.nodes import lines as line_nodes

if registry.get(line_nodes.GapFill.id) is None:        # until celgraph.nodes lists the lines module
    registry.register_module(line_nodes)


def ring(gap=5, width=3, size=96, radius=30):
    """A circle outline of `width` px with a clear gap of `gap` px cut at its right side."""
    m = np.zeros((size, size), np.uint8)
    c = size // 2
    cv2.circle(m, (c, c), radius, 1, width)
    half = gap / 2 + 0.5
    if gap > 0:
            m[(np.abs(np.arange(size)[:, None] - c) < half) & (np.arange(size)[None, :] > c)] = 0
    return m.astype(np.float32)


def paper_regions(lines, thresh=0.5):
    return cv2.connectedComponents((lines < thresh).astype(np.uint8), connectivity=4)[0] - 1


class DrawnLines(NodeType):
    """A ring with a gap of `gap` px and a separate open stroke (must stay open)."""
    id, category = "test.DrawnLines", "Test"
    outputs = [Out("lines", LineArt)]
    params = [Int("gap", 5, min=1, max=20)]

    def compute(self, ctx):
        lines = ring(ctx.params.gap, size=128)
        cv2.line(lines, (8, 120), (60, 120), 1.0, 3)           # an open stroke pointing at nothing
        return {"lines": lines}


if registry.get(DrawnLines.id) is None:
    register(DrawnLines)


# ---- classical --------------------------------------------------------------------------------

def test_skeleton_of_a_straight_stroke_is_one_pixel_wide_with_two_ends():
    m = np.zeros((40, 80), bool)
    m[18:23, 10:70] = True
    sk = ac.skeletonize(m)
    assert sk[:, 20:60].sum(axis=0).max() == 1
    eps = ac.find_endpoints(m)
    assert len(eps) == 2
    left, right = sorted(eps, key=lambda e: e.x)
    assert left.dx < -0.9 and right.dx > 0.9 and 4 <= left.width <= 6


def test_classical_closes_a_drawn_5px_gap():
    lines = ring(5)
    assert paper_regions(lines) == 1
    closed, added = ac.autoclose(lines, max_gap=12, angle=60)
    assert paper_regions(closed) == 2                           # inside and outside are apart again
    assert 5 <= added.sum() <= 60                               # about gap × width, not a blob


def test_classical_leaves_an_open_stroke_open():
    lines = np.zeros((96, 96), np.float32)
    cv2.line(lines, (10, 48), (60, 48), 1.0, 3)                 # a stroke ending in open paper,
    cv2.line(lines, (20, 66), (86, 66), 1.0, 3)                 # beside a line that runs on past it
    cv2.line(lines, (75, 10), (75, 30), 1.0, 3)                 # and short of a wall 15 px ahead
    closed, added = ac.autoclose(lines, max_gap=12, angle=60)
    assert not added.any()


def test_classical_ignores_gaps_wider_than_max_gap():
    closed, added = ac.autoclose(ring(20), max_gap=8, angle=60)
    assert not added.any()


# ---- networks ---------------------------------------------------------------------------------

# the straightforward versions of autoclose's helpers that its faster ones replaced: the same
# results on every drawing (the speed-ups must not change what GapFill classical draws)

def _skeletonize_whole_box(ink, max_iter=64):
    ink = np.asarray(ink, bool)
    out = np.zeros_like(ink)
    ys, xs = np.nonzero(ink)
    if len(ys) == 0:
        return out
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    sk = np.zeros((y1 - y0 + 2, x1 - x0 + 2), np.uint8)
    sk[1:-1, 1:-1] = ink[y0:y1, x0:x1]
    luts = [lut.astype(np.uint8) for lut in (ac._LUT1, ac._LUT2)]
    for _ in range(max_iter):
        removed = 0
        for lut in luts:
            d = cv2.bitwise_and(cv2.LUT(ac._codes(sk), lut), sk)
            removed += cv2.countNonZero(d)
            sk = cv2.subtract(sk, d)
        if not removed:
            break
    out[y0:y1, x0:x1] = sk[1:-1, 1:-1].astype(bool)
    return out


def _fill_specks_with_stats(ink, max_area=4):
    n, lab, stats, _ = cv2.connectedComponentsWithStats((~ink).astype(np.uint8), connectivity=4)
    small = stats[:, cv2.CC_STAT_AREA] <= max_area
    small[0] = False
    return ink | small[lab] if small[1:].any() else ink


def _neighbour_count_float(sk):
    k = np.ones((3, 3), np.float32)
    k[1, 1] = 0
    return cv2.filter2D(sk.astype(np.uint8), cv2.CV_32F, k, borderType=cv2.BORDER_CONSTANT).astype(np.int32)


def _whole_frame_dist(ink):
    return cv2.distanceTransform(np.asarray(ink, np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _drawings():
    """Synthetic degraded line art (thin and thick strokes), a solid blob (many thinning passes) and
    strokes touching the frame's edges."""
    from celgraph.synth import degrade_lines, make_lineart
    for seed, (w, h) in [(500, (480, 270)), (501, (331, 207)), (7, (256, 256))]:
        yield degrade_lines(make_lineart(seed, width=w, height=h, with_color=False), seed + 1000, max_gap=12)["lines"]
    blob = np.zeros((200, 300), np.float32)
    cv2.circle(blob, (150, 100), 60, 1.0, -1)
    cv2.line(blob, (0, 5), (299, 190), 1.0, 3)
    cv2.rectangle(blob, (0, 0), (299, 199), 1.0, 2)
    yield blob
    yield ring(gap=5, width=4, size=128)


def test_fast_autoclose_helpers_equal_the_straightforward_ones():
    for lines in _drawings():
        drawn = lines >= 0.5
        ink = ac._fill_specks(drawn)
        assert np.array_equal(ink, _fill_specks_with_stats(drawn))
        sk = ac.skeletonize(ink)
        assert np.array_equal(sk, _skeletonize_whole_box(ink))
        assert np.array_equal(ac._neighbour_count(sk), _neighbour_count_float(sk))
        assert ac.find_endpoints(ink, min_branch=1) == ac.find_endpoints(
            ink, skeleton=_skeletonize_whole_box(ink), dist=_whole_frame_dist(ink), min_branch=1)


def test_fast_autoclose_draws_exactly_what_the_straightforward_helpers_draw(monkeypatch):
    drawings = list(_drawings())
    fast = [ac.autoclose(d) for d in drawings] + [ac.autoclose(d, angle=60, converge=0, min_taper=0) for d in drawings]
    monkeypatch.setattr(ac, "skeletonize", _skeletonize_whole_box)
    monkeypatch.setattr(ac, "_fill_specks", _fill_specks_with_stats)
    monkeypatch.setattr(ac, "_neighbour_count", _neighbour_count_float)
    slow = [ac.autoclose(d) for d in drawings] + [ac.autoclose(d, angle=60, converge=0, min_taper=0) for d in drawings]
    assert sum(int(a.sum()) for _, a in slow) > 0                  # they close something
    for (c1, a1), (c2, a2) in zip(fast, slow):
        assert np.array_equal(c1, c2) and np.array_equal(a1, a2)


def test_parameter_counts_and_receptive_fields_are_as_documented():
    assert gf.count_parameters(gf.light_unet()) == 429_067      # the FillLineGaps reference
    assert gf.count_parameters(gf.gap_unet()) == 163_809 < 500_000
    assert gf.receptive_field(gf.light_unet(), 64) == 52
    assert gf.receptive_field(gf.gap_unet(), 128) == 106


@pytest.mark.parametrize("arch", ["gap_unet", "lite", "light_unet_ref"])
def test_networks_keep_the_frame_shape(arch):
    m = gf.build(arch).eval()
    x = torch.rand(2, gf.in_channels(m), 64, 96)
    assert m(x).shape == (2, 1, 64, 96)


def random_model(seed=0):
    torch.manual_seed(seed)
    m = gf.gap_unet()
    for mod in m.modules():
        if isinstance(mod, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 2.0)
    return m.eval()


def test_tiles_equal_whole_frame_inference():
    m = random_model()
    x = np.random.default_rng(0).random((2, 70, 100)).astype(np.float32)
    whole = gf.predict_logits(m, x, tile=None)
    assert whole.shape == (70, 100) and whole.std() > 0.01
    for tile, feather in ((32, 16), (64, None)):
        tiled = gf.predict_logits(m, x, tile=tile, feather=feather, batch=3)
        assert np.abs(tiled - whole).max() < 1e-4


def test_skipped_tiles_add_nothing():
    m = random_model()
    x = np.random.default_rng(1).random((2, 64, 128)).astype(np.float32)
    need = np.zeros((64, 128), bool)
    need[10, 10] = True
    out = gf.predict_logits(m, x, tile=32, need=need)
    assert np.isfinite(out[:32, :32]).all() and np.isneginf(out[:, 64:]).all()


def test_windows_around_stroke_ends_equal_whole_frame_inference():
    m = random_model()
    x = np.random.default_rng(2).random((2, 90, 140)).astype(np.float32)
    need = np.zeros((90, 140), bool)
    need[5:20, 3:30] = True                       # touches the border
    need[60:70, 100:125] = True
    need[62:66, 110:115] = True                    # inside the other: no second window
    assert len(gf.reach_boxes(need, m.stride)) == 2
    whole = gf.predict_logits(m, x, tile=None)
    boxed = gf.predict_in_boxes(m, x, need)
    assert np.abs(boxed[need] - whole[need]).max() < 1e-4
    assert np.isneginf(boxed[40:50, 60:80]).all()


def test_folding_batchnorm_keeps_the_function():
    for m in (random_model(4), gf.light_unet(long_skip=False).eval()):
        fused = gf.fuse_for_inference(m)
        bns = [sum(isinstance(mod, torch.nn.BatchNorm2d) for mod in n.modules()) for n in (m, fused)]
        assert bns[1] < bns[0]                     # LightUNet keeps the BNs that follow a ReLU6
        assert getattr(fused, "stride", None) == getattr(m, "stride", None)
        x = torch.rand(1, gf.in_channels(m), 48, 64)
        with torch.no_grad():
            assert torch.allclose(fused(x), m(x), atol=1e-4)


def test_tiles_and_whole_frame_add_the_same_ink():
    lines = ring(6, size=128)
    cv2.line(lines, (8, 120), (60, 120), 1.0, 3)
    m = random_model(5)
    _, ref = gf.close_gaps(m, lines, inference="whole", confidence=0.3)
    _, added = gf.close_gaps(m, lines, inference="tiles", tile=32, confidence=0.3)
    assert ref.any() and np.array_equal(added, ref)


def test_windows_with_the_short_margin_close_like_a_whole_frame_pass():
    from celgraph.synth import degrade_lines, make_lineart
    model = gf.fuse_for_inference(gf.load_weights(line_nodes.bundled_weights("gapunet"))[0])
    d = degrade_lines(make_lineart(7, width=384, height=256, with_color=False), 8, max_gap=12)
    _, ref = gf.close_gaps(model, d["lines"], inference="whole")
    _, added = gf.close_gaps(model, d["lines"], inference="windows")
    assert ref.sum() > 20 and (added != ref).sum() <= 2


def test_weights_round_trip_through_safetensors(tmp_path):
    m = random_model(3)
    path = gf.save_weights(m, tmp_path / "w.safetensors", {"steps": 7})
    loaded, meta = gf.load_weights(path)
    assert meta["arch"] == "gap_unet" and meta["steps"] == "7"
    assert gf.count_parameters(loaded) == 163_809
    x = torch.rand(1, 2, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x), m(x))


@pytest.mark.parametrize("network", ["gapunet", "lite"])
def test_bundled_weights_load_with_the_documented_parameter_count(network):
    path = line_nodes.bundled_weights(network)
    assert path is not None, f"the bundled {network} weights are missing from celgraph/models/weights"
    model, meta = gf.load_weights(path)
    assert gf.count_parameters(model) == {"gapunet": 163_809, "lite": 429_067}[network]


def test_close_gaps_outputs_keep_the_input_ink():
    lines = ring(5)
    closed, added = gf.close_gaps(random_model(), lines)
    assert closed.shape == lines.shape and closed.dtype == np.float32
    assert (closed >= lines).all() and 0 <= closed.min() and closed.max() <= 1
    assert np.array_equal(added, closed > lines)


# ---- the node ---------------------------------------------------------------------------------

def gap_graph(**params):
    g = cg.Graph(frames="1")
    src = g.add("test.DrawnLines", name="src", gap=5)
    g.add("GapFill", name="fill", lines=src["lines"], **params)
    return g


def test_node_closes_the_gap_and_marks_the_added_ink_in_red(engine):
    r = engine.run(gap_graph(method="classical"), frames=[1])
    src = r.value("src", "lines", 1)
    closed, added, prev = (r.value("fill", o, 1) for o in ("lines", "added", "preview"))
    assert closed.shape == added.shape == src.shape and prev.shape == src.shape + (3,)
    assert 0 <= closed.min() and closed.max() <= 1 and 0 <= added.min() and added.max() <= 1
    assert np.array_equal(added, np.maximum(closed - src, 0))
    assert added.sum() > 0 and paper_regions(closed) == paper_regions(src) + 1
    red = added > 0
    assert np.allclose(prev[red], [1, 0, 0], atol=1e-4)        # scene-linear; OCIO maps 1 to 1.000024
    ink = (src >= 1) & ~red
    assert np.allclose(prev[ink], 0) and np.allclose(prev[(src == 0) & ~red], 1, atol=1e-4)


def test_preview_conversion_equals_converting_the_whole_frame():
    # preview_out converts paper white and solid ink once and only the other pixels one by one
    from celgraph import colorspace as cs
    rng = np.random.default_rng(3)
    lines = ring(5, size=96)
    lines[40:60, 10:30] = rng.random((20, 20), dtype=np.float32)       # anti-aliased coverage
    added = np.zeros_like(lines)
    added[44:50, 70:90] = rng.random((6, 20), dtype=np.float32)        # partial and full added ink
    added[60:62, 70:90] = 1.0
    gapfill = line_nodes.GapFill
    for ink, add in ((lines, added), (np.zeros_like(lines), np.zeros_like(added)), (np.ones_like(lines), added)):
        whole = cs.node_out(gapfill, line_nodes.preview(ink, add))
        assert np.array_equal(line_nodes.preview_out(gapfill, ink, add), whole)


def test_node_model_method_runs_in_a_graph(engine, tmp_path):
    path = gf.save_weights(random_model(), tmp_path / "w.safetensors")
    r = engine.run(gap_graph(method="model", weights=str(path), inference="tiles", tile=32), frames=[1])
    src, closed, added = (r.value(n, o, 1) for n, o in (("src", "lines"), ("fill", "lines"), ("fill", "added")))
    assert np.array_equal(added, np.maximum(closed - src, 0)) and (closed >= src).all()


def test_node_reports_missing_weights(tmp_path):
    g = gap_graph(method="model", weights=str(tmp_path / "nope.safetensors"))
    issues = g.validate()
    assert any(i.code == "file_not_found" for i in issues)


def test_node_takes_synth_clip_line_art(engine):
    g = cg.Graph(frames="1")
    clip = g.add("SynthClip", name="clip", seed=3, width=160, height=96)
    g.add("GapFill", name="fill", lines=clip["lines"], method="classical")
    r = engine.run(g, frames=[1])
    assert r.value("fill", "lines", 1).shape == (96, 160)


# ---- training ---------------------------------------------------------------------------------

def tiny_data(n=6):
    """Rings with and without a cut, as a pool of 256² patches."""
    from celgraph.train.gapfill import PATCH
    rng = np.random.default_rng(0)
    deg, gt, flags = [], [], []
    for _ in range(n):
        radius, width = int(rng.integers(30, 100)), int(rng.integers(2, 5))
        d = ring(int(rng.integers(3, 12)), width, PATCH, radius)
        deg.append(d)
        gt.append(ring(0, width, PATCH, radius))
        flags.append(ac.endpoint_map(d.shape, ac.find_endpoints(d >= 0.5)))
    u8 = lambda a: np.round(np.stack(a) * 255).astype(np.uint8)    # noqa: E731
    return {"deg": u8(deg), "gt": u8(gt), "flags": np.stack(flags).astype(np.uint8)}


def test_training_runs_and_the_loss_decreases(tmp_path):
    from celgraph.train.gapfill import TrainConfig, train
    data = tiny_data()
    events = []
    cfg = TrainConfig(steps=30, batch=2, crop=64, lr=3e-3, out=str(tmp_path / "run"), log_every=10,
                      eval_every=0, ckpt_every=10)
    res = train(cfg, data=data, val={k: v[:2] for k, v in data.items()}, echo=events.append)
    losses = [__import__("json").loads(e)["loss"] for e in events if '"train"' in e]
    assert res["step"] == 30 and not res["interrupted"]
    assert losses[-1] < losses[0]
    assert (tmp_path / "run" / "last.pt").exists() and (tmp_path / "run" / "gapfill_gap_unet.safetensors").exists()


def test_the_outside_weight_penalises_paper_beside_the_erased_stroke_only():
    from celgraph.train.gapfill import PATCH, batch_tensors
    gt = np.zeros((1, PATCH, PATCH), np.uint8)
    gt[0, 128, 100:160] = 255                       # a 1-px stroke with an antialiased fringe above it
    gt[0, 127, 100:160] = 100
    deg = gt.copy()
    deg[0, 127:129, 125:135] = 0                    # a 10-px gap
    data = {"deg": deg, "gt": gt, "flags": np.zeros_like(gt)}
    o = (PATCH - 64) // 2                           # the centre crop's origin
    _, t, w0 = batch_tensors(data, np.array([0]), 64, None, 2)
    _, _, w1 = batch_tensors(data, np.array([0]), 64, None, 2, outside=3.0)
    t, w0, w1 = t[0, 0].numpy(), w0[0, 0].numpy(), w1[0, 0].numpy()
    assert t[128 - o, 125 - o:135 - o].all() and t.sum() == 10
    assert w0[129 - o, 130 - o] == 0 and w1[129 - o, 130 - o] == 3.0       # paper below the gap
    assert w0[127 - o, 130 - o] == w1[127 - o, 130 - o] == 0               # the fringe (coverage 0.39): ignored
    assert w0[140 - o, 130 - o] == w1[140 - o, 130 - o] == 1.0             # paper away from the gap
    assert w1[128 - o, 125 - o] == w0[128 - o, 125 - o] == 1.0             # the gap itself


def test_training_resumes_where_it_stopped(tmp_path):
    from celgraph.train.gapfill import TrainConfig, train
    data = tiny_data(4)
    val = {k: v[:2] for k, v in data.items()}
    kw = dict(steps=6, batch=2, crop=64, out=str(tmp_path / "a"), log_every=100, eval_every=0, ckpt_every=100)
    train(TrainConfig(**kw), data=data, val=val, echo=lambda s: None)
    kw["out"] = str(tmp_path / "b")
    train(TrainConfig(**kw), data=data, val=val, echo=lambda s: None, stop_at=3)
    train(TrainConfig(**kw), resume=True, data=data, val=val, echo=lambda s: None)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)["model"]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


def test_training_starts_from_given_weights(tmp_path):
    """--init (a fine-tune): step 0 is the given model, not a random one; the wrong variant is refused."""
    from celgraph.models.gapfill import build, save_weights
    from celgraph.train.gapfill import TrainConfig, train
    data = tiny_data(4)
    val = {k: v[:2] for k, v in data.items()}
    torch.manual_seed(123)
    start = build("gap_unet")
    init = save_weights(start, tmp_path / "start.safetensors")
    kw = dict(steps=1, batch=2, crop=64, lr=1e-12, log_every=100, eval_every=0, ckpt_every=100)
    train(TrainConfig(**kw, out=str(tmp_path / "a"), init=str(init)), data=data, val=val, echo=lambda s: None)
    got = torch.load(tmp_path / "a" / "last.pt", weights_only=False)["model"]
    ref = start.state_dict()
    weights = [k for k in ref if k.endswith("weight")]
    assert all(torch.allclose(got[k].float(), ref[k].float(), atol=1e-6) for k in weights)
    train(TrainConfig(**kw, out=str(tmp_path / "b")), data=data, val=val, echo=lambda s: None)
    fresh = torch.load(tmp_path / "b" / "last.pt", weights_only=False)["model"]
    assert not all(torch.allclose(fresh[k].float(), ref[k].float(), atol=1e-6) for k in weights)
    with pytest.raises(ValueError, match="lite"):
        train(TrainConfig(**kw, out=str(tmp_path / "c"), init=str(init), variant="lite"), data=data, val=val,
              echo=lambda s: None)

def test_two_training_runs_give_byte_identical_weights(tmp_path):
    """The same config on the same pool trains the same weights, bit for bit (1 thread); another seed does not."""
    from safetensors.torch import load_file
    from celgraph.train.gapfill import TrainConfig, tensors_sha256, train
    data = tiny_data(4)
    val = {k: v[:2] for k, v in data.items()}
    kw = dict(steps=8, batch=2, crop=64, log_every=100, eval_every=4, ckpt_every=3)
    res = [train(TrainConfig(**kw, seed=seed, out=str(tmp_path / name)), data=data, val=val, echo=lambda s: None)
           for name, seed in (("a", 0), ("b", 0), ("c", 1))]
    a, b, c = (load_file(r["weights"]) for r in res)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert res[0]["tensors_sha256"] == res[1]["tensors_sha256"] == tensors_sha256(res[1]["weights"])
    assert res[2]["tensors_sha256"] != res[0]["tensors_sha256"]
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_a_resumed_run_ends_with_the_same_bytes(tmp_path):
    from celgraph.train.gapfill import TrainConfig, train
    data = tiny_data(4)
    val = {k: v[:2] for k, v in data.items()}
    kw = dict(steps=6, batch=2, crop=64, log_every=100, eval_every=3, ckpt_every=2)
    whole = train(TrainConfig(**kw, out=str(tmp_path / "a")), data=data, val=val, echo=lambda s: None)
    train(TrainConfig(**kw, out=str(tmp_path / "b")), data=data, val=val, echo=lambda s: None, stop_at=3)
    resumed = train(TrainConfig(**kw, out=str(tmp_path / "b")), resume=True, data=data, val=val, echo=lambda s: None)
    assert resumed["tensors_sha256"] == whole["tensors_sha256"]


def test_the_bundled_weights_recipe_draws_the_patches_of_commit_7e02ecf():
    """Patches of commit 7e02ecf's trainer (which made the bundled weights' pool), hashed there:
    a studio-style share of 0 must not draw from the frame's generator, and the 7e02ecf endpoint
    rule gives that commit's endpoint maps (seed 13 has an end autoclose's rule now drops)."""
    import hashlib
    from celgraph.train.gapfill import degraded_frame, frame_patches

    def digest(endpoints):
        h = hashlib.sha256()
        for seed in (11, 12, 13):
            d = degraded_frame(seed, (320, 256), genga_share=0.0, endpoints=endpoints)
            p = frame_patches(d, np.random.default_rng([seed, 23]), 3)
            for k in ("deg", "gt", "flags"):
                h.update(p[k].tobytes())
        return h.hexdigest()
    assert digest("7e02ecf") == "c1f454d0fac4416f05fe1c3a02d10e172ebb7e23c4c92aeff521a867c4ea544a"
    assert digest("node") != digest("7e02ecf")


def test_a_pool_of_another_recipe_is_refused(tmp_path):
    import json
    from celgraph.train.gapfill import TrainConfig, train
    pool = tmp_path / "pool"
    pool.mkdir()
    (pool / "recipe.json").write_text(json.dumps({"genga_share": 0.5}))
    with pytest.raises(ValueError, match="genga_share.*pool"):
        train(TrainConfig(steps=1, genga_share=0.0, pool=str(pool), out=str(tmp_path / "run")), echo=lambda s: None)


def test_train_command_line_parses():
    import argparse
    from celgraph.train.gapfill import add_gapfill_train_parser
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers()
    add_gapfill_train_parser(sub)
    args = ap.parse_args(["gapfill", "--variant", "lite", "--steps", "5", "--batch", "2", "--crop", "128",
                          "--out", "x", "--resume", "--seed", "3", "--init", "w.safetensors", "--genga-share", "0",
                          "--endpoints", "7e02ecf"])
    assert (args.variant, args.steps, args.batch, args.crop, args.resume, args.seed) == ("lite", 5, 2, 128, True, 3)
    assert (args.init, args.genga_share, args.endpoints) == ("w.safetensors", 0.0, "7e02ecf")
    assert callable(args.func)


@pytest.mark.slow
def test_bundled_model_closes_synthetic_gaps():
    from celgraph.synth import degrade_lines, make_lineart, metrics
    path = line_nodes.bundled_weights("gapunet")
    assert path is not None, "the bundled gapunet weights are missing"
    model, _ = gf.load_weights(path)
    d = degrade_lines(make_lineart(7, 640, 360, with_color=False), 1007, max_gap=12)
    closed, _ = gf.close_gaps(model, d["lines"])
    assert metrics.gap_recall(closed >= 0.5, d["gap_mask"]) >= metrics.gap_recall(d["lines"] >= 0.5, d["gap_mask"])

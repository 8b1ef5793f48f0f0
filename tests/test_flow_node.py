"""FlowRAFT and FlowViz nodes: known motions, pair-level caching, backends, validation."""
import cv2
import numpy as np
import pytest

import celgraph as cg
from celgraph.engine import Float, Image, NodeType, Out, register, registry
from celgraph.nodes import flowpairs


def texture(h=96, w=128, seed=0):
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 2.0)
    return (img - img.min()) / (img.max() - img.min())


class Moving(NodeType):
    """A texture moved by a known similarity per frame: frame f = rotate(f·angle) ∘ shift(f·(dx, dy))."""
    id, category = "test.Moving", "Test"
    outputs = [Out("image", Image)]
    params = [Float("dx", 0.0), Float("dy", 0.0), Float("angle", 0.0)]

    def compute(self, ctx):
        p = ctx.params
        base = texture(160, 200)
        M = cv2.getRotationMatrix2D((100, 80), p.angle * ctx.frame, 1.0)
        M[:, 2] += [p.dx * ctx.frame, p.dy * ctx.frame]
        img = cv2.warpAffine(base, M, (200, 160), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        return {"image": img[32:128, 36:164]}


if registry.get(Moving.id) is None:
    register(Moving)


def flow_graph(frames="1-3", **motion):
    g = cg.Graph(frames=frames)
    m = g.add("test.Moving", name="src", **motion)
    g.add("FlowRAFT", name="flow", image=m["image"], backend="dis", dis_preset="fine")
    return g


def interior(a, m=16):
    return a[m:-m, m:-m]


def test_recovers_a_known_translation(engine):
    r = engine.run(flow_graph(dx=3.0, dy=-2.0), targets=["flow"], frames=[2])
    fw, bw = r.value("flow", "forward", 2), r.value("flow", "backward", 2)
    assert np.abs(interior(fw) - [3.0, -2.0]).mean() < 0.15
    assert np.abs(interior(bw) - [-3.0, 2.0]).mean() < 0.15


def test_recovers_a_known_rotation(engine):
    r = engine.run(flow_graph(angle=2.0), targets=["flow"], frames=[2])
    fw = r.value("flow", "forward", 2)
    h, w = fw.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    # the next frame is rotated by another 2° about (100, 80) in the uncropped image
    M = cv2.getRotationMatrix2D((100, 80), 2.0, 1.0)
    X, Y = xs + 36, ys + 32
    gt = np.stack([M[0, 0] * X + M[0, 1] * Y + M[0, 2] - X, M[1, 0] * X + M[1, 1] * Y + M[1, 2] - Y], -1)
    epe = np.linalg.norm(interior(fw) - interior(gt), axis=-1).mean()
    assert epe < 0.3


def test_bundle_has_the_requested_offsets_that_fall_inside_the_clip(engine):
    g = flow_graph(frames="1-6", dx=1.0)
    r = engine.run(g, targets=["flow"], frames=[1, 3, 6])
    assert sorted(r.value("flow", "bundle", 1)) == [1, 3]
    assert sorted(r.value("flow", "bundle", 3)) == [-1, 1, 3]
    assert sorted(r.value("flow", "bundle", 6)) == [-3, -1]
    assert not r.value("flow", "forward", 6).any()          # no next frame: zero flow


def test_each_frame_pair_is_its_own_cache_entry(engine, monkeypatch):
    pairs = []
    real = flowpairs._compute
    monkeypatch.setattr(flowpairs, "_compute", lambda ctx, a, b, keys: pairs.append(1) or real(ctx, a, b, keys))
    g = flow_graph(frames="1-4", dx=1.0)
    engine.run(g, targets=["flow"])
    first = len(pairs)
    assert first == 3 + 3 + 1 + 1                 # +1 from 1-3, −1 from 2-4, +3 from 1, −3 from 4
    g.nodes["flow"].params["offsets"] = [-1, 1, 2]
    r = engine.run(g, targets=["flow"])
    assert r.computed == 4                        # every flow task re-runs (its params changed) ...
    assert len(pairs) - first == 2                # ... but only the new +2 pairs are computed


def test_pairs_are_shared_by_two_flow_nodes_with_different_offsets(engine, monkeypatch):
    pairs = []
    real = flowpairs._compute
    monkeypatch.setattr(flowpairs, "_compute", lambda ctx, a, b, keys: pairs.append(1) or real(ctx, a, b, keys))
    g = flow_graph(frames="1-3", dx=1.0)
    g.add("FlowRAFT", name="flow2", image=g["src"]["image"], backend="dis", dis_preset="fine", offsets=[1])
    engine.run(g, targets=["flow", "flow2"])
    assert len(pairs) == 4                       # 1→2, 2→3, 2→1, 3→2 — never twice


def test_no_cache_still_computes_pairs(engine):
    r = engine.run(flow_graph(dx=1.0), targets=["flow"], frames=[2], use_cache=False)
    assert r.value("flow", "forward", 2).shape == (96, 128, 2)


def test_preview_and_flowviz_are_colour_images(engine):
    g = flow_graph(dx=2.0)
    g.add("FlowViz", name="viz", flow=g["flow"]["forward"])
    r = engine.run(g, targets=["viz", "flow"], frames=[2])
    for v in (r.value("viz", "image", 2), r.value("flow", "preview", 2)):
        assert v.shape == (96, 128, 3) and 0 <= v.min() and v.max() <= 1 + 1e-4     # OCIO: 1 → 1.000024


def test_the_preview_is_made_only_when_read(engine):
    g = flow_graph(dx=2.0)
    r = engine.run(g, targets=["flow.forward", "flow.bundle"], frames=[2])
    assert engine.store.held(r.plan.tasks[("flow", 2)].key) == {"forward", "backward", "bundle"}
    r = engine.run(g, targets=["flow.preview"], frames=[2])
    assert r.computed == 1 and r.value("flow", "preview", 2).shape == (96, 128, 3)


def test_working_scale_returns_full_size_flow_in_full_size_pixels(engine):
    g = flow_graph(dx=4.0)
    g.nodes["flow"].params["scale"] = 0.5
    fw = engine.run(g, targets=["flow"], frames=[2]).value("flow", "forward", 2)
    assert fw.shape == (96, 128, 2)
    assert np.abs(np.median(interior(fw)[..., 0]) - 4.0) < 0.3


def test_raft_backends_need_weights(engine):
    g = flow_graph()
    g.nodes["flow"].params["backend"] = "raft"
    issues = g.validate()
    assert [(i.code, i.field) for i in issues] == [("file_not_found", "weights")]
    g.nodes["flow"].params["weights"] = "nope.pth"
    assert "nope.pth" in g.validate()[0].message


def test_offset_zero_is_rejected():
    g = flow_graph()
    g.nodes["flow"].params["offsets"] = [0, 1]
    assert [i.code for i in g.validate()] == ["param_out_of_range"]


@pytest.fixture
def small_raft_weights(tmp_path):
    import torch
    from celgraph.models.raft import raft_small, save_safetensors
    torch.manual_seed(0)
    return save_safetensors(raft_small(), tmp_path / "random_small.safetensors")


def test_raft_small_with_user_weights_runs_and_its_digest_enters_the_key(engine, small_raft_weights, tmp_path):
    g = flow_graph(dx=1.0)
    g.nodes["flow"].params.update(backend="raft_small", weights=str(small_raft_weights), iters=2)
    r = engine.run(g, targets=["flow"], frames=[2])
    assert r.value("flow", "forward", 2).shape == (96, 128, 2)
    key = engine.plan(g).tasks[("flow", 2)].key
    import torch
    from celgraph.models.raft import raft_small, save_safetensors
    torch.manual_seed(1)
    save_safetensors(raft_small(), small_raft_weights)        # other weights, same file name
    assert engine.plan(g).tasks[("flow", 2)].key != key


def test_raft_output_is_deterministic_on_cpu(tmp_path, small_raft_weights):
    g = flow_graph(dx=1.0)
    g.nodes["flow"].params.update(backend="raft_small", weights=str(small_raft_weights), iters=2)
    a = cg.Engine(tmp_path / "a").evaluate(g, "flow.forward", 2)
    b = cg.Engine(tmp_path / "b").evaluate(g, "flow.forward", 2)
    assert np.array_equal(a, b)


def test_synth_clip_flow_matches_ground_truth(engine):
    from celgraph.synth import metrics
    g = cg.Graph(frames="1-3")
    s = g.add("SynthClip", name="clip", seed=3, width=256, height=144)
    g.add("FlowRAFT", name="flow", image=s["image"])
    r = engine.run(g, targets=["flow", "clip"], frames=[2])
    fw, gt, occ = r.value("flow", "forward", 2), r.value("clip", "flow_fw", 2), r.value("clip", "occ_fw", 2)
    assert metrics.epe(fw, gt, occ < 0.5) < 1.0


def test_raft_pairs_of_a_clip_share_each_frames_features(engine, small_raft_weights, monkeypatch):
    from celgraph.models import raft
    encoded = []
    real = raft.RAFT.features
    monkeypatch.setattr(raft.RAFT, "features", lambda self, x: encoded.append(1) or real(self, x))
    g = flow_graph(frames="1-4", dx=1.0)
    g.nodes["flow"].params.update(backend="raft_small", weights=str(small_raft_weights), iters=2, offsets=[-1, 1])
    r = engine.run(g, targets=["flow", "src"])
    assert len(encoded) == 4                       # 6 pairs over 4 frames, one encoding per frame
    model, _ = raft.load_raft(small_raft_weights)
    from celgraph.colorspace import from_working
    src = [from_working(r.value("src", "image", f), "sRGB") for f in (1, 2, 3, 4)]      # RAFT sees sRGB
    for f in (1, 2, 3):
        np.testing.assert_allclose(r.value("flow", "forward", f), raft.raft_flow(model, src[f - 1], src[f], iters=2),
                                   atol=1e-4)


def test_iters_zero_runs_what_the_weights_file_recommends(engine, tmp_path):
    import torch
    from celgraph.models.raft import raft_small, recommended_iters, save_safetensors
    torch.manual_seed(0)
    model = raft_small()
    path = save_safetensors(model, tmp_path / "two.safetensors", metadata={"iters": "2"})
    torch.save(model.state_dict(), tmp_path / "plain.pth")
    assert recommended_iters(path) == 2 and recommended_iters(tmp_path / "plain.pth") is None
    runs = {}
    for iters in (0, 2, 3):
        g = flow_graph(dx=1.0)
        g.nodes["flow"].params.update(backend="raft_small", weights=str(path), iters=iters)
        runs[iters] = engine.run(g, targets=["flow"], frames=[2]).value("flow", "forward", 2)
    assert np.array_equal(runs[0], runs[2]) and not np.array_equal(runs[0], runs[3])

"""Sketch: XDoG baseline, the U-Net (inference, weights, training), and the node."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import celgraph as cg
from celgraph.engine import registry
from celgraph.models.xdog import luminance, xdog
from celgraph.nodes import sketch as sketch_nodes
from celgraph.synth import metrics

if registry.get("celgraph.Sketch") is None:
    registry.register_module(sketch_nodes)


def drawing(h=64, w=96):
    """A black 2-px ring and a soft shadow edge (a colour boundary with no ink) on a flat colour."""
    import cv2
    img = np.ones((h, w, 3), np.float32) * np.float32([0.9, 0.8, 0.7])
    img[:, w // 2 + 10:] *= 0.7                                 # shadow: colour edge, not a line
    ink = np.zeros((h, w), np.float32)
    cv2.circle(ink, (w // 3, h // 2), h // 4, 1.0, 2)
    return img * (1 - ink[:, :, None]), ink


# ---- XDoG ---------------------------------------------------------------------------------------

def test_xdog_finds_the_ink_as_soft_coverage():
    img, ink = drawing()
    soft = xdog(img, sigma=0.4, k=3.0, p=10.0, epsilon=-0.05)
    assert soft.shape == ink.shape and soft.dtype == np.float32
    assert 0.0 <= soft.min() and soft.max() <= 1.0
    assert metrics.line_prf(soft >= 0.5, ink >= 0.5, tol=1)[1] > 0.9          # recall of the ring


def test_xdog_is_blank_on_a_flat_image():
    assert xdog(np.full((32, 32, 3), 0.6, np.float32)).max() == 0.0


def test_luminance_lays_alpha_over_white_paper():
    rgba = np.zeros((4, 4, 4), np.float32)                      # fully transparent
    assert np.allclose(luminance(rgba), 1.0)


# ---- the U-Net ----------------------------------------------------------------------------------

def test_unet_predicts_a_probability_map_of_the_frame_size():
    from celgraph.models.sketch_unet import build, predict
    torch.manual_seed(0)
    model = build("sketch_unet_tiny")
    p = predict(model, np.random.rand(45, 70, 3).astype(np.float32), tile=None)
    assert p.shape == (45, 70) and 0 <= p.min() and p.max() <= 1


def test_tiled_prediction_matches_the_whole_frame_away_from_seams():
    from celgraph.models.sketch_unet import build, predict
    torch.manual_seed(0)
    model = build("sketch_unet_tiny").eval()
    img = np.random.rand(64, 96, 3).astype(np.float32)
    whole = predict(model, img, tile=None)
    tiled = predict(model, img, tile=48, overlap=12)
    assert np.abs(whole - tiled).max() < 0.05


def _old_input(rgb: np.ndarray, stride: int) -> torch.Tensor:
    """How predict built the network's input before it built it from the HWC array directly (node
    v6 as first shipped): NCHW, padded by replication, then made channels_last."""
    x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
    h, w = x.shape[-2:]
    x = torch.nn.functional.pad(x, (0, (-w) % stride, 0, (-h) % stride), mode="replicate")
    return x.contiguous(memory_format=torch.channels_last)


def test_the_networks_input_is_the_padded_frame_in_channels_last_as_before():
    from celgraph.models.sketch_unet import _padded
    rgb = np.arange(5 * 7 * 3, dtype=np.float32).reshape(5, 7, 3) / 105         # 5×7: both sides padded
    for stride in (1, 4, 8):
        x, ref = _padded(rgb, stride), _old_input(rgb, stride)
        assert x.shape == ref.shape and x.stride() == ref.stride() and torch.equal(x, ref)
    assert tuple(_padded(rgb, 4)[0, :, 7, 7]) == tuple(rgb[4, 6])                   # the corner, replicated


def test_prediction_is_bitwise_what_the_nchw_input_gave():
    from celgraph.models.sketch_unet import build, predict
    torch.manual_seed(0)
    model = build("sketch_unet_tiny").eval().to(memory_format=torch.channels_last)
    img = np.random.default_rng(1).random((45, 70, 3), np.float32)
    with torch.inference_mode():
        ref = torch.sigmoid(model(_old_input(img, model.stride)))[0, 0, :45, :70].numpy()
    assert np.array_equal(predict(model, img), ref)


def test_fused_batchnorm_gives_the_same_output():
    import copy
    from celgraph.models.sketch_unet import build, fuse_batchnorm, predict
    torch.manual_seed(0)
    model = build("sketch_unet_tiny").eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    img = np.random.rand(32, 32, 3).astype(np.float32)
    assert np.abs(predict(model, img) - predict(fuse_batchnorm(copy.deepcopy(model)), img)).max() < 1e-5


def test_weights_round_trip_with_their_threshold(tmp_path):
    from celgraph.models.sketch_unet import build, load_weights, predict, save_weights
    model = build("sketch_unet_tiny").eval()
    path = save_weights(model, tmp_path / "s.safetensors", {"threshold": 0.35})
    loaded, meta = load_weights(path)
    assert meta["threshold"] == 0.35 and loaded.widths == model.widths
    img = np.random.rand(32, 32, 3).astype(np.float32)
    assert np.allclose(predict(model, img), predict(loaded, img), atol=1e-6)


def test_sketch_training_loss_decreases_and_resumes(tmp_path):
    from celgraph.train.sketch import TrainConfig, frame_patches, sketch_frame, train
    d = sketch_frame(4242, size=(224, 160), source="clip")
    data = frame_patches(d, np.random.default_rng(0), 6)
    val = [d]
    cfg = TrainConfig(arch="sketch_unet_tiny", steps=12, batch=4, crop=64, lr=5e-3, out=str(tmp_path / "run"),
                      log_every=3, eval_every=0, ckpt_every=4)
    first = train(cfg, data=data, val=val, echo=lambda s: None, stop_at=8)
    assert first["interrupted"] and first["step"] == 8
    second = train(cfg, resume=True, data=data, val=val, echo=lambda s: None)
    assert second["step"] == 12 and 0.0 <= second["threshold"] <= 1.0
    import json
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
              if json.loads(line)["event"] == "train"]
    assert losses[-1] < losses[0]
    assert (tmp_path / "run" / "sketch_unet_tiny.safetensors").is_file()


def test_sketch_training_starts_from_init_weights(tmp_path):
    """--init: the first eval sees the given weights' network (fine-tuning), not a random one."""
    from celgraph.models.sketch_unet import build, save_weights
    from celgraph.train.sketch import TrainConfig, frame_patches, sketch_frame, train
    torch.manual_seed(7)
    start = build("sketch_unet_tiny")
    save_weights(start, tmp_path / "start.safetensors")
    d = sketch_frame(4242, size=(224, 160), source="clip")
    data = frame_patches(d, np.random.default_rng(0), 4)
    cfg = TrainConfig(arch="sketch_unet_tiny", steps=1, batch=2, crop=64, lr=0.0, out=str(tmp_path / "run"),
                      eval_every=0, ckpt_every=1, init=str(tmp_path / "start.safetensors"))
    train(cfg, data=data, val=[d], echo=lambda s: None)
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=False)["model"]
    # lr 0: the weights stay those of start (BatchNorm running statistics move with the batch)
    for k, v in start.state_dict().items():
        if "running" not in k and "num_batches" not in k:
            assert torch.equal(best[k], v), k


def test_anime_frames_are_seeded_and_their_lines_are_the_ink_in_the_pixels():
    from celgraph.synth import make_clip
    from celgraph.synth.animeframe import anime_style, make_anime_frame
    a, b = make_anime_frame(5, 160, 96), make_anime_frame(5, 160, 96)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["color"], make_anime_frame(6, 160, 96)["color"])
    # colour = lines·ink + (1 − lines)·fill exactly: paper-side pixels are the fill, full ink the ink colour
    L = a["lines"][..., None]
    assert np.allclose(a["color"], L * a["ink"] + (1 - L) * a["fill"], atol=1e-6)
    assert a["lines"].max() == 1.0 and a["lines"].min() == 0.0
    # outlines: on the ink the pixels are darker than the fill beside them
    full = a["lines"] >= 0.99
    assert (luminance(a["ink"])[full] < luminance(a["fill"])[full]).mean() > 0.95
    # thinning only removes ink; no cut keeps the frame's own lines; the plate has no ink
    frame = make_clip(5, width=160, height=96, n_frames=1, flow=False).frames[0]
    thin = anime_style(frame, np.random.default_rng(1), thin=0.6)
    same = anime_style(frame, np.random.default_rng(1), thin=0.0)
    assert np.all(thin["lines"] <= frame["lines"] + 1e-6) and thin["lines"].sum() < frame["lines"].sum()
    assert np.allclose(same["lines"], np.where(frame["lines"] < 1e-3, 0, frame["lines"]))
    off_sprites = frame["alpha"].sum(0) == 0
    assert off_sprites.any() and thin["lines"][off_sprites].max() == 0.0


def test_sketch_frame_draws_anime_frames():
    from celgraph.train.sketch import sketch_frame
    d = sketch_frame(11, size=(160, 96), source="anime")
    assert d["image"].shape == (96, 160, 3) and d["lines"].shape == (96, 160) and d["lines"].max() > 0.5
    assert np.array_equal(d["lines"], sketch_frame(11, size=(160, 96), source="anime")["lines"])


def _boundary(mask: np.ndarray) -> np.ndarray:
    import cv2
    m = mask.astype(np.uint8)
    return (m > 0) & (cv2.erode(m, np.ones((3, 3), np.uint8)) == 0)


def _distance_to(mask: np.ndarray) -> np.ndarray:
    import cv2
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)


@pytest.mark.parametrize("kind", ["bow", "hair", "ribbon", "coat"])
def test_dark_object_outline_is_ink_on_its_boundary_with_the_light_frame(kind):
    from celgraph.synth.darkobjects import add_dark_objects
    H, W = 256, 384
    color = np.full((H, W, 3), 0.8, np.float32)
    lines = np.zeros((H, W), np.float32)
    lines[::9] = 1.0                                             # the frame's own ink, a ruled page
    d = add_dark_objects(color, lines, np.ones((H, W), np.float32), np.random.default_rng(3), n=1, p_plate=0,
                         kinds=(kind,), soft=(0, 0))                # in focus: the pixels as drawn
    obj = d["objects"] >= 0.5
    assert obj.sum() > 100, kind
    ink = d["outline"] >= 0.5
    # the target line lies on the boundary of the dark pixels, and all along it
    lum = luminance(d["color"])
    inner = (d["objects"] > 0.999) & (_distance_to(~obj) > 3)
    light = lum >= (0.8 + np.median(lum[inner])) / 2              # the step's midpoint
    edge = _boundary(~light[1:-1, 1:-1])                        # dark pixels next to light ones, inside the frame
    assert ink.any() and _distance_to(light)[ink].max() <= 3.0     # ≤ 2 px wide here, wider in sharp notches
    assert _distance_to(ink[1:-1, 1:-1])[edge].max() <= 1.0
    # the target: the outline over the frame's own ink, which the object covers
    O = d["outline"]
    assert np.allclose(d["lines"], O + (1 - O) * (1 - d["objects"]) * lines, atol=1e-3)
    # the pixels: dark inside and on the line (line colour ≤ fill, no dark rim beyond it), untouched away from it
    assert lum[inner].max() < 0.6 and lum[ink & obj].max() < 0.6
    far = _distance_to(obj) > 8
    assert np.allclose(d["color"][far], color[far], atol=1e-5) and np.allclose(d["lines"][far], lines[far], atol=1e-5)
    # the frame's own ink is covered by the object: no ink deep inside it
    deep = (d["objects"] > 0.999) & (_distance_to(~obj) > 3)
    assert deep.sum() > 20 and d["lines"][deep].max() < 0.01
    # out of focus, the pixels blur and the target stays the line as drawn
    b = add_dark_objects(color, lines, np.ones((H, W), np.float32), np.random.default_rng(3), n=1, p_plate=0,
                         kinds=(kind,), soft=(2, 2))
    assert np.array_equal(b["lines"], d["lines"]) and not np.allclose(b["color"], d["color"], atol=0.05)


def test_dark_object_fill_and_a_dimmed_frame_follow_their_ranges():
    """``fill`` sets the objects' value, ``ground`` dims the frame first (the dark-object bench's
    wider recipe); neither changes the default draws (the training recipe's frames)."""
    from celgraph.synth.darkobjects import add_dark_objects
    H, W = 256, 384
    color = np.full((H, W, 3), 0.8, np.float32)
    lines = np.zeros((H, W), np.float32)
    ones = np.ones((H, W), np.float32)
    kw = dict(n=1, p_plate=0, kinds=("coat",), soft=(0, 0))
    d = add_dark_objects(color, lines, ones, np.random.default_rng(4), fill=(0.38, 0.4), ground=(0.6, 0.6), **kw)
    lum = luminance(d["color"])
    inner = (d["objects"] > 0.999) & (_distance_to(d["objects"] < 0.5) > 3)
    assert 0.38 * 0.7 <= np.median(lum[inner]) <= 0.4 * 1.3          # shading ± 25 %, highlights
    far = _distance_to(d["objects"] >= 0.5) > 8
    assert np.allclose(lum[far], 0.8 * 0.6, atol=1e-4)               # the frame dimmed to 0.6×
    a = add_dark_objects(color, lines, ones, np.random.default_rng(4), **kw)
    b = add_dark_objects(color, lines, ones, np.random.default_rng(4), fill=(0.03, 0.35), **kw)
    assert np.array_equal(a["color"], b["color"]) and np.array_equal(a["lines"], b["lines"])


def test_dark_object_on_a_darker_frame_draws_no_line():
    from celgraph.synth.darkobjects import add_dark_objects
    color = np.full((96, 160, 3), 0.01, np.float32)
    d = add_dark_objects(color, np.zeros((96, 160), np.float32), None, np.random.default_rng(5), n=2, p_plate=0)
    assert (d["objects"] > 0.5).any() and d["lines"].max() == 0.0 and d["outline"].max() == 0.0


def test_plate_negatives_are_dark_paint_with_no_ink_and_stay_off_the_sprites():
    from celgraph.synth.darkobjects import add_dark_objects
    color = np.full((96, 160, 3), 0.8, np.float32)
    sprite = np.zeros((96, 160), np.float32)
    sprite[:, :80] = 1.0
    lines = np.zeros((96, 160), np.float32)
    lines[40, 10:150] = 1.0
    d = add_dark_objects(color, lines, sprite, np.random.default_rng(1), n=0, p_plate=1.0)
    assert np.array_equal(d["lines"], lines) and np.array_equal(d["color"][:, :80], color[:, :80])
    assert luminance(d["color"]).min() < 0.5


def test_dark_objects_are_seeded_and_off_by_default_in_sketch_frames():
    from celgraph.train.sketch import sketch_frame
    a = sketch_frame(21, size=(160, 96), source="anime", dark=1.0)
    b = sketch_frame(21, size=(160, 96), source="anime", dark=1.0)
    assert a["source"] == "anime+dark" and all(np.array_equal(a[k], b[k]) for k in ("image", "clean", "lines"))
    plain = sketch_frame(21, size=(160, 96), source="anime")
    assert plain["source"] == "anime" and not np.array_equal(plain["clean"], a["clean"])
    # dark 0 (the default) draws exactly the earlier recipes' frames: the same degradation stream
    assert np.array_equal(plain["image"], sketch_frame(21, size=(160, 96), source="anime", dark=0.0)["image"])
    # lineart pages are never given dark objects
    assert sketch_frame(21, size=(160, 96), source="lineart", dark=1.0)["source"] == "lineart"


def test_validation_anime_frames_follow_the_recipes_dark_share():
    from celgraph.train.sketch import eval_frames
    plain = eval_frames(seeds=(700_000, 700_001), sizes=((96, 64),), anime=2)
    dark = eval_frames(seeds=(700_000, 700_001), sizes=((96, 64),), anime=2, dark=1.0)
    assert [d["source"] for d in plain] == ["lineart", "clip", "anime", "anime"]
    assert [d["source"] for d in dark] == ["lineart", "clip", "anime+dark", "anime+dark"]
    assert all(np.array_equal(a["image"], b["image"]) for a, b in zip(plain[:2], dark[:2]))


def test_best_threshold_maximises_f1():
    from celgraph.train.sketch import best_threshold
    gt = np.zeros((20, 20), np.float32)
    gt[10] = 1
    prob = gt * 0.7 + 0.2                                        # ink 0.9, paper 0.2
    t, f1, table = best_threshold([prob], [gt])
    assert 0.2 < t <= 0.9 and f1 == 1.0 and table[0.15] < 1.0


# ---- the node -----------------------------------------------------------------------------------

def test_sketch_node_xdog_outputs_soft_and_binary_lines(tmp_path):
    g = cg.Graph(frames="1")
    clip = g.add("SynthClip", name="clip", seed=3, width=160, height=96)
    g.add("Sketch", name="sk", image=clip["image"], method="xdog")
    r = cg.Engine(tmp_path / "cache").run(g)
    soft, binary = r.value("sk", "lines", 1), r.value("sk", "binary", 1)
    assert soft.shape == binary.shape == (96, 160)
    assert set(np.unique(binary)) <= {0.0, 1.0}
    assert np.array_equal(binary, (soft >= 0.5).astype(np.float32))
    assert metrics.line_f1(binary, r.value("clip", "lines", 1) >= 0.5) > 0.6


def test_sketch_node_loads_its_model_once_per_engine(tmp_path, monkeypatch):
    from celgraph.models import sketch_unet
    loads = []
    real = sketch_unet.load_weights
    monkeypatch.setattr(sketch_unet, "load_weights", lambda *a, **k: loads.append(1) or real(*a, **k))
    g = cg.Graph(frames="1-3")
    clip = g.add("SynthClip", name="clip", seed=3, width=96, height=64)
    g.add("Sketch", name="sk", image=clip["image"], method="model")
    cg.Engine(tmp_path / "cache").run(g)
    assert len(loads) == 1


def test_sketch_node_threshold_param_binarises_there(tmp_path):
    g = cg.Graph(frames="1")
    clip = g.add("SynthClip", name="clip", seed=3, width=96, height=64)
    g.add("Sketch", name="sk", image=clip["image"], method="xdog", xdog_phi=5.0, threshold=0.8)
    r = cg.Engine(tmp_path / "cache").run(g)
    assert np.array_equal(r.value("sk", "binary", 1), (r.value("sk", "lines", 1) >= 0.8).astype(np.float32))


def test_missing_weights_file_is_a_validation_error(tmp_path):
    g = cg.Graph(frames="1")
    clip = g.add("SynthClip", name="clip", seed=3, width=96, height=64)
    g.add("Sketch", name="sk", image=clip["image"], weights=str(tmp_path / "nope.safetensors"))
    assert [i.code for i in g.validate()] == ["file_not_found"]


def test_bundled_model_beats_xdog_on_a_held_out_degraded_frame(tmp_path):
    assert sketch_nodes.bundled_weights() is not None, "the bundled Sketch weights are missing"
    g = cg.Graph(frames="1")
    clip = g.add("SynthClip", name="clip", seed=303, width=456, height=256)
    g.add("Sketch", name="model", image=clip["image"])
    g.add("Sketch", name="xdog", image=clip["image"], method="xdog")
    r = cg.Engine(tmp_path / "cache").run(g)
    gt = r.value("clip", "lines", 1) >= 0.5
    f_model = metrics.line_f1(r.value("model", "binary", 1), gt)
    f_xdog = metrics.line_f1(r.value("xdog", "binary", 1), gt)
    assert f_model > 0.85 and f_model > f_xdog


# ---- binarisation with hysteresis ---------------------------------------------------------------

def line_with_faint_middle():
    """Soft ink: a row whose ends are confident (0.9) and whose middle is faint (0.3), and a faint
    blob (0.3) that touches no confident ink."""
    soft = np.zeros((20, 60), np.float32)
    soft[5, 5:55] = 0.9
    soft[5, 20:40] = 0.3
    soft[14:17, 10:14] = 0.3
    return soft


def test_hysteresis_keeps_a_faint_stretch_between_confident_ones():
    soft = line_with_faint_middle()
    out = sketch_nodes.binarize(soft, 0.5, 0.2)
    assert out[5, 5:55].all()                                   # the line is whole
    assert not out[14:17, 10:14].any()                          # the faint blob touches no confident ink
    assert out.sum() == 50


def test_binarize_without_a_weak_threshold_is_a_plain_threshold():
    soft = line_with_faint_middle()
    plain = soft >= 0.5
    assert np.array_equal(sketch_nodes.binarize(soft, 0.5), plain)
    assert np.array_equal(sketch_nodes.binarize(soft, 0.5, 0.5), plain)      # weak ≥ threshold: none
    assert np.array_equal(sketch_nodes.binarize(soft, 0.5, 0.8), plain)
    assert sketch_nodes.binarize(soft, 0.5)[5, 20:40].sum() == 0             # the dashes it leaves


def test_hysteresis_joins_through_diagonal_neighbours():
    soft = np.zeros((10, 10), np.float32)
    soft[0, 0] = 0.9
    idx = np.arange(1, 10)
    soft[idx, idx] = 0.3                                         # a faint diagonal, 8-connected to it
    assert sketch_nodes.binarize(soft, 0.5, 0.2).sum() == 10


def test_sketch_node_weak_threshold_param_applies_hysteresis(tmp_path):
    g = cg.Graph(frames="1")
    clip = g.add("SynthClip", name="clip", seed=3, width=96, height=64)
    g.add("Sketch", name="sk", image=clip["image"], method="xdog", xdog_phi=5.0, threshold=0.8, weak_threshold=0.3)
    r = cg.Engine(tmp_path / "cache").run(g)
    lines, binary = r.value("sk", "lines", 1), r.value("sk", "binary", 1)
    assert np.array_equal(binary, sketch_nodes.binarize(lines, 0.8, 0.3).astype(np.float32))
    assert binary.sum() > (lines >= 0.8).sum()                   # it added faint ink joined to strong ink


def test_sketch_node_model_binarises_with_the_weights_weak_threshold(tmp_path):
    from celgraph.models.sketch_unet import build, save_weights
    torch.manual_seed(3)
    path = save_weights(build("sketch_unet_tiny").eval(), tmp_path / "w.safetensors",
                        {"threshold": 0.5, "weak_threshold": 0.45})
    g = cg.Graph(frames="1")
    clip = g.add("SynthClip", name="clip", seed=3, width=96, height=64)
    g.add("Sketch", name="sk", image=clip["image"], weights=str(path))
    r = cg.Engine(tmp_path / "cache").run(g)
    lines = r.value("sk", "lines", 1)
    assert np.array_equal(r.value("sk", "binary", 1), sketch_nodes.binarize(lines, 0.5, 0.45).astype(np.float32))


def test_bundled_weights_carry_a_weak_threshold_below_their_threshold():
    from celgraph.models.safetensors_io import read_metadata
    meta = read_metadata(sketch_nodes.bundled_weights(), "celgraph.sketch_unet", "Sketch U-Net")
    assert 0.0 < meta["weak_threshold"] < meta["threshold"]


def test_best_weak_threshold_keeps_the_overall_f1_and_helps_the_anime_frames():
    """Frame 0 (clip): a clean line plus faint paper noise next to it; frame 1 (anime): a line
    whose middle is faint. Hysteresis closes the anime line; too low a weak threshold lets the
    clip frame's noise in."""
    from celgraph.train.sketch import best_weak_threshold
    gt0 = np.zeros((30, 60), np.float32)
    gt0[10, 5:55] = 1
    p0 = gt0 * 0.9
    p0[11:25, 5:55] = 0.12                                       # faint haze joined to the line
    gt1 = np.zeros((30, 60), np.float32)
    gt1[10, 5:55] = 1
    p1 = gt1 * 0.9
    p1[10, 20:40] = 0.3
    weak, table = best_weak_threshold([p0, p1], [gt0, gt1], 0.5, anime=1, slack=0.005, weaks=(0.1, 0.25, 0.4))
    assert weak == 0.25                                          # 0.4 misses the faint part; 0.1 takes the haze
    assert table[0.25][1] == 1.0 and table[None][1] < 1.0 and table[0.1][0] < table[None][0] - 0.005
    none, _ = best_weak_threshold([p0], [gt0], 0.5, anime=1, weaks=(0.1, 0.25))
    assert none is None                                          # nothing to gain: no hysteresis


def test_add_weak_threshold_writes_the_header_and_keeps_the_tensors(tmp_path):
    from safetensors.torch import load_file
    from celgraph.models.sketch_unet import build, load_weights, save_weights
    from celgraph.train.sketch import add_weak_threshold, sketch_frame
    torch.manual_seed(5)
    path = save_weights(build("sketch_unet_tiny").eval(), tmp_path / "w.safetensors", {"threshold": 0.5, "note": "x"})
    before = load_file(str(path))
    frames = [sketch_frame(11, size=(96, 64), source="clip"), sketch_frame(12, size=(96, 64), source="anime")]
    weak, table = add_weak_threshold(path, frames)
    _, meta = load_weights(path)
    assert meta["weak_threshold"] == weak and meta["threshold"] == 0.5 and meta["note"] == "x"
    assert None in table and all(w < 0.5 for w in table if w is not None)
    after = load_file(str(path))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)

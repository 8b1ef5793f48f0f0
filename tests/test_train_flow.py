"""celgraph.train: synthetic flow pairs, RAFT training loop, checkpoints, CLI, shipped weights.

Everything here runs on tiny crops and clips in seconds; the real training and the full held-out
evaluation are marked slow.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from celgraph.synth import make_clip
from celgraph.train.data import (DataConfig, FlowPairs, color_jitter, eval_pairs, hflip_pair, pair_flow,
                                 vflip_pair, warp)
from celgraph.train.flow import (TrainConfig, build_model, dis_baseline, evaluate, load_checkpoint, make_optimizer,
                                 sequence_loss, train)

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "celgraph" / "models" / "weights" / "raft_small_toon.safetensors"
CARD = ROOT / "celgraph" / "models" / "MODEL_CARD.md"

TINY = dict(batch=2, crop=(64, 96), clip_size=(160, 96), n_frames=4)
# the training-loop tests: 48×64 crops of 112×64 clips, 2 refinement iterations, one thread
# (the machine is shared; two OpenMP threads on a busy 2-core box are slower than one)
LOOP = dict(batch=2, crop=(48, 64), clip_size=(112, 64), n_frames=4, iters=2, threads=1)


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def tiny_clip():
    return make_clip(5, 160, 96, 5)


def _warp_err(img1, img2, flow, occ):
    """Mean |img1 − img2 warped by flow| on non-occluded pixels (HWC images 0..1)."""
    return float(np.abs(warp(img2, flow) - img1).mean(-1)[~np.asarray(occ, bool)].mean())


def _hwc(s, k):
    return s[k].transpose(1, 2, 0)


# ------------------------------------------------------------------------------------ data

def test_batch_shapes_and_ranges():
    ds = FlowPairs(DataConfig(**TINY))
    b = ds.batch(0)
    assert b["img1"].shape == b["img2"].shape == (2, 3, 64, 96)
    assert b["flow"].shape == (2, 2, 64, 96)
    assert b["valid"].shape == b["occ"].shape == (2, 64, 96)
    for k in ("img1", "img2", "flow", "valid", "occ"):
        assert b[k].dtype == torch.float32 and torch.isfinite(b[k]).all()
    assert 0 <= b["img1"].min() and b["img1"].max() <= 255 and b["img1"].max() > 1    # RAFT's 0..255
    assert set(torch.unique(b["valid"]).tolist()) <= {0.0, 1.0}
    # two clips per batch, each reused for clip_reuse batches
    assert len({m["clip_seed"] for m in b["meta"]}) == 2
    assert [m["clip_seed"] for m in ds.batch(1)["meta"]] == [m["clip_seed"] for m in b["meta"]]


def test_samples_depend_on_seed_and_index_only():
    a, b = FlowPairs(DataConfig(**TINY)), FlowPairs(DataConfig(**TINY))
    b.sample(7)                               # another access order, another cache state
    for i in (3, 0, 5):
        sa, sb = a.sample(i), b.sample(i)
        for k in ("img1", "img2", "flow", "valid"):
            np.testing.assert_array_equal(sa[k], sb[k])
    other = FlowPairs(DataConfig(**{**TINY, "seed": 1})).sample(3)
    assert not np.array_equal(other["img1"], a.sample(3)["img1"])


def test_dataloader_workers_give_the_same_batches():
    ds = FlowPairs(DataConfig(**{**TINY, "batch": 1}))
    inproc = list(ds.batches(1, 3, workers=0))
    pooled = list(FlowPairs(DataConfig(**{**TINY, "batch": 1})).batches(1, 3, workers=1))
    assert len(pooled) == 2
    for a, b in zip(inproc, pooled):
        assert torch.equal(a["img1"], b["img1"]) and torch.equal(a["flow"], b["flow"])


def test_gaps_and_directions_cover_k_1_to_3():
    ds = FlowPairs(DataConfig(**TINY, max_gap=3))
    gaps = {ds.sample(i)["meta"]["t2"] - ds.sample(i)["meta"]["t"] for i in range(40)}
    assert gaps == {-3, -2, -1, 1, 2, 3}


def test_pair_flow_is_exact_for_every_gap(tiny_clip):
    f = tiny_clip.frames
    fl, occ = pair_flow(tiny_clip, 1, 2)
    assert fl is f[1]["flow_fw"] and occ is f[1]["occ_fw"]
    for t, t2 in ((0, 1), (0, 2), (0, 3), (4, 1), (3, 2)):
        fl, occ = pair_flow(tiny_clip, t, t2)
        assert fl.shape == (96, 160, 2) and occ.shape == (96, 160)
        err = _warp_err(f[t]["color"], f[t2]["color"], fl, occ)
        assert err < 0.02, (t, t2, err)
        # a wrong flow (the adjacent one for a larger gap, or zero) is clearly worse
        assert _warp_err(f[t]["color"], f[t2]["color"], np.zeros_like(fl), occ) > err


def test_flips_keep_image_and_flow_consistent(tiny_clip):
    f = tiny_clip.frames
    img1, img2 = f[0]["color"], f[2]["color"]
    flow, occ = pair_flow(tiny_clip, 0, 2)
    base = _warp_err(img1, img2, flow, occ)
    h1, h2, hf, ho = hflip_pair(img1, img2, flow, occ)
    np.testing.assert_array_equal(hf[:, ::-1, 0], -flow[..., 0])
    assert _warp_err(h1, h2, hf, ho) == pytest.approx(base, abs=2e-3)
    v1, v2, vf, vo = vflip_pair(img1, img2, flow, occ)
    assert _warp_err(v1, v2, vf, vo) == pytest.approx(base, abs=2e-3)
    # flipping the images without negating the flow breaks the warp
    wrong = flow[:, ::-1]
    assert _warp_err(h1, h2, wrong, ho) > base + 0.005


def test_augmented_samples_warp_consistently():
    """Crops and flips of the data stream keep (image, flow) consistent; the colour jitter is
    the same on both frames unless asymmetric, and the eraser only touches frame 2."""
    ds = FlowPairs(DataConfig(**TINY, jitter=False, eraser_prob=0.0, hflip_prob=0.5, vflip_prob=0.5))
    flips = set()
    for i in range(12):
        s = ds.sample(i)
        flips.add(s["meta"]["flips"])
        err = _warp_err(_hwc(s, "img1") / 255, _hwc(s, "img2") / 255, _hwc(s, "flow"), s["occ"] > 0)
        assert err < 0.03, (i, s["meta"], err)
    assert len(flips) >= 3


def test_color_jitter():
    rng = np.random.default_rng(0)
    img = rng.random((8, 8, 3), dtype=np.float32)
    np.testing.assert_allclose(color_jitter(img, (1.0, 1.0, 1.0, 0.0)), img, atol=1e-6)
    out = color_jitter(img, (1.3, 0.7, 1.4, 0.1))
    assert out.shape == img.shape and out.min() >= 0 and out.max() <= 1
    assert not np.allclose(out, img)
    grey = np.repeat(img[..., :1], 3, -1)          # hue and saturation leave greys grey
    g = color_jitter(grey, (1.0, 1.0, 1.6, 0.2))
    np.testing.assert_allclose(g, grey, atol=1e-5)


def test_eval_pairs_are_fixed_and_scored_against_dis():
    pairs = eval_pairs([10000], gaps=(1, 3), n_frames=5, size=(160, 96))
    assert [(p["t"], p["k"]) for p in pairs] == [(0, 1), (2, 1), (0, 3)]
    again = eval_pairs([10000], gaps=(1,), n_frames=5, size=(160, 96))
    np.testing.assert_array_equal(again[0]["flow"], pairs[0]["flow"])
    d = dis_baseline(pairs)
    assert d["pairs"] == 3 and set(d) >= {"epe_all", "epe_noc", "k1", "k3"}
    assert 0 <= d["k1"]["epe_noc"] < 5
    r = evaluate(build_model("small"), pairs, iters=1)
    assert np.isfinite(r["epe_all"]) and r["k3"]["pairs"] == 1


# ------------------------------------------------------------------------------------ loss / loop

def test_sequence_loss_weights():
    gt = torch.zeros(1, 2, 8, 8)
    valid = torch.ones(1, 8, 8)
    loss, m = sequence_loss([gt.clone(), gt.clone()], gt, valid)
    assert loss.item() == 0 and m["epe"] == 0 and m["1px"] == 1
    ones = torch.ones(1, 2, 8, 8)
    loss, _ = sequence_loss([ones, gt], gt, valid, gamma=0.8)          # only the first is wrong
    assert loss.item() == pytest.approx(0.8)
    loss, _ = sequence_loss([gt, ones], gt, valid, gamma=0.8)
    assert loss.item() == pytest.approx(1.0)
    loss, _ = sequence_loss([ones], gt, torch.zeros(1, 8, 8))           # nothing valid
    assert loss.item() == 0
    big = torch.full((1, 2, 8, 8), 300.0)                               # |flow| > 400 px: excluded
    loss, _ = sequence_loss([gt], big, valid)
    assert loss.item() == 0


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch():
    cfg = TrainConfig(steps=10, lr=1e-3, iters=2)
    batch = FlowPairs(DataConfig(batch=2, crop=(48, 64), clip_size=(112, 64), n_frames=4, jitter=False,
                                 eraser_prob=0.0)).batch(0)
    model = build_model("small", seed=0).train()
    opt, sched = make_optimizer(model, cfg)
    losses = []
    for _ in range(cfg.steps):
        loss, _ = sequence_loss(model(batch["img1"], batch["img2"], iters=cfg.iters), batch["flow"],
                                batch["valid"], cfg.gamma)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        losses.append(loss.item())
    assert min(losses[-3:]) < 0.8 * losses[0], losses


def _tiny_cfg(out, **kw):
    return TrainConfig(**{**LOOP, **dict(steps=4, out=str(out), eval_every=0, final_eval=False, ckpt_every=1,
                                         log_every=1, seed=3), **kw})


def _state(path):
    return load_checkpoint(path)


def _assert_same_state(a, b):
    assert a["step"] == b["step"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"]
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    for i in sa:
        for k in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(sa[i][k], sb[i][k])
    assert torch.equal(a["rng"], b["rng"])            # the torch RNG state (celgraph.train.loop's Run keeps it)


def test_training_is_deterministic_and_resume_reproduces_it(tmp_path):
    train(_tiny_cfg(tmp_path / "a"), echo=None)
    train(_tiny_cfg(tmp_path / "b"), echo=None)
    res = train(_tiny_cfg(tmp_path / "c"), stop_at=2, echo=None)        # "interrupted" after 2 steps
    assert res["step"] == 2 and _state(tmp_path / "c" / "last.pt")["step"] == 2
    with pytest.raises(FileExistsError):
        train(_tiny_cfg(tmp_path / "c"), echo=None)                     # no silent overwrite
    with pytest.raises(ValueError, match="lr"):
        train(_tiny_cfg(tmp_path / "c", lr=1e-3), resume=True, echo=None)
    res = train(_tiny_cfg(tmp_path / "c"), resume=True, echo=None)
    a, b, c = (_state(tmp_path / d / "last.pt") for d in "abc")
    _assert_same_state(a, b)
    _assert_same_state(a, c)
    # the log is JSON lines; the resumed run says so
    events = [json.loads(line)["event"] for line in (tmp_path / "c" / "log.jsonl").read_text().splitlines()]
    assert events[0] == "start" and "resume" in events and events[-1] == "final"
    # the exported weights load with load_raft and reproduce the trained model
    from celgraph.models.raft import load_raft
    model, variant = load_raft(res["weights"])
    assert variant == "small"
    ref = build_model("small")
    ref.load_state_dict(a["model"])
    x = torch.rand(1, 3, 48, 64) * 255
    torch.testing.assert_close(model(x, x, iters=2, test_mode=True)[1],
                               ref.eval()(x, x, iters=2, test_mode=True)[1])


def test_a_second_stage_starts_from_the_first(tmp_path):
    from celgraph.train.flow import init_state
    res = train(_tiny_cfg(tmp_path / "s1", steps=1), echo=None)
    first = _state(tmp_path / "s1" / "last.pt")["model"]
    for src in (tmp_path / "s1" / "last.pt", res["weights"]):
        sd = init_state(src, "small")
        assert all(torch.equal(sd[k], first[k]) for k in first)
    # a stage-2 run with zero learning rate keeps the stage-1 weights
    train(_tiny_cfg(tmp_path / "s2", steps=1, lr=0.0, wdecay=0.0, init=str(tmp_path / "s1" / "last.pt"),
                    crop=(64, 96)), echo=None)
    second = _state(tmp_path / "s2" / "last.pt")["model"]
    assert all(torch.equal(second[k], first[k]) for k in first)


def test_seed_changes_the_run(tmp_path):
    train(_tiny_cfg(tmp_path / "a", steps=1), echo=None)
    train(_tiny_cfg(tmp_path / "b", steps=1, seed=4), echo=None)
    a, b = _state(tmp_path / "a" / "last.pt"), _state(tmp_path / "b" / "last.pt")
    assert not torch.equal(a["model"]["fnet.conv1.weight"], b["model"]["fnet.conv1.weight"])


# ------------------------------------------------------------------------------------ CLI

def _parser():
    from celgraph.train.cli import add_train_parser
    p = argparse.ArgumentParser(prog="graph")
    add_train_parser(p.add_subparsers(dest="command", required=True))
    return p


def test_cli_parses_the_documented_options():
    p = _parser()
    a = p.parse_args("train flow --variant large --steps 10 --batch 3 --crop 64x96 --lr 1e-3 --out X "
                     "--resume --seed 7 --eval-every 5 --workers 0".split())
    assert (a.variant, a.steps, a.batch, a.crop, a.lr, a.out, a.resume, a.seed, a.eval_every, a.workers) == \
        ("large", 10, 3, (64, 96), 1e-3, "X", True, 7, 5, 0)
    assert callable(a.func)
    d = p.parse_args(["train", "flow"])
    assert d.variant is None and d.resume is False     # defaults come from TrainConfig / the checkpoint
    for bad in ("--crop 65x96", "--crop 64", "--variant medium", "--steps 0"):
        with pytest.raises(SystemExit):
            p.parse_args(["train", "flow", *bad.split()])
    # other trainers hang their sub-commands under `train`
    from celgraph.train.cli import add_train_parser
    q = argparse.ArgumentParser(prog="graph")
    t = add_train_parser(q.add_subparsers(dest="command"), extra=[lambda ts: ts.add_parser("dummy")])
    assert q.parse_args(["train", "dummy"]).train_command == "dummy" and t.train_subparsers is not None


def test_cli_trains_refuses_to_overwrite_and_resumes(tmp_path, capsys):
    p = _parser()
    out = tmp_path / "run"
    argv = ["train", "flow", "--steps", "2", "--batch", "1", "--crop", "64x96", "--iters", "1",
            "--out", str(out), "--eval-every", "0", "--no-final-eval", "--log-every", "1", "--threads", "1"]
    a = p.parse_args([*argv, "--stop-at", "1"])
    assert a.func(a) == 0
    assert load_checkpoint(out / "last.pt")["step"] == 1 and not (out / "final.json").exists()
    a = p.parse_args([*argv, "--resume"])
    assert a.func(a) == 0
    assert (out / "raft_small_toon.safetensors").is_file()
    from celgraph.models.raft import recommended_iters
    assert recommended_iters(out / "raft_small_toon.safetensors") == 1     # the training iterations
    assert json.loads((out / "final.json").read_text())["step"] == 2
    a = p.parse_args(argv)
    assert a.func(a) == 2                                   # already a run there
    assert "--resume" in capsys.readouterr().err
    a = p.parse_args([*argv, "--resume", "--lr", "1e-2"])
    assert a.func(a) == 2                                   # another trajectory
    a = p.parse_args(["train", "flow", "--out", str(out), "--resume"])   # saved settings
    assert a.func(a) == 0


# ------------------------------------------------------------------------------------ shipped weights

def _card_entry():
    text = CARD.read_text()
    m = re.search(r"raft_small_toon\.safetensors.*?sha256[^0-9a-f]*([0-9a-f]{64})", text, re.S)
    assert m, "MODEL_CARD.md has no sha256 for raft_small_toon.safetensors"
    return text, m.group(1)


def test_shipped_weights_load_and_match_the_model_card():
    from celgraph.models.raft import load_raft, raft_flow
    assert WEIGHTS.stat().st_size < 5 * 2 ** 20
    _, sha = _card_entry()
    assert hashlib.sha256(WEIGHTS.read_bytes()).hexdigest() == sha
    model, variant = load_raft(WEIGHTS)
    assert variant == "small"
    from celgraph.models.raft import recommended_iters
    assert recommended_iters(WEIGHTS) == 6       # FlowRAFT's iters = 0 runs the best measured count
    clip = make_clip(10000, 160, 96, 2)
    f = clip.frames[0]
    flow = raft_flow(model, f["color"], clip.frames[1]["color"], iters=12)
    assert flow.shape == (96, 160, 2) and np.isfinite(flow).all()
    # a trained network, not random weights: far better than zero flow on a held-out pair
    err = np.linalg.norm(flow - f["flow_fw"], axis=-1).mean()
    assert err < 0.5 * np.linalg.norm(f["flow_fw"], axis=-1).mean() + 0.5


@pytest.mark.slow
def test_shipped_weights_reproduce_the_model_card_numbers():
    """The full held-out evaluation (16 seeds, 96 whole-frame pairs; about a minute on 2 cores)."""
    from celgraph.train.flow import evaluate_weights
    text, _ = _card_entry()
    res = evaluate_weights(WEIGHTS, iters=(12,))
    r, d = res["raft"]["12"], res["dis"]
    for value in (r["k1"]["epe_all"], r["k1"]["epe_noc"], d["k1"]["epe_all"], d["k1"]["epe_noc"]):
        assert f"{value:.3f}" in text


def test_pick_iters_prefers_the_cheapest_count_within_tolerance():
    from celgraph.train.flow import pick_iters
    epe = {4: 0.653, 5: 0.619, 6: 0.603, 8: 0.601, 12: 0.623}
    assert pick_iters(epe) == 6                       # 0.603 ≤ 1.01 × 0.601
    assert pick_iters(epe, tolerance=0.0) == 8
    assert pick_iters(epe, tolerance=0.05) == 5
    assert pick_iters(epe, tolerance=0.1) == 4
    with pytest.raises(ValueError):
        pick_iters({})


def test_recommend_iters_measures_each_count():
    from celgraph.train.flow import recommend_iters
    pairs = eval_pairs([10000], gaps=(1,), n_frames=3, size=(96, 64))
    iters, epe = recommend_iters(build_model("small"), pairs, sweep=(1, 2))
    assert set(epe) == {1, 2} and all(np.isfinite(v) for v in epe.values())
    assert iters in (1, 2) and epe[iters] <= min(epe.values()) * 1.01


def test_final_export_records_the_validated_iterations(tmp_path, monkeypatch):
    """With validation on, the exported weights recommend the count measured best, not the training count."""
    import celgraph.train.flow as tf
    from celgraph.models.raft import recommended_iters
    cfg = TrainConfig(**{**LOOP, **dict(steps=1, out=str(tmp_path / "run"), eval_every=1, final_eval=False,
                                        ckpt_every=1, log_every=1, val_seeds=(10000,))})
    seen = {}

    def fake_eval_pairs(seeds):
        return eval_pairs(seeds, gaps=(1,), n_frames=2, size=(96, 64))

    def fake_recommend(model, pairs, sweep=tf.ITERS_SWEEP, tolerance=0.01):
        seen["pairs"] = len(pairs)
        return 5, {4: 1.0, 5: 0.5}

    monkeypatch.setattr(tf, "eval_pairs", fake_eval_pairs)
    monkeypatch.setattr(tf, "recommend_iters", fake_recommend)
    summary = train(cfg)
    assert seen["pairs"] == 1
    assert recommended_iters(summary["weights"]) == 5
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any(e["event"] == "iters" and e["chosen"] == 5 for e in log)

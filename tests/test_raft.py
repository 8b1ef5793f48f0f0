"""RAFT / RAFT-small: architecture sizes, checkpoint loading in every naming, correlation lookup,
padding, determinism. Random weights only (no checkpoint ships with the project)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from celgraph.models.raft import (CorrBlock, FeatureCache, InputPadder, RAFT, detect_variant, from_torchvision_keys,
                                  load_raft, raft_flow, raft_key_map, raft_large, raft_small,
                                  read_raft_state_dict, save_safetensors, to_torchvision_keys)

H, W = 64, 96                      # smallest comfortable size: the coarsest level is 1×1


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _randomised(model: RAFT, seed: int) -> RAFT:
    """Every tensor random (batch-norm statistics included), so a mis-wired load shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                t.fill_(7)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * (0.05 if t.dim() > 1 else 0.1))
    return model.eval()


@pytest.fixture(scope="module")
def models():
    return {"large": _randomised(raft_large(), 1), "small": _randomised(raft_small(), 2)}


@pytest.fixture(scope="module")
def frames():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 3, H, W, generator=g) * 255
    return a, torch.roll(a, shifts=(1, 2), dims=(2, 3))


def _run(model, frames, iters=2):
    with torch.inference_mode():
        return model(*frames, iters=iters, test_mode=True)[1]


def _official(model: RAFT) -> dict:
    """The model's weights as the official .pth files hold them: `module.` prefix, both aliases."""
    return {"module." + k: v.clone() for k, v in model.state_dict().items()}


def _same_state(a: RAFT, b: RAFT) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ------------------------------------------------------------------ architecture

def test_parameter_counts_match_the_reference():
    large, small = raft_large(), raft_small()
    count = lambda m: sum(p.numel() for p in m.parameters())          # noqa: E731
    assert count(large) == 5_257_536
    parts = [count(large.fnet), count(large.cnet), count(large.update_block)]
    assert parts == [1_066_848, 1_069_728, 3_120_960]
    assert count(small) == 990_162
    assert [count(small.fnet), count(small.cnet), count(small.update_block)] == [55_264, 58_368, 876_530]


def test_state_dict_has_the_official_key_totals_and_aliases():
    large, small = raft_large().state_dict(), raft_small().state_dict()
    assert len(large) == 179 and len(small) == 106
    for L in (2, 3):
        for leaf in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            assert f"cnet.layer{L}.0.norm3.{leaf}" in large
            assert f"cnet.layer{L}.0.downsample.1.{leaf}" in large
    assert not any(".norm" in k for k in large if k.startswith("fnet."))   # instance norm: no state
    assert not any(".norm" in k for k in small)                            # instance / no norm
    assert "update_block.mask.0.weight" in large and "fnet.layer1.0.conv3.weight" in small


@pytest.mark.parametrize("variant", ["large", "small"])
def test_forward_shapes(models, frames, variant):
    model = models[variant]
    with torch.inference_mode():
        preds = model(*frames, iters=3)
        low, up = model(*frames, iters=3, test_mode=True)
    assert len(preds) == 3 and all(p.shape == (1, 2, H, W) for p in preds)
    assert low.shape == (1, 2, H // 8, W // 8) and up.shape == (1, 2, H, W)
    assert torch.equal(up, preds[-1])            # test mode skips work, not results


def test_forward_rejects_sizes_not_divisible_by_8(models):
    x = torch.zeros(1, 3, 60, 96)
    with pytest.raises(ValueError, match="divisible by 8"):
        models["small"](x, x, iters=1)


def test_output_is_deterministic_on_cpu(models):
    rng = np.random.default_rng(3)
    a = rng.random((H, W, 3), dtype=np.float32)
    b = np.roll(a, 2, axis=1)
    for model in models.values():
        f1 = raft_flow(model, a, b, iters=2)
        f2 = raft_flow(model, a, b, iters=2)
        assert f1.dtype == np.float32 and f1.shape == (H, W, 2)
        assert np.array_equal(f1, f2)


def test_raft_flow_takes_any_size_and_batches(models):
    rng = np.random.default_rng(4)
    a, b = rng.random((2, 2, 50, 70, 3), dtype=np.float32)
    model = models["small"]
    single = raft_flow(model, a[0], b[0], iters=1)
    batch = raft_flow(model, a, b, iters=1)
    assert single.shape == (50, 70, 2) and batch.shape == (2, 50, 70, 2)
    np.testing.assert_allclose(batch[0], single, atol=1e-4)
    assert model.training is False


def test_feature_cache_gives_the_same_flow_and_encodes_each_frame_once(models, monkeypatch):
    rng = np.random.default_rng(5)
    clip = rng.random((3, 40, 56, 3), dtype=np.float32)
    pairs = [(0, 1), (1, 0), (1, 2), (0, 2), (2, 1)]
    for model in models.values():
        expected = [raft_flow(model, clip[i], clip[j], iters=2) for i, j in pairs]
        calls = {"features": 0, "context": 0}
        for name in calls:
            real = getattr(model, name)
            monkeypatch.setattr(model, name, lambda x, _real=real, _n=name: (calls.__setitem__(_n, calls[_n] + 1),
                                                                            _real(x))[1])
        cache = FeatureCache(capacity=8)
        for (i, j), want in zip(pairs, expected):
            got = raft_flow(model, clip[i], clip[j], iters=2, cache=cache, keys=(f"f{i}", f"f{j}"))
            np.testing.assert_allclose(got, want, atol=1e-4)
        assert calls == {"features": 3, "context": 3}     # once per frame / per source frame
        monkeypatch.undo()


def test_feature_cache_drops_the_least_recently_used_and_needs_keys(models):
    cache = FeatureCache(capacity=2)
    for key in "abc":
        cache.get(key, lambda k=key: k.upper())
    assert len(cache) == 2 and cache.get("a", lambda: "again") == "again"
    a = np.zeros((16, 16, 3), np.float32)
    with pytest.raises(ValueError, match="keys"):
        raft_flow(models["small"], a, a, iters=1, cache=cache)


# ------------------------------------------------------------------ correlation

def _brute_force_lookup(f1, f2, coords, levels, r):
    """Explicit dot products, explicit 2×2 pooling, explicit zero-padded bilinear sampling."""
    f1, f2, coords = (t.double().numpy() for t in (f1, f2, coords))
    B, D, h, w = f1.shape
    K = 2 * r + 1
    out = np.zeros((B, levels * K * K, h, w))
    for b in range(B):
        vol = np.einsum("dyx,dij->yxij", f1[b], f2[b]) / np.sqrt(D)       # h×w×h×w
        pyramid = [vol]
        for _ in range(levels - 1):
            v = pyramid[-1]
            ky, kx = (2 if n > 1 else 1 for n in v.shape[2:])       # a size-1 dimension stays 1
            ph, pw = v.shape[2] // ky, v.shape[3] // kx
            v = v[:, :, :ky * ph, :kx * pw].reshape(h, w, ph, ky, pw, kx).mean(axis=(3, 5))
            pyramid.append(v)
        for lvl, v in enumerate(pyramid):
            th, tw = v.shape[2:]

            def at(y1, x1, yy, xx):
                return v[y1, x1, yy, xx] if 0 <= yy < th and 0 <= xx < tw else 0.0

            for y1 in range(h):
                for x1 in range(w):
                    cx = coords[b, 0, y1, x1] / 2 ** lvl
                    cy = coords[b, 1, y1, x1] / 2 ** lvl
                    for i in range(K):            # x offset: the slow index
                        for j in range(K):        # y offset: the fast index
                            px, py = cx + i - r, cy + j - r
                            x0, y0 = int(np.floor(px)), int(np.floor(py))
                            ax, ay = px - x0, py - y0
                            val = ((1 - ax) * (1 - ay) * at(y1, x1, y0, x0)
                                   + ax * (1 - ay) * at(y1, x1, y0, x0 + 1)
                                   + (1 - ax) * ay * at(y1, x1, y0 + 1, x0)
                                   + ax * ay * at(y1, x1, y0 + 1, x0 + 1))
                            out[b, lvl * K * K + i * K + j, y1, x1] = val
    return out


@pytest.mark.parametrize("radius,h,w", [(1, 8, 10), (3, 8, 10), (2, 3, 9)])
def test_corr_lookup_matches_brute_force(radius, h, w):
    g = torch.Generator().manual_seed(5)
    B, D = 1, 8               # pyramids 8×10, 4×5, 2×2, 1×1 and 3×9, 1×4, 1×2, 1×1
    f1 = torch.randn(B, D, h, w, generator=g)
    f2 = torch.randn(B, D, h, w, generator=g)
    coords = torch.stack([torch.rand(B, h, w, generator=g) * (w + 4) - 2,      # some outside
                          torch.rand(B, h, w, generator=g) * (h + 4) - 2], dim=1)
    coords[0, :, 0, 0] = torch.tensor([3.0, 2.0])                             # integer position
    got = CorrBlock(f1, f2, num_levels=4, radius=radius)(coords).double().numpy()
    want = _brute_force_lookup(f1, f2, coords, levels=4, r=radius)
    assert got.shape == (B, 4 * (2 * radius + 1) ** 2, h, w)
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-5)


# ------------------------------------------------------------------ padding

@pytest.mark.parametrize("mode", ["sintel", "kitti"])
@pytest.mark.parametrize("size", [(64, 96), (65, 97), (37, 50), (1, 8), (436, 1024), (375, 1242)])
def test_padding_round_trips(mode, size):
    x = torch.arange(2 * 3 * size[0] * size[1], dtype=torch.float32).view(2, 3, *size)
    padder = InputPadder(x.shape, mode=mode)
    (p,) = padder.pad(x)
    assert p.shape[-2] % 8 == 0 and p.shape[-1] % 8 == 0
    assert p.shape[-2] - size[0] < 8 and p.shape[-1] - size[1] < 8
    assert torch.equal(padder.unpad(p), x)
    left, right, top, bottom = padder.padding
    assert left == (p.shape[-1] - size[1]) // 2
    if mode == "kitti":
        assert top == 0
    else:
        assert top == (p.shape[-2] - size[0]) // 2
    if bottom:
        assert torch.equal(p[..., -1, left:left + size[1]], x[..., -1, :])    # replicated edge


def test_padder_rejects_unknown_mode():
    with pytest.raises(ValueError):
        InputPadder((1, 3, 10, 10), mode="chairs")


# ------------------------------------------------------------------ loading

@pytest.mark.parametrize("variant", ["large", "small"])
def test_official_layout_loads_exactly(models, frames, tmp_path, variant):
    src = models[variant]
    path = tmp_path / f"raft-{variant}.pth"
    torch.save(_official(src), path)
    model, detected = load_raft(path)
    assert detected == variant and model.variant == variant and not model.training
    _same_state(src, model)
    assert torch.equal(_run(model, frames), _run(src, frames))


@pytest.mark.parametrize("variant", ["large", "small"])
def test_every_file_key_is_consumed_and_every_tensor_filled(models, variant):
    sd = read_raft_state_dict(_official(models[variant]))
    model, _ = load_raft(sd)
    target = model.state_dict()
    assert set(sd) == set(target)                     # nothing left over, nothing invented
    for k, v in target.items():
        assert v.shape == sd[k].shape and torch.equal(v, sd[k]), k


@pytest.mark.parametrize("drop", ["norm3", "downsample.1"])
def test_either_norm_alias_is_enough(models, frames, drop):
    src = models["large"]
    sd = {k: v for k, v in _official(src).items() if f".0.{drop}." not in k}
    assert len(sd) == 179 - 10
    model, _ = load_raft(sd)
    _same_state(src, model)
    state = model.state_dict()
    for L in (2, 3):
        assert torch.equal(state[f"cnet.layer{L}.0.norm3.running_var"],
                           state[f"cnet.layer{L}.0.downsample.1.running_var"])
    assert torch.equal(_run(model, frames), _run(src, frames))


def test_num_batches_tracked_is_optional(models):
    sd = {k: v for k, v in _official(models["large"]).items() if "num_batches_tracked" not in k}
    model, variant = load_raft(sd)
    assert variant == "large"


def test_aliases_that_disagree_are_an_error(models):
    sd = _official(models["large"])
    sd["module.cnet.layer2.0.norm3.weight"] = sd["module.cnet.layer2.0.norm3.weight"] + 1
    with pytest.raises(ValueError, match="aliased keys"):
        load_raft(sd)


@pytest.mark.parametrize("variant", ["large", "small"])
def test_torchvision_layout_loads_exactly(models, frames, tmp_path, variant):
    src = models[variant]
    tv = to_torchvision_keys(_official(src))
    assert not any(k.startswith(("module.", "fnet.", "cnet.")) or ".norm" in k for k in tv)
    assert len(tv) == {"large": 169, "small": 106}[variant]           # aliases merged
    assert ("mask_predictor.conv.weight" in tv) == (variant == "large")
    path = tmp_path / "tv.pth"
    torch.save(tv, path)
    model, detected = load_raft(path)
    assert detected == variant
    _same_state(src, model)
    assert torch.equal(_run(model, frames), _run(src, frames))


def test_torchvision_key_map_matches_torchvision_shapes(models):
    tv = {k: tuple(t.shape) for k, t in to_torchvision_keys(models["large"].state_dict()).items()}
    assert tv["feature_encoder.convnormrelu.0.weight"] == (64, 3, 7, 7)
    assert tv["context_encoder.layer2.0.downsample.1.running_mean"] == (96,)
    assert tv["context_encoder.layer3.1.convnormrelu2.1.weight"] == (128,)
    assert tv["feature_encoder.conv.weight"] == (256, 128, 1, 1)
    assert tv["update_block.motion_encoder.convcorr1.0.weight"] == (256, 324, 1, 1)
    assert tv["update_block.motion_encoder.conv.0.weight"] == (126, 256, 3, 3)
    assert tv["update_block.recurrent_block.convgru1.convz.weight"] == (128, 384, 1, 5)
    assert tv["update_block.recurrent_block.convgru2.convq.weight"] == (128, 384, 5, 1)
    assert tv["mask_predictor.convrelu.0.weight"] == (256, 128, 3, 3)
    assert tv["mask_predictor.conv.weight"] == (576, 256, 1, 1)
    small = {k: tuple(t.shape) for k, t in to_torchvision_keys(models["small"].state_dict()).items()}
    assert small["feature_encoder.layer3.0.convnormrelu3.0.weight"] == (96, 24, 1, 1)
    assert small["context_encoder.conv.weight"] == (160, 96, 1, 1)
    assert small["update_block.motion_encoder.convcorr1.0.weight"] == (96, 196, 1, 1)
    assert small["update_block.recurrent_block.convgru1.convr.weight"] == (96, 242, 3, 3)
    assert "update_block.recurrent_block.convgru2.convz.weight" not in small


@pytest.mark.parametrize("variant", ["large", "small"])
def test_key_map_covers_every_module_and_inverts(models, variant):
    mapping = raft_key_map(variant)
    sd = models[variant].state_dict()
    assert {k.rpartition(".")[0] for k in sd} <= set(mapping)
    back = from_torchvision_keys(to_torchvision_keys(sd))
    aliases = {k for k in sd if (".0.norm3." in k and variant == "large") or ".norm4." in k}
    assert set(back) == set(sd) - aliases
    assert all(torch.equal(back[k], sd[k]) for k in back)


def test_variant_is_detected_from_keys(models):
    large, small = _official(models["large"]), _official(models["small"])
    assert detect_variant(large) == "large" and detect_variant(small) == "small"
    assert detect_variant(to_torchvision_keys(large)) == "large"
    assert detect_variant(to_torchvision_keys(small)) == "small"
    # without the marker keys the stem width still tells
    assert detect_variant({"fnet.conv1.weight": torch.zeros(32, 3, 7, 7)}) == "small"
    with pytest.raises(ValueError, match="cannot tell"):
        detect_variant({"foo.weight": torch.zeros(3)})


def test_small_weights_in_the_large_model_name_the_problem(models):
    with pytest.raises(ValueError) as e:
        load_raft(_official(models["small"]), variant="large")
    msg = str(e.value)
    assert "RAFT (large)" in msg and "looks like RAFT-small" in msg and "variant='small'" in msg
    assert "missing (" in msg and "unexpected (" in msg and "wrong shape (" in msg
    assert "fnet.layer1.0.conv3.weight" in msg            # a small-only key, reported as unexpected


def test_missing_key_is_named(models):
    sd = _official(models["large"])
    del sd["module.update_block.flow_head.conv2.bias"]
    with pytest.raises(ValueError, match=r"missing \(1\): update_block\.flow_head\.conv2\.bias"):
        load_raft(sd)


def test_wrong_shape_is_named(models):
    sd = _official(models["small"])
    sd["module.update_block.gru.convz.weight"] = torch.zeros(96, 242, 1, 5)
    with pytest.raises(ValueError) as e:
        load_raft(sd)
    assert ("wrong shape (1): update_block.gru.convz.weight: file [96, 242, 1, 5], "
            "model [96, 242, 3, 3]") in str(e.value)


def test_unexpected_key_is_named(models):
    sd = _official(models["small"])
    sd["module.update_block.extra.weight"] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"unexpected \(1\): update_block\.extra\.weight"):
        load_raft(sd)


def test_unknown_file_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="cannot tell"):
        load_raft({"foo.weight": torch.zeros(3)})
    with pytest.raises(FileNotFoundError):
        load_raft(tmp_path / "nope.pth")


class _Payload:
    pass


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"x": _Payload()}, path)
    with pytest.raises(ValueError, match="weights-only"):
        load_raft(path)


def test_wrapped_checkpoint_is_unwrapped(models):
    model, variant = load_raft({"state_dict": _official(models["small"]), "epoch": 3})
    assert variant == "small"


@pytest.mark.parametrize("variant", ["large", "small"])
def test_safetensors_round_trip(models, frames, tmp_path, variant):
    from safetensors import safe_open
    src = models[variant]
    path = save_safetensors(src, tmp_path / "w" / "raft.safetensors")
    with safe_open(str(path), "pt") as f:
        keys = set(f.keys())
        assert f.metadata()["variant"] == variant
    assert not any(".downsample.1." in k for k in keys)          # one name per aliased tensor
    model, detected = load_raft(path)
    assert detected == variant
    _same_state(src, model)
    assert torch.equal(_run(model, frames), _run(src, frames))

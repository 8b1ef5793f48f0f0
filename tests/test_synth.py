"""celgraph.synth: determinism, exactness of flow / transforms / layers, degradations, metrics.

Small sizes only; the whole file runs in well under 30 s on 2 CPU cores.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from celgraph.synth import degrade_lines, degrade_photo, make_clip, make_lineart, metrics

W, H, T = 192, 112, 4


@pytest.fixture(scope="module")
def clips():
    return {d: [make_clip(s, width=W, height=H, n_frames=T, deform=d) for s in (0, 1, 2)] for d in (False, True)}


def _warp(img, flow):
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _warp_error(clip, direction="fw", flow_key=None):
    errs = []
    for t in range(clip.n_frames):
        t2 = t + 1 if direction == "fw" else t - 1
        if not 0 <= t2 < clip.n_frames:
            continue
        f, g = clip.frames[t], clip.frames[t2]
        fl = f[flow_key or f"flow_{direction}"]
        m = ~f[f"occ_{direction}"]
        e = np.abs(_warp(g["color"], fl) - f["color"]).mean(2)
        errs.append(float(e[m].mean()))
    return float(np.mean(errs))


# ---------------------------------------------------------------- determinism

def test_same_seed_identical_different_seed_differs():
    a = make_clip(7, width=128, height=80, n_frames=3).to_dict()
    b = make_clip(7, width=128, height=80, n_frames=3).to_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    c = make_clip(8, width=128, height=80, n_frames=3).to_dict()
    assert not np.array_equal(a["color"], c["color"])
    s1, s2 = make_lineart(5, 128, 96), make_lineart(5, 128, 96)
    assert np.array_equal(s1["lines"], s2["lines"]) and np.array_equal(s1["regions"], s2["regions"])
    assert not np.array_equal(s1["lines"], make_lineart(6, 128, 96)["lines"])
    d1, d2 = degrade_lines(s1, 3), degrade_lines(s2, 3)
    assert np.array_equal(d1["lines"], d2["lines"]) and np.array_equal(d1["gap_mask"], d2["gap_mask"])
    p1, p2 = degrade_photo(a["color"][0], 1), degrade_photo(a["color"][0], 1)
    assert np.array_equal(p1, p2)


def test_clip_shapes_and_dtypes(clips):
    clip = clips[True][0]
    S = clip.n_sprites
    f = clip.frames[1]
    assert f["color"].shape == (H, W, 3) and f["color"].dtype == np.float32
    assert f["fill"].shape == (H, W, 3) and f["lines"].shape == (H, W)
    assert f["regions"].dtype == np.int32 and f["parts"].dtype == np.int32
    assert f["alpha"].shape == (S, H, W) and f["alpha_full"].shape == (S, H, W)
    assert f["transforms"].shape == (S, 3, 3) and f["plate_transform"].shape == (3, 3)
    assert f["flow_fw"].shape == (H, W, 2) and f["occ_fw"].dtype == bool
    assert sorted(f["depth_order"].tolist()) == list(range(S))
    assert np.isfinite(f["flow_fw"]).all() and np.isfinite(f["flow_bw"]).all()
    assert clip.frames[-1]["occ_fw"].all() and clip.frames[0]["occ_bw"].all()
    for k in ("color", "fill", "lines", "alpha"):
        assert f[k].min() >= 0 and f[k].max() <= 1
    import json
    json.dumps(clip.meta)
    d = clip.to_dict()
    assert d["color"].shape == (T, H, W, 3) and d["plate"].ndim == 3


# ---------------------------------------------------------------- exactness

@pytest.mark.parametrize("deform", [False, True])
def test_flow_is_geometrically_exact(clips, deform):
    """Following the GT flow from p at t lands on the same plate / canvas point at t+-1
    (the deformation is inverted numerically; tolerance 1e-3 px)."""
    for clip in clips[deform]:
        for t in range(T):
            f = clip.frames[t]
            for d, t2 in (("fw", t + 1), ("bw", t - 1)):
                if not 0 <= t2 < T:
                    continue
                gx, gy = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
                fl = f[f"flow_{d}"].astype(np.float64)
                px, py = gx + fl[..., 0], gy + fl[..., 1]
                own = f["owner"]
                P0, P1 = f["plate_transform"], clip.frames[t2]["plate_transform"]
                m = own == 0
                a = P0[:2, :2] @ np.stack([gx[m], gy[m]]) + P0[:2, 2:]
                b = P1[:2, :2] @ np.stack([px[m], py[m]]) + P1[:2, 2:]
                assert np.abs(a - b).max() < 1e-4
                for k in range(clip.n_sprites):
                    m = own == k + 1
                    if not m.any():
                        continue
                    a = np.stack(clip.canvas_coords(k, t, gx[m], gy[m]))
                    b = np.stack(clip.canvas_coords(k, t2, px[m], py[m]))
                    assert np.abs(a - b).max() < 1e-4, np.abs(a - b).max()


@pytest.mark.parametrize("deform", [False, True])
def test_flow_reproduces_frames(deform):
    """Warping frame t+1 (t-1) by the GT forward (backward) flow reproduces frame t on
    non-occluded pixels (456x256).  Measured mean |err| 0.002-0.005 on 0..1 colour: the residual
    of bilinear resampling of anti-aliased content twice; zero flow gives >= 5x more."""
    for seed in (0, 1):
        clip = make_clip(seed, width=456, height=256, n_frames=3, deform=deform)
        e_fw = _warp_error(clip, "fw")
        e_bw = _warp_error(clip, "bw")
        assert e_fw < 0.008 and e_bw < 0.008, (e_fw, e_bw)
        f = clip.frames[0]
        zero = np.abs(_warp(clip.frames[1]["color"], 0 * f["flow_fw"]) - f["color"]).mean()
        assert zero > 2 * e_fw
        assert (~f["occ_fw"]).mean() > 0.5


def test_deformation_flow_is_exact_not_affine(clips):
    """With deformation, the exact flow beats the affine-only flow on sprite pixels."""
    better = 0
    for clip in clips[True]:
        f, g = clip.frames[1], clip.frames[2]
        gx, gy = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
        aff = f["flow_fw"].copy()
        for k in range(clip.n_sprites):
            m = f["owner"] == k + 1
            M = np.linalg.inv(g["transforms"][k]) @ f["transforms"][k]
            aff[..., 0][m] = (M[0, 0] * gx + M[0, 1] * gy + M[0, 2] - gx)[m]
            aff[..., 1][m] = (M[1, 0] * gx + M[1, 1] * gy + M[1, 2] - gy)[m]
        m = (~f["occ_fw"]) & (f["owner"] > 0)
        e_exact = np.abs(_warp(g["color"], f["flow_fw"]) - f["color"]).mean(2)[m].mean()
        e_aff = np.abs(_warp(g["color"], aff) - f["color"]).mean(2)[m].mean()
        better += e_exact < e_aff
    assert better == len(clips[True])


def test_transforms_map_canvas_exactly(clips):
    """deform=False: sampling each sprite canvas at transforms . p gives the sprite's alpha in the
    frame, and its colour wherever it is the visible, opaque top layer."""
    for clip in clips[False]:
        for t in (0, T - 1):
            f = clip.frames[t]
            gx, gy = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
            for k, sp in enumerate(clip.sprites):
                A = f["transforms"][k]
                mx = (A[0, 0] * gx + A[0, 1] * gy + A[0, 2]).astype(np.float32)
                my = (A[1, 0] * gx + A[1, 1] * gy + A[1, 2]).astype(np.float32)
                a = cv2.remap(sp.canvas["A"], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
                assert np.abs(a - f["alpha_full"][k]).max() < 1e-4
                P = cv2.remap(sp.canvas["P"], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
                top = f["alpha"][k] > 0.9999
                if top.any():
                    assert np.abs(P[top] - f["color"][top]).max() < 1e-4
                # the exact canvas coordinates are the affine ones
                qx, qy = clip.canvas_coords(k, t, gx, gy)
                assert np.allclose(qx, mx, atol=1e-3) and np.allclose(qy, my, atol=1e-3)


def test_alpha_regions_lines_agree(clips):
    for clip in clips[True] + clips[False]:
        sprite_of = np.zeros(max(r["id"] for r in clip.meta["regions"]) + 1, np.int64) - 1
        part_of = np.zeros_like(sprite_of)
        for r in clip.meta["regions"]:
            sprite_of[r["id"]] = r["sprite"]
            part_of[r["id"]] = r["part"]
        for f in clip.frames:
            reg = f["regions"]
            assert np.array_equal(f["parts"], np.where(reg > 0, part_of[reg], 0))
            for k in range(clip.n_sprites):
                mine = (reg > 0) & (sprite_of[reg] == k)
                # sprite k's regions only where it has coverage, and visible unless under ink
                assert (f["alpha_full"][k][mine] > 0).all()
                assert ((f["alpha"][k][mine] > 0) | (f["lines"][mine] > 0)).all()
                # fully visible, ink-free pixels of sprite k carry its region ids
                solid = (f["alpha"][k] > 0.999) & (f["lines"] < 1e-3)
                assert mine[solid].all()
            # ink only where some sprite is visible; background pixels have no ink
            assert (f["alpha"].sum(0)[f["lines"] > 0] > 0).all()
            assert (f["lines"][f["alpha_full"].sum(0) == 0] == 0).all()
            # the line art encloses the parts: flood-filling the clean lines leaks nothing
            assert metrics.fill_leaks(f["lines"], f["parts"]) == 0


# ---------------------------------------------------------------- degradations

def test_degrade_lines_vector():
    min_gap, max_gap = 2, 10
    n_gaps = n_open = 0
    for seed in range(4):
        s = make_lineart(seed, 256, 192)
        assert metrics.fill_leaks(s["lines"], s["regions"], ignore=0) == 0
        d = degrade_lines(s, seed + 10, max_gap=max_gap, min_gap=min_gap)
        gt, deg = d["gt"], d["lines"]
        assert (deg <= gt + 1e-6).all()
        assert d["gap_mask"].any() and len(d["gaps"]) >= 1
        assert np.array_equal(d["gap_mask"], (gt >= 0.5) & (deg < 0.5))
        for g in d["gaps"]:
            assert min_gap <= g["length"] <= max_gap
            p = g["path"].astype(np.float32)
            v = cv2.remap(deg, p[:, 0][None], p[:, 1][None], cv2.INTER_LINEAR)[0]
            step = np.median(np.linalg.norm(np.diff(p, axis=0), axis=1))
            run = best = 0
            for x in v < 0.5:
                run = run + 1 if x else 0
                best = max(best, run)
            clear = best * step
            assert min_gap - 1.5 <= clear <= max_gap + 3.0, (g["kind"], g["length"], clear)
            n_gaps += 1
        # open strokes stay open: nothing is changed around free ends, and no gap lies there
        om = d["open_mask"]
        assert np.array_equal(deg[om], gt[om])
        assert not (d["gap_mask"] & om).any()
        n_open += len(d["open_ends"])
    assert n_gaps >= 6 and n_open > 0


def test_degrade_lines_raster_and_erase():
    s = make_lineart(2, 256, 192)
    d = degrade_lines(s["lines"], 1, max_gap=8, min_gap=3, n_erase=1)
    assert d["gap_mask"].any() and (d["lines"] <= d["gt"] + 1e-6).all()
    cuts = [g for g in d["gaps"] if g["kind"] == "cut"]
    assert cuts and all(1.5 <= g["clear_length"] <= 10 for g in cuts)


def test_lineart_fullhd_and_photo():
    s = make_lineart(1, 1920, 1080, n_items=3)
    assert s["lines"].shape == (1080, 1920) and s["color"].shape == (1080, 1920, 3)
    assert 0.001 < (s["lines"] > 0.5).mean() < 0.3
    img = s["color"]
    out, params = degrade_photo(img, 0, jpeg=50, blur=0.7, noise=0.02, screentone=0.5, lighting=0.3,
                                return_params=True)
    assert out.shape == img.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    assert {"jpeg", "blur", "noise", "screentone", "lighting"} <= set(params)
    assert np.abs(out - img).mean() > 0.01
    same = degrade_photo(img, 0, jpeg=None, blur=None, noise=None, scale=None, lighting=None, hue=None,
                         saturation=None)
    assert np.abs(same - img).max() < 1e-6


# ---------------------------------------------------------------- metrics

def _shifted_pair(dx=2, dy=1):
    """A smooth random picture and the same picture moved by (dx, dy) px: flow img1 -> img2 = (dx, dy)."""
    rng = np.random.default_rng(3)
    img1 = cv2.GaussianBlur(rng.random((40, 48, 3)).astype(np.float32), (0, 0), 2.0)
    img2 = np.roll(img1, (dy, dx), axis=(0, 1))
    return img1, img2


def test_photometric_error_is_zero_for_the_true_shift_and_not_for_zero_flow():
    img1, img2 = _shifted_pair(2, 1)
    fw = np.broadcast_to(np.float32([2, 1]), (40, 48, 2)).copy()
    inside = metrics.lands_inside(fw)
    assert not inside[:, -2:].any() and not inside[-1:].any() and inside[:-1, :-2].all()
    # away from the rolled-in border the true flow brings frame t+1 back onto frame t exactly
    core = np.zeros((40, 48), bool)
    core[2:-2, 3:-3] = True
    assert metrics.photometric_error(img1, img2, fw, core) == pytest.approx(0.0, abs=1e-6)
    zero = metrics.photometric_error(img1, img2, np.zeros_like(fw), core)
    assert zero > 0.01
    # half a pixel off: bilinear sampling blurs, the error lies between the two
    assert 0 < metrics.photometric_error(img1, img2, fw + np.float32([0.5, 0]), core) < zero
    # per pixel the mean over channels: a constant offset of 0.1 in one channel of three is 0.1 / 3
    off = img2.copy()
    off[..., 0] += 0.1
    assert metrics.photometric_error(img1, off, fw, core) == pytest.approx(0.1 / 3, abs=1e-5)


def test_forward_backward_consistency_marks_flow_the_backward_flow_does_not_undo():
    fw = np.broadcast_to(np.float32([2, 1]), (40, 48, 2)).copy()
    bw = -fw
    ok = metrics.fb_consistent(fw, bw)
    assert (ok == metrics.lands_inside(fw)).all()            # consistent wherever it lands inside
    wrong = bw.copy()
    wrong[10:20, 10:20] = 0.0                                # the backward flow says "still" there
    ok2 = metrics.fb_consistent(fw, wrong)
    # p + fw(p) lands in the square for p in rows 9..18, columns 8..17: those are now occluded
    assert not ok2[9:19, 8:18].any() and ok2[25:35, 25:35].all()
    # zero flow both ways is consistent everywhere
    assert metrics.fb_consistent(np.zeros_like(fw), np.zeros_like(fw)).all()


def test_metrics_sanity():
    rng = np.random.default_rng(0)
    flow = rng.normal(size=(20, 30, 2)).astype(np.float32)
    assert metrics.epe(flow, flow) == 0.0
    assert metrics.epe(flow + np.array([3.0, 4.0], np.float32), flow) == pytest.approx(5.0, abs=1e-5)
    occ = np.zeros((20, 30), bool)
    occ[:, :10] = True
    bad = flow.copy()
    bad[:, :10] += 1.0
    rep = metrics.epe_report(bad, flow, occ)
    assert rep["noc"] == 0.0 and rep["all"] > 0
    # masks: a 10x10 square translated by 5 px -> IoU = 50 / 150
    a = np.zeros((40, 40), bool)
    a[10:20, 10:20] = True
    b = np.roll(a, 5, axis=1)
    assert metrics.iou(a, a) == 1.0 and metrics.iou(a, b) == pytest.approx(1 / 3)
    # transforms: a translation by (3, 4) -> corner error 5
    Ht = np.array([[1, 0, 3], [0, 1, 4], [0, 0, 1.0]])
    assert metrics.corner_error(np.eye(3), np.eye(3), 100, 50) == 0.0
    assert metrics.corner_error(Ht, np.eye(3), 100, 50) == pytest.approx(5.0)
    img = rng.random((16, 16, 3))
    assert metrics.psnr(img, img) == float("inf")
    assert metrics.psnr(np.clip(img, 0, 0.9) * 0 + 0.5, np.full_like(img, 0.6)) == pytest.approx(20.0)
    # lines: perfect -> F1 1, chamfer 0; 1-px shift within tol 1 -> F1 1; 2-px shift -> chamfer 2
    lines = np.zeros((40, 40), bool)
    lines[20, 5:35] = True
    lines[5:35, 8] = True
    assert metrics.line_f1(lines, lines) == 1.0 and metrics.chamfer(lines, lines) == 0.0
    shifted = np.roll(lines, 1, axis=0)
    assert metrics.line_f1(shifted, lines, tol=1) == 1.0
    assert metrics.line_f1(shifted, lines, tol=0) < 1.0
    hl = np.zeros((40, 40), bool)
    hl[20, 5:35] = True
    assert metrics.chamfer(np.roll(hl, 2, axis=0), hl) == pytest.approx(2.0)
    # fill leaks: a closed square ring separates 2 regions; a gap merges them (1 leak)
    ring = np.zeros((40, 40), np.float32)
    ring[10:30, 10:30] = 1.0
    ring[12:28, 12:28] = 0.0
    gt = np.zeros((40, 40), np.int32)
    gt[12:28, 12:28] = 1
    gt[ring > 0] = 2
    assert metrics.fill_leaks(ring, gt, ignore=2) == 0
    gap = ring.copy()
    gap[18:22, 10:12] = 0.0
    assert metrics.fill_leaks(gap, gt, ignore=2) == 1
    gm = (ring > 0) & (gap == 0)
    assert metrics.gap_recall(ring > 0, gm) == 1.0 and metrics.gap_recall(gap > 0, gm) < 1.0
    assert metrics.spurious_ink(ring > 0, ring > 0) == 0.0
    extra = ring > 0
    extra[2, 2] = True
    assert metrics.spurious_ink(extra, ring > 0) == pytest.approx(1e6 / 1600)


# ---- line continuity (metrics.line_continuity) --------------------------------------------------

def test_line_continuity_counts_the_breaks_of_a_dashed_line():
    from celgraph.synth import metrics
    whole = np.zeros((20, 60), bool)
    whole[10, 5:55] = True
    c = metrics.line_continuity(whole)
    assert c == {"length": 50, "strokes": 1, "mean_stroke": 50.0, "ends_per_kpx": 40.0}
    dashed = whole.copy()
    dashed[10, 15:17] = dashed[10, 30:32] = False               # two breaks: three strokes, six ends
    d = metrics.line_continuity(dashed)
    assert d["strokes"] == 3 and d["length"] == 46 and d["ends_per_kpx"] == 1000 * 6 / 46


def test_line_continuity_ignores_width_and_specks():
    from celgraph.synth import metrics
    thick = np.zeros((20, 60), bool)
    thick[8:11, 5:55] = True                                     # a 3-px stroke: one skeleton line
    thick[2, 2] = True                                           # a 1-px speck (below min_length)
    c = metrics.line_continuity(thick, min_length=3)
    assert c["strokes"] == 1 and 45 <= c["length"] <= 50 and c["ends_per_kpx"] == 1000 * 2 / c["length"]
    assert metrics.line_continuity(np.zeros((8, 8), bool)) == {"length": 0, "strokes": 0, "mean_stroke": 0.0,
                                                                "ends_per_kpx": 0.0}


def test_a_closed_ring_has_no_stroke_ends():
    import cv2
    from celgraph.synth import metrics
    ring = np.zeros((40, 40), np.uint8)
    cv2.circle(ring, (20, 20), 12, 1, 1)
    c = metrics.line_continuity(ring.astype(bool))
    assert c["strokes"] == 1 and c["ends_per_kpx"] == 0.0

"""Classical flow (OpenCV DIS) and flow visualisation: known motions recovered, the direction
convention, presets; the Middlebury colour coding and .flo files."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from celgraph.models.flow_classical import DIS_PRESETS, dis_flow, to_gray_u8
from celgraph.models.flow_viz import flow_to_color, flow_wheel, read_flo, write_flo

H, W = 120, 160
MARGIN = 16


def _texture(h=H, w=W, seed=0) -> np.ndarray:
    """Smooth multi-scale colour texture, H×W×3 float32 in 0..1."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for sigma, amp in ((8, 0.5), (3, 0.3), (1.2, 0.2)):
        img += amp * cv2.GaussianBlur(rng.random((h, w, 3), dtype=np.float32), (0, 0), sigma)
    img -= img.min()
    return img / img.max()


def _warp(img, M):
    """img2 with img2(M p) = img1(p), so the true flow is M p − p."""
    return cv2.warpAffine(img, M, (img.shape[1], img.shape[0]), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)


def _epe(flow, gt):
    inner = (slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    return float(np.linalg.norm(flow[inner] - gt[inner], axis=-1).mean())


def _grid():
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    return xs, ys


def test_dis_recovers_a_translation_with_the_project_sign_convention():
    img1 = _texture()
    img2 = _warp(img1, np.float32([[1, 0, 3], [0, 1, -2]]))     # content moves right 3, up 2
    flow = dis_flow(img1, img2)
    assert flow.shape == (H, W, 2) and flow.dtype == np.float32
    gt = np.broadcast_to(np.float32([3, -2]), flow.shape)
    assert _epe(flow, gt) < 0.1
    assert np.median(flow[..., 0]) == pytest.approx(3, abs=0.1)     # +x right
    assert np.median(flow[..., 1]) == pytest.approx(-2, abs=0.1)    # +y down


def test_dis_recovers_a_small_rotation():
    img1 = _texture(seed=1)
    M = cv2.getRotationMatrix2D(((W - 1) / 2, (H - 1) / 2), 3.0, 1.0).astype(np.float32)
    img2 = _warp(img1, M)
    xs, ys = _grid()
    gt = np.dstack([M[0, 0] * xs + M[0, 1] * ys + M[0, 2] - xs,
                    M[1, 0] * xs + M[1, 1] * ys + M[1, 2] - ys])
    assert np.abs(gt).max() > 3                                    # a real rotation, not noise
    assert _epe(dis_flow(img1, img2), gt) < 0.25


def test_flow_maps_img1_pixels_into_img2():
    """img1(p) ≈ img2(p + flow(p)): warping img2 back with the flow reproduces img1."""
    img1 = _texture(seed=2)
    img2 = _warp(img1, np.float32([[1, 0, -4.5], [0, 1, 1.5]]))
    flow = dis_flow(img1, img2)
    xs, ys = _grid()
    back = cv2.remap(img2, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR)
    inner = (slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    assert np.abs(back[inner] - img1[inner]).mean() < 0.01
    assert np.abs(img2[inner] - img1[inner]).mean() > 0.03         # the frames do differ


@pytest.mark.parametrize("preset", sorted(DIS_PRESETS))
def test_every_preset_runs_and_finds_the_motion(preset):
    img1 = _texture(seed=3)
    img2 = _warp(img1, np.float32([[1, 0, 2], [0, 1, 1]]))
    flow = dis_flow(img1, img2, preset)
    assert flow.shape == (H, W, 2) and flow.dtype == np.float32
    assert _epe(flow, np.broadcast_to(np.float32([2, 1]), flow.shape)) < 0.5


def test_unknown_preset_and_mismatched_frames_are_errors():
    img = _texture()
    with pytest.raises(ValueError, match="preset"):
        dis_flow(img, img, "slow")
    with pytest.raises(ValueError, match="size"):
        dis_flow(img, img[:-1])


def test_dis_is_deterministic_and_takes_tiny_and_grey_frames():
    img1 = _texture(seed=4)
    img2 = _warp(img1, np.float32([[1, 0, 1], [0, 1, 0]]))
    assert np.array_equal(dis_flow(img1, img2), dis_flow(img1, img2))
    tiny = dis_flow(img1[:10, :12], img2[:10, :12])
    assert tiny.shape == (10, 12, 2) and np.isfinite(tiny).all()
    grey = dis_flow(img1.mean(-1), img2.mean(-1))
    assert grey.shape == (H, W, 2)


def test_warm_start_reaches_motion_beyond_the_pyramid():
    img1 = _texture(seed=5)
    img2 = _warp(img1, np.float32([[1, 0, 18], [0, 1, -11]]))     # too far for 160×120 frames
    gt = np.broadcast_to(np.float32([18, -11]), (H, W, 2))
    assert _epe(dis_flow(img1, img2), gt) > 5
    assert _epe(dis_flow(img1, img2, flow_init=0.8 * gt), gt) < 0.2
    with pytest.raises(ValueError, match="flow_init"):
        dis_flow(img1, img2, flow_init=np.zeros((H, W - 1, 2), np.float32))


def test_keyword_settings_override_the_preset():
    img1 = _texture(seed=6)
    img2 = _warp(img1, np.float32([[1, 0, 2], [0, 1, 1]]))
    base = dis_flow(img1, img2, "fast")
    tuned = dis_flow(img1, img2, "fast", var_iters=0, patch_size=12, patch_stride=6, finest_scale=1)
    assert not np.array_equal(base, tuned)
    assert _epe(tuned, np.broadcast_to(np.float32([2, 1]), tuned.shape)) < 0.5
    with pytest.raises(ValueError, match="patch_stride"):
        dis_flow(img1, img2, patch_size=8, patch_stride=9)


def test_to_gray_u8():
    img = np.zeros((2, 2, 3), np.float32)
    img[0, 0] = 1
    img[1, 1] = [0, 1, 0]
    g = to_gray_u8(img)
    assert g.dtype == np.uint8 and g[0, 0] == 255 and g[0, 1] == 0 and g[1, 1] == 150


# ------------------------------------------------------------------ visualisation

def test_zero_flow_is_white():
    col = flow_to_color(np.zeros((4, 5, 2), np.float32))
    assert col.shape == (4, 5, 3) and col.dtype == np.float32
    assert np.array_equal(col, np.ones_like(col))


def _hue(rgb):
    return cv2.cvtColor(np.asarray(rgb, np.float32).reshape(1, 1, 3), cv2.COLOR_RGB2HSV)[0, 0, 0]


def test_directions_map_to_distinct_hues():
    dirs = {"right": (1, 0), "down": (0, 1), "left": (-1, 0), "up": (0, -1)}
    flow = np.float32([[d for d in dirs.values()]])                       # 1×4×2
    col = flow_to_color(flow, max_flow=1.0)[0]
    hues = [_hue(c) for c in col]
    gaps = [min(abs(a - b), 360 - abs(a - b)) for i, a in enumerate(hues) for b in hues[i + 1:]]
    assert min(gaps) > 40
    right, down, left, up = col
    assert right[0] == pytest.approx(1) and right[1] < 0.05 and right[2] < 0.05        # red
    assert left[0] < 0.05 and left[1] > 0.6 and left[2] > 0.6                          # cyan
    assert up[2] == pytest.approx(1) and up[1] < 0.05                                  # blue-violet
    assert down[0] == pytest.approx(1) and down[1] > 0.6 and down[2] < 0.05            # orange-yellow


def test_saturation_follows_length_and_clips_beyond_max_flow():
    flow = np.float32([[[0.5, 0], [2, 0], [8, 0]]])
    half, full, over = flow_to_color(flow, max_flow=2.0)[0]
    assert half.min() == pytest.approx(0.75)               # halfway to red from white
    assert full.min() == pytest.approx(0.0) and full.max() == pytest.approx(1.0)
    assert over.max() == pytest.approx(0.75)                # beyond max_flow: darkened
    auto = flow_to_color(flow)[0]                          # scaled by the longest vector
    assert auto[2].min() == pytest.approx(0.0) and auto[2].max() == pytest.approx(1.0)


def test_colours_are_in_range_and_non_finite_is_black():
    rng = np.random.default_rng(6)
    flow = rng.normal(0, 10, (20, 30, 2)).astype(np.float32)
    flow[0, 0] = np.nan
    col = flow_to_color(flow)
    assert col.min() >= 0 and col.max() <= 1 and np.isfinite(col).all()
    assert np.array_equal(col[0, 0], [0, 0, 0])
    with pytest.raises(ValueError):
        flow_to_color(np.zeros((4, 4, 3)))


def test_flow_wheel_legend():
    wheel = flow_wheel(65)
    assert wheel.shape == (65, 65, 3) and wheel.dtype == np.float32
    assert np.allclose(wheel[32, 32], 1)                   # centre: no motion
    assert np.allclose(wheel[0, 0], 1)                     # outside the disc: background
    assert np.allclose(wheel[32, 64], flow_to_color(np.float32([[[1, 0]]]), 1.0)[0, 0], atol=1e-6)


def test_flo_round_trip(tmp_path):
    rng = np.random.default_rng(7)
    flow = rng.normal(0, 5, (6, 9, 2)).astype(np.float32)
    path = write_flo(tmp_path / "a.flo", flow)
    raw = path.read_bytes()
    assert raw[:4] == b"PIEH" and len(raw) == 12 + flow.size * 4
    assert np.array_equal(read_flo(path), flow)
    (tmp_path / "bad.flo").write_bytes(b"XXXX" + raw[4:])
    with pytest.raises(ValueError, match="magic"):
        read_flo(tmp_path / "bad.flo")

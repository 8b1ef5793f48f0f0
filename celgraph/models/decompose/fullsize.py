"""A decomposition learnt at a working size, delivered at the frames' full size.

The sprites are learnt on frames area-resized to a working size (456×256 is upstream's); a compositor
needs the layers at the size of the frames they came from (1280×720, 1920×1080). Here:

* transforms are re-expressed in full-size pixels: H_full = H_work·S, where S maps a full-size pixel
  to the working pixel it falls in (pixel centres at integers: x_w = (x_f + ½)·w/W − ½);
* alphas are upsampled edge-aware, by joint bilateral upsampling with the full-size frame as the guide,
  so mattes follow the frame's real edges;
* colours come from the full-size frames, never from upsampled working-size colours: a sprite layer
  is the full-size frame times its alpha; the plate is the full-size frame where its pixels can stand
  for the plate (plate_trust: the sprites leave them to the background, and they lie clear of the
  sprites or match the working-size plate, so a sprite's pixels its alpha missed stay out) and,
  elsewhere, those pixels of the other full-size frames resampled through the learnt plate transforms
  onto the plate canvas (a weighted mean per texel) and back into this frame where that agrees with
  the working-size plate; elsewhere, and where no frame gives a texel, the working-size plate, upsampled.

Plain numpy + OpenCV; nothing here knows the engine.
"""
from __future__ import annotations

import cv2
import numpy as np


def pixel_map(src_wh: tuple[int, int], dst_wh: tuple[int, int]) -> np.ndarray:
    """3×3 map from pixel coordinates of a src_w×src_h frame to those of the same frame at dst_w×dst_h
    (pixel centres at integers, the frame edges aligned)."""
    sx, sy = dst_wh[0] / src_wh[0], dst_wh[1] / src_wh[1]
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])


def rescale_transforms(transforms: np.ndarray, from_wh: tuple[int, int], to_wh: tuple[int, int]) -> np.ndarray:
    """…×3×3 frame-pixel → canvas maps of from_w×from_h frames, re-expressed for to_w×to_h frames."""
    if tuple(from_wh) == tuple(to_wh):
        return np.array(transforms, np.float64, copy=True)
    out = np.asarray(transforms, np.float64) @ pixel_map(to_wh, from_wh)
    return out / out[..., 2:3, 2:3]


def upsample_alpha(alpha: np.ndarray, guide: np.ndarray, sigma_s: float = 1.0, sigma_r: float = 0.08) -> np.ndarray:
    """N×h×w alphas → N×H×W at the guide's size (the H×W×3 full-size frame), by joint bilateral
    upsampling (Kopf et al. 2007): each full-size pixel averages the alphas of the 4×4 working pixels
    around it, weighted by distance (σ = sigma_s working pixels) and by how close the working pixel's
    colour (the frame area-resized to h×w, what the alphas were learnt on) is to its own (σ = sigma_r),
    so a matte edge moves onto the frame's edge instead of being smeared over a working pixel."""
    H, W = guide.shape[:2]
    n, h, w = alpha.shape
    if (h, w) == (H, W):
        return np.array(alpha, np.float32, copy=True)
    guide = np.ascontiguousarray(guide, np.float32)
    small = cv2.resize(guide, (w, h), interpolation=cv2.INTER_AREA)
    cy = (np.arange(H, dtype=np.float32) + 0.5) * (h / H) - 0.5
    cx = (np.arange(W, dtype=np.float32) + 0.5) * (w / W) - 0.5
    by, bx = np.floor(cy).astype(np.int64), np.floor(cx).astype(np.int64)
    acc = np.zeros((n, H, W), np.float32)
    wsum = np.zeros((H, W), np.float32)
    for dy in range(-1, 3):
        qy = np.clip(by + dy, 0, h - 1)
        wy = np.exp(-((cy - qy) ** 2) / (2 * sigma_s ** 2))
        for dx in range(-1, 3):
            qx = np.clip(bx + dx, 0, w - 1)
            wx = np.exp(-((cx - qx) ** 2) / (2 * sigma_s ** 2))
            col = small[qy[:, None], qx[None, :]]                                    # H×W×3
            d2 = ((guide - col) ** 2).sum(-1)
            wt = wy[:, None] * wx[None, :] * (np.exp(-d2 / (2 * sigma_r ** 2)) + 1e-4)   # 1e-4: spatial fallback
            acc += wt[None] * alpha[:, qy[:, None], qx[None, :]]
            wsum += wt
    return np.clip(acc / wsum[None], 0.0, 1.0).astype(np.float32)


def plate_trust(frame: np.ndarray, plate: np.ndarray, alpha: np.ndarray, gate: float = 32.0 / 256.0,
                near: float = 8.0) -> np.ndarray:
    """h×w float32 at the working size: 1 where a pixel of the (area-resized) frame may stand for the
    plate, 0 where it lies within `near` px (at 256 high; SpriteConfig.plate_near's) of a sprite (alpha
    N×h×w, 0 = the plate: the sprites' sum ≥ ½) and differs from the working-size plate (h×w×3) by more
    than `gate` (colour distance). There the alpha missed part of a sprite (a sleeve at the frame's edge,
    a strand of hair, a soft outline) and the working-size plate, whose fill took those votes back, shows
    what is behind it. deliver weighs a full-size pixel by this, upsampled, times 1 − its sprites' alpha."""
    cover = np.clip(np.clip(alpha[1:], 0.0, 1.0).sum(0), 0.0, 1.0)
    close = cv2.distanceTransform((cover < 0.5).astype(np.uint8), cv2.DIST_L2, 5) <= near * alpha.shape[1] / 256.0
    differs = np.linalg.norm(np.asarray(frame, np.float32) - plate, axis=-1) > gate
    return (~(close & differs)).astype(np.float32)


def plate_canvas(frames: list[np.ndarray], weights: list[np.ndarray], H0: np.ndarray,
                 power: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """The plate at full size on its canvas: every frame's pixels warped through H0[t] (full-size pixel →
    unit canvas) onto a texel grid of about one texel per full-size pixel, averaged with weights
    weight^power (confident background only; deliver's trust). Returns (canvas h×w×3 with NaN where no frame saw the
    background, C: unit canvas → canvas texel, 3×3). The grid covers the frames' footprint only."""
    Hf, Wf = frames[0].shape[:2]
    step = np.sqrt(np.abs(np.linalg.det(H0[:, :2, :2]))).min()
    corners = np.array([[0, Wf - 1, 0, Wf - 1], [0, 0, Hf - 1, Hf - 1], [1, 1, 1, 1]], np.float64)
    uv = np.concatenate([(H0[t] @ corners)[:2] / (H0[t] @ corners)[2:] for t in range(len(H0))], 1)
    lo = uv.min(1)
    C = np.array([[1 / step, 0, -lo[0] / step], [0, 1 / step, -lo[1] / step], [0, 0, 1.0]])
    size = np.ceil((uv.max(1) - lo) / step).astype(int) + 2
    acc = np.zeros((size[1], size[0], 3), np.float32)
    wsum = np.zeros((size[1], size[0]), np.float32)
    for frame, wt, H in zip(frames, weights, H0):
        M = C @ H
        w = np.clip(wt, 0.0, 1.0).astype(np.float32) ** power
        acc += cv2.warpPerspective(np.ascontiguousarray(frame * w[..., None], np.float32), M, tuple(size),
                                   flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        wsum += cv2.warpPerspective(w, M, tuple(size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    canvas = np.where((wsum > 1e-3)[..., None], acc / np.maximum(wsum, 1e-12)[..., None], np.nan)
    return canvas.astype(np.float32), C


def render_plate(frame: np.ndarray, trust: np.ndarray, canvas: np.ndarray, C: np.ndarray, H0: np.ndarray,
                 fallback: np.ndarray, gate: float = 32.0 / 256.0) -> np.ndarray:
    """One frame's full-size plate: the frame where its pixels stand for the plate (weight `trust`,
    plate_trust's upsampled), elsewhere the canvas rendered back through H0 (full-size pixel → unit
    canvas) where it agrees with `fallback` (the working-size plate, upsampled) within `gate`, and the
    fallback where it does not or the canvas has no texel. The canvas follows the plate through its
    homography alone, without the working size's per-frame alignment: where the street's depth moves
    one part against another (a roof against the sky), its texels misregister, and the working-size
    plate, aligned per frame, is the better guess."""
    Hf, Wf = frame.shape[:2]
    M = C @ H0
    back = cv2.warpPerspective(canvas, M, (Wf, Hf), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(np.nan,) * 3)
    off = np.isnan(back[..., 0]) | (np.linalg.norm(np.nan_to_num(back) - fallback, axis=-1) > gate)
    hidden = np.where(off[..., None], fallback, back)
    a = np.clip(trust, 0.0, 1.0)[..., None]
    return np.clip(a * frame + (1.0 - a) * hidden, 0.0, 1.0).astype(np.float32)


def deliver(frames_full: list[np.ndarray], alpha: np.ndarray, plate: np.ndarray, transforms: np.ndarray,
            progress=None) -> dict:
    """Full-size layers of the frames in `frames_full` (each Hf×Wf×3, 0..1) from a working-size result of
    the same frames: alpha T×N×h×w, plate T×h×w×3, transforms T×N×3×3 (working pixel → unit canvas).
    Returns {"alpha": T×N×Hf×Wf, "plate": T×Hf×Wf×3, "layers": T×N×Hf×Wf×4 (premultiplied; 0 = the
    opaque plate), "transforms": T×N×3×3 in full-size pixels}."""
    T, n, h, w = alpha.shape
    Hf, Wf = frames_full[0].shape[:2]
    tr = rescale_transforms(transforms, (w, h), (Wf, Hf))
    a_full = np.stack([upsample_alpha(alpha[t], frames_full[t]) for t in range(T)])
    trust = [np.clip(cv2.resize(plate_trust(cv2.resize(np.ascontiguousarray(frames_full[t], np.float32), (w, h),
                                                       interpolation=cv2.INTER_AREA), plate[t], alpha[t]),
                                (Wf, Hf), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
             * (1.0 - np.clip(a_full[t, 1:].sum(0), 0.0, 1.0)) for t in range(T)]
    canvas, C = plate_canvas(frames_full, trust, tr[:, 0])
    plates, layers = [], []
    for t in range(T):
        fallback = cv2.resize(plate[t], (Wf, Hf), interpolation=cv2.INTER_CUBIC)
        pl = render_plate(frames_full[t], trust[t], canvas, C, tr[t, 0], fallback)
        lay = np.concatenate([frames_full[t][None] * a_full[t, 1:, :, :, None], a_full[t, 1:, :, :, None]], 3)
        lay = np.concatenate([np.concatenate([pl, np.ones_like(pl[:, :, :1])], 2)[None], lay], 0)
        plates.append(pl)
        layers.append(lay.astype(np.float32))
        if progress is not None:
            progress(t + 1, T)
    return {"alpha": a_full, "plate": np.stack(plates), "layers": np.stack(layers), "transforms": tr}


def composite(layers: np.ndarray) -> np.ndarray:
    """…×N×H×W×4 layers (0 = the opaque plate) → the sprites over the plate: Σ_k≥1 layer_k +
    (1 − clip(Σ alpha_k))·plate."""
    cover = np.clip(layers[..., 1:, :, :, 3].sum(-3), 0.0, 1.0)[..., None]
    return np.clip(layers[..., 1:, :, :, :3].sum(-4) + (1.0 - cover) * layers[..., 0, :, :, :3], 0.0, 1.0)

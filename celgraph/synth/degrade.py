"""Photometric degradations of colour frames (inputs for the Sketch node): lighting gradients,
colour jitter, screentone, rescaling, blur, noise and JPEG."""
from __future__ import annotations

import math

import cv2
import numpy as np


def _rng(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _pick(rng, v):
    """None/False -> None; number -> itself; (lo, hi) -> uniform sample."""
    if v is None or v is False:
        return None
    if isinstance(v, (tuple, list)):
        return float(rng.uniform(v[0], v[1]))
    return float(v)


def halftone(gray, period, angle, soft=0.7):
    """Halftone dots of the darkness of ``gray`` (0..1): returns 0..1 (1 = paper)."""
    h, w = gray.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c, s = math.cos(angle), math.sin(angle)
    u = (c * xx + s * yy) * (2 * np.pi / period)
    v = (-s * xx + c * yy) * (2 * np.pi / period)
    T = 0.5 + 0.5 * np.cos(u) * np.cos(v)             # dot threshold map in 0..1
    dark = 1.0 - gray
    ink = np.clip((dark - (1.0 - T)) / max(soft * 0.25, 1e-3) + 0.5, 0, 1)
    return 1.0 - ink


def degrade_photo(color, seed, jpeg=(40, 95), blur=(0.0, 1.0), noise=(0.0, 5.0 / 255.0), scale=(0.5, 1.0),
                  screentone=None, lighting=(0.0, 0.3), hue=(-0.03, 0.03), saturation=(0.85, 1.15),
                  return_params=False):
    """Degrade a colour frame (H x W x 3 float in 0..1) like a scanned/compressed/re-lit image.

    Every parameter is None/False (off), a number (fixed) or a (lo, hi) range (sampled):
      jpeg: quality 1-100 (cv2.imencode round trip); blur: Gaussian sigma px; noise: Gaussian sigma
      (0..1 units); scale: down-then-up resampling factor; screentone: blend strength 0..1 of a
      halftone-dot rendering of the luminance (manga look; off by default);
      lighting: strength of a multiplicative linear + radial light gradient with a warm/cool tint;
      hue: shift as a fraction of the colour circle; saturation: multiplier.
    Returns the degraded float32 image (and the sampled parameters if return_params).
    """
    rng = _rng(seed)
    img = np.clip(np.asarray(color, np.float32), 0, 1).copy()
    H, W = img.shape[:2]
    params = {}
    # lighting gradient
    lg = _pick(rng, lighting)
    if lg:
        a = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        proj = ((xx - W / 2) * math.cos(a) + (yy - H / 2) * math.sin(a)) / max(W, H)
        cx, cy = rng.uniform(0, W), rng.uniform(0, H)
        rad = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / max(W, H)
        gain = 1.0 + lg * (2.0 * proj) - lg * 0.6 * rad ** 2
        tint = 1.0 + lg * 0.3 * rng.uniform(-1, 1) * np.array([1.0, 0.2, -1.0], np.float32)
        img = img * gain[..., None] * tint
        params["lighting"] = lg
    # colour jitter
    hs, sat = _pick(rng, hue), _pick(rng, saturation)
    if hs or (sat is not None and sat != 1.0):
        hsv = cv2.cvtColor(np.clip(img, 0, 1), cv2.COLOR_RGB2HSV)
        if hs:
            hsv[..., 0] = (hsv[..., 0] + hs * 360.0) % 360.0
        if sat is not None:
            hsv[..., 1] = np.clip(hsv[..., 1] * sat, 0, 1)
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        params.update(hue=hs, saturation=sat)
    # screentone
    st = _pick(rng, screentone)
    if st:
        gray = cv2.cvtColor(np.clip(img, 0, 1), cv2.COLOR_RGB2GRAY)
        period = rng.uniform(4, 8) * max(min(H, W) / 512.0, 1.0) ** 0.5
        tone = halftone(gray, period, rng.choice([math.pi / 4, math.pi / 6, 0.0]))
        img = img * (1 - st) + st * tone[..., None]
        params.update(screentone=st, period=period)
    # down/up scale
    sc = _pick(rng, scale)
    if sc and sc < 0.999:
        small = cv2.resize(img, (max(1, int(round(W * sc))), max(1, int(round(H * sc)))), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR if rng.random() < 0.5 else cv2.INTER_CUBIC)
        params["scale"] = sc
    bl = _pick(rng, blur)
    if bl and bl > 0.05:
        img = cv2.GaussianBlur(img, (0, 0), bl)
        params["blur"] = bl
    ns = _pick(rng, noise)
    if ns:
        img = img + rng.normal(0, ns, img.shape).astype(np.float32)
        params["noise"] = ns
    img = np.clip(img, 0, 1)
    q = _pick(rng, jpeg)
    if q:
        q = int(round(np.clip(q, 1, 100)))
        u8 = (img[..., ::-1] * 255.0 + 0.5).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, q])
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0
        params["jpeg"] = q
    img = np.ascontiguousarray(img, dtype=np.float32)
    return (img, params) if return_params else img

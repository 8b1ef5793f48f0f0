"""Colour helpers: HSV sampling and cel-shading palettes (RGB floats in 0..1)."""
from __future__ import annotations

import colorsys

import numpy as np


def hsv(h, s, v):
    """h in degrees, s and v in 0..1 -> RGB float array."""
    return np.array(colorsys.hsv_to_rgb((h % 360.0) / 360.0, float(np.clip(s, 0, 1)),
                                        float(np.clip(v, 0, 1))), dtype=np.float64)


def to_hsv(rgb):
    h, s, v = colorsys.rgb_to_hsv(*[float(c) for c in np.clip(rgb, 0, 1)])
    return h * 360.0, s, v


def sample_family(rng, family):
    """A base fill colour from a named family: skin, hair, cloth, eye, bright, any."""
    if family == "skin":
        return hsv(rng.uniform(15, 35), rng.uniform(0.12, 0.35), rng.uniform(0.88, 1.0))
    if family == "hair":
        return hsv(rng.uniform(0, 360), rng.uniform(0.25, 0.8), rng.uniform(0.3, 0.92))
    if family == "cloth":
        return hsv(rng.uniform(0, 360), rng.uniform(0.3, 0.85), rng.uniform(0.45, 0.95))
    if family == "eye":
        return hsv(rng.uniform(0, 360), rng.uniform(0.5, 0.9), rng.uniform(0.25, 0.6))
    if family == "white":
        return hsv(rng.uniform(180, 260), rng.uniform(0.0, 0.06), rng.uniform(0.94, 1.0))
    if family == "bright":
        return hsv(rng.uniform(0, 360), rng.uniform(0.45, 0.9), rng.uniform(0.75, 1.0))
    return hsv(rng.uniform(0, 360), rng.uniform(0.1, 0.9), rng.uniform(0.3, 1.0))


def shadow_of(rgb, rng):
    """Cel-shadow colour: darker (V x 0.6-0.85), hue pulled toward blue/purple, a bit more saturated."""
    h, s, v = to_hsv(rgb)
    target = 265.0
    dh = ((target - h + 180.0) % 360.0) - 180.0
    h2 = h + dh * rng.uniform(0.08, 0.22)
    return hsv(h2, min(1.0, s * rng.uniform(1.05, 1.3) + 0.05), v * rng.uniform(0.6, 0.85))


def highlight_of(rgb, rng):
    h, s, v = to_hsv(rgb)
    return hsv(h, s * rng.uniform(0.45, 0.8), min(1.0, v * rng.uniform(1.12, 1.3) + 0.08))


def ink_color(rng, fill=None, kind=None):
    """Line colour: mostly black/dark grey, sometimes a colour trace (darkened fill)."""
    if kind is None:
        kind = "trace" if (fill is not None and rng.random() < 0.2) else "dark"
    if kind == "trace" and fill is not None:
        h, s, v = to_hsv(fill)
        return hsv(h, min(1.0, s + 0.25), v * rng.uniform(0.3, 0.5))
    g = rng.uniform(0.02, 0.16)
    tint = rng.uniform(-0.03, 0.03, size=3)
    return np.clip(np.array([g, g, g]) + tint, 0, 1)

"""Line art drawn like a studio's: dense genga-style drawings for gap-closing training and tests.

``make_lineart`` draws a few smooth, thick, sparse outlines. Real production line art (see the
`paintbucket` set the real benchmark uses) is dense thin strokes: hair-strand clusters whose tips
end freely, cloth folds that start on an outline (T junctions) and fade out, overlapping shapes
(X junctions), short hatching, colour-trace lines (red/blue shadow boundaries that close regions
of their own), and sheet notes — frame numbers, circled text — that no gap closer may join.

Three drawing styles, each seeded:

* ``genga`` — 1-px aliased binary strokes (digital genga, as the `paintbucket` drawings);
* ``pen`` — anti-aliased strokes of varying weight (1-3.5 px) that taper where they end freely;
* ``pencil`` — grey strokes with pressure (darkness varying along the stroke), paper grain and
  faint construction lines (coverage below 0.5: not ink by GapFill's threshold).

    d = make_genga(seed, 1024, 1024)           # dict: lines, rgb, style, ink (bool)
    cut = cut_gaps(d["ink"], seed)             # celgraph.synth.gaps: exact gap truth on it

``lines`` is ink coverage 0..1, exactly 1 − the luminance of ``rgb`` (the scan a user would
have), so red and blue trace lines read as lighter ink, as ToLineArt makes of them.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from ._geom import catmull_rom, resample
from .shapes import blob, ellipse

__all__ = ["make_genga", "STYLES"]

STYLES = ("genga", "pen", "pencil")
SS = 4                                    # supersampling of the anti-aliased styles
TRACE_RGB = {"red": (0.85, 0.1, 0.1), "blue": (0.15, 0.3, 0.9)}


class _Stroke:
    """A centreline (N×2, x y), a radius per point, a colour name and whether its ends are free."""

    def __init__(self, pts, radius, colour="ink", free=(False, False), darkness=None):
        self.pts = np.asarray(pts, np.float64)
        self.radius = np.broadcast_to(np.asarray(radius, np.float64), (len(self.pts),)).copy()
        self.colour = colour
        self.free = free
        self.darkness = darkness


def _taper(n: int, r: float, free: tuple[bool, bool], rng) -> np.ndarray:
    """Radius along a stroke: full width, thinning to ≈ 0.25 over the last 15-35 % at free ends."""
    t = np.linspace(0.0, 1.0, n)
    prof = np.ones(n)
    if free[0]:
        k = rng.uniform(0.15, 0.35)
        prof = np.minimum(prof, 0.25 + 0.75 * np.clip(t / k, 0, 1))
    if free[1]:
        k = rng.uniform(0.15, 0.35)
        prof = np.minimum(prof, 0.25 + 0.75 * np.clip((1 - t) / k, 0, 1))
    return r * prof


def _curve(ctrl, spacing=0.5):
    pts = catmull_rom(np.asarray(ctrl, np.float64), closed=False, spacing=spacing)
    return pts if len(pts) >= 2 else np.asarray(ctrl, np.float64)


def _closed(poly):
    p = resample(np.asarray(poly, np.float64), 0.5, closed=True)
    return np.vstack([p, p[:1]])


def _point_on(poly, rng):
    i = int(rng.integers(len(poly)))
    return poly[i], i


def _character(rng, c, R, r):
    """A head/hair mass with strand clusters, a body with folds, overlapping accessories."""
    strokes: list[_Stroke] = []
    head = blob(rng, c, R, irregular=0.2, aspect=rng.uniform(0.8, 1.2))
    strokes.append(_Stroke(_closed(head), r))
    # hair mass overlapping the head (X junctions where the outlines cross)
    hair = blob(rng, c + rng.normal(0, 0.15 * R, 2) - [0, 0.3 * R], R * rng.uniform(1.0, 1.25), irregular=0.35)
    strokes.append(_Stroke(_closed(hair), r))
    # strand clusters: from the hair outline inwards, tips free (tapered), some reaching the other side
    for _ in range(int(rng.integers(2, 5))):
        root, _ = _point_on(hair, rng)
        towards = c + rng.normal(0, 0.4 * R, 2) - root
        towards /= np.linalg.norm(towards) + 1e-9
        side = np.array([-towards[1], towards[0]])
        curl = rng.normal(0, 0.25)
        for k in range(int(rng.integers(3, 8))):
            start = root + side * rng.normal(0, 0.1 * R)
            L = rng.uniform(0.25, 0.7) * R
            bend = side * (curl + rng.normal(0, 0.08)) * L
            ctrl = [start - towards * 0.05 * R, start + towards * L * 0.55 + bend * 0.3,
                    start + towards * L + bend]
            pts = _curve(ctrl)
            strokes.append(_Stroke(pts, _taper(len(pts), r * rng.uniform(0.6, 1.0), (False, True), rng),
                                   free=(False, True)))
    # body with cloth folds: T junctions on the outline, free or forked (Y) ends inside
    body_c = c + [rng.normal(0, 0.2 * R), R * rng.uniform(1.6, 2.0)]
    body = blob(rng, body_c, R * rng.uniform(0.9, 1.4), irregular=0.25, aspect=rng.uniform(0.6, 0.9))
    strokes.append(_Stroke(_closed(body), r))
    for _ in range(int(rng.integers(3, 8))):
        p, _ = _point_on(body, rng)
        d = body_c - p
        d /= np.linalg.norm(d) + 1e-9
        d = d + rng.normal(0, 0.35, 2)
        d /= np.linalg.norm(d) + 1e-9
        L = rng.uniform(0.2, 0.6) * R
        ctrl = [p - d * 2, p + d * L * 0.5 + rng.normal(0, 0.08 * R, 2), p + d * L]
        pts = _curve(ctrl)
        strokes.append(_Stroke(pts, _taper(len(pts), r * rng.uniform(0.6, 1.0), (False, True), rng),
                               free=(False, True)))
        if rng.random() < 0.3:                                  # a fork: Y junction
            q = pts[len(pts) // 2]
            e = d + np.array([-d[1], d[0]]) * rng.choice([-1, 1]) * rng.uniform(0.5, 1.0)
            e /= np.linalg.norm(e)
            pts2 = _curve([q, q + e * L * 0.3, q + e * L * 0.55])
            strokes.append(_Stroke(pts2, _taper(len(pts2), r * 0.7, (False, True), rng), free=(False, True)))
    # eyes and small closed shapes (dense closed regions)
    for s in (-1, 1):
        e = c + [s * R * 0.35, R * 0.1]
        strokes.append(_Stroke(_closed(ellipse(e, R * 0.14, R * 0.09, rng.uniform(-0.3, 0.3))), r))
        strokes.append(_Stroke(_closed(ellipse(e + [0, R * 0.01], R * 0.05, R * 0.05)), r * 0.8))
    # colour-trace lines: shadow boundaries from outline to outline (they close regions)
    for shape in (head, body):
        a, ia = _point_on(shape, rng)
        ib = (ia + len(shape) // int(rng.integers(3, 6))) % len(shape)
        b = shape[ib]
        mid = (a + b) / 2 + (c - (a + b) / 2) * rng.uniform(0.1, 0.4)
        pts = _curve([a, mid, b])
        strokes.append(_Stroke(pts, r * 0.8, colour=str(rng.choice(list(TRACE_RGB)))))
    return strokes


def _hatching(rng, W, H, r):
    out = []
    for _ in range(int(rng.integers(1, 4))):
        c = rng.uniform([0.1 * W, 0.1 * H], [0.9 * W, 0.9 * H])
        a = rng.uniform(0, np.pi)
        d = np.array([math.cos(a), math.sin(a)])
        n = np.array([-d[1], d[0]])
        L = rng.uniform(8, 22) * r * 2
        gap = rng.uniform(4, 8) * r
        for k in range(int(rng.integers(3, 7))):
            p = c + n * k * gap
            pts = _curve([p, p + d * L * 0.5 + n * rng.normal(0, 0.5), p + d * L])
            out.append(_Stroke(pts, _taper(len(pts), r * 0.7, (True, True), rng), free=(True, True)))
    return out


def _construction(rng, W, H):
    out = []
    for _ in range(int(rng.integers(2, 6))):
        p = rng.uniform([0, 0], [W, H], (2, 2))
        out.append(_Stroke(_curve([p[0], (p[0] + p[1]) / 2 + rng.normal(0, 20, 2), p[1]]), 0.6,
                           darkness=rng.uniform(0.15, 0.35)))
    return out


def _notes(rng, shape: tuple[int, int], ss: int, style: str) -> np.ndarray:
    """Frame number, margin notes and circled text in the margins: float32 coverage of ``shape``."""
    H, W = shape
    img = np.zeros((H, W), np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    lt = cv2.LINE_8 if style == "genga" else cv2.LINE_AA
    th = max(1, ss // 2) if style != "genga" else 1
    for _ in range(int(rng.integers(1, 4))):
        text = str(rng.choice(["A-12", "B3", "x2", "FIX", "OL", "24", "C-7", "S"])) + str(int(rng.integers(1, 99)))
        scale = rng.uniform(0.5, 1.1) * ss * (0.5 if style == "genga" else 1.0)
        (tw, tht), _ = cv2.getTextSize(text, font, scale, th)
        corner = int(rng.integers(4))
        x = int(rng.uniform(0.02, 0.15) * W) if corner % 2 == 0 else int(W - tw - rng.uniform(0.02, 0.15) * W)
        y = int(rng.uniform(0.05, 0.12) * H) + tht if corner < 2 else int(H - rng.uniform(0.03, 0.1) * H)
        cv2.putText(img, text, (x, y), font, scale, 255, th, lt)
        if rng.random() < 0.5:
            cv2.circle(img, (x + tw // 2, y - tht // 2), int(max(tw, tht) * 0.75), 255, th, lt)
    return img.astype(np.float32) / 255.0


def _render(strokes, W, H, style, rng):
    """Per colour: coverage (H×W, 0..1) of the strokes."""
    layers = {}
    if style == "genga":
        for s in strokes:
            if s.darkness is not None:
                continue                                     # no construction lines in clean genga
            m = layers.setdefault(s.colour, np.zeros((H, W), np.float32))
            cv2.polylines(m, [np.round(s.pts).astype(np.int32)], False, 1.0, 1, cv2.LINE_8)
        ink = layers.setdefault("ink", np.zeros((H, W), np.float32))
        np.maximum(ink, (_notes(rng, (H, W), 1, style) >= 0.5).astype(np.float32), out=ink)  # aliased
        return layers
    Hs, Ws = H * SS, W * SS
    grain = None
    if style == "pencil":
        g = rng.normal(0, 1, (H // 4 + 1, W // 4 + 1)).astype(np.float32)
        grain = cv2.resize(g, (W, H), interpolation=cv2.INTER_CUBIC)
        grain = np.clip(0.85 + 0.12 * grain + 0.05 * rng.normal(0, 1, (H, W)).astype(np.float32), 0.5, 1.0)
    bigs: dict[str, np.ndarray] = {}
    for s in strokes:                         # one supersampled canvas per colour, downsampled once
        big = bigs.setdefault(s.colour, np.zeros((Hs, Ws), np.float32))
        dark = s.darkness if s.darkness is not None else (rng.uniform(0.75, 0.95) if style == "pencil" else 1.0)
        pts = np.round(s.pts * SS).astype(int)
        for i in range(len(pts) - 1):
            t = max(int(round(2 * s.radius[i] * SS)), 1)
            cv2.line(big, tuple(pts[i]), tuple(pts[i + 1]), float(dark), t, cv2.LINE_AA)
    for name, big in bigs.items():
        layers[name] = cv2.resize(big, (W, H), interpolation=cv2.INTER_AREA)
    big = _notes(rng, (Hs, Ws), SS, style)
    ink = layers.setdefault("ink", np.zeros((H, W), np.float32))
    np.maximum(ink, cv2.resize(big, (W, H), interpolation=cv2.INTER_AREA), out=ink)
    if grain is not None:
        for k in layers:
            layers[k] = layers[k] * grain
    return layers


def make_genga(seed, width: int = 1024, height: int = 1024, style: str | None = None) -> dict:
    """One seeded drawing in a studio style (see the module doc).

    Returns ``lines`` (float32 H×W ink coverage = 1 − luminance of ``rgb``), ``rgb`` (float32
    H×W×3, ink over white paper), ``ink`` (bool, coverage ≥ 0.5) and ``style``."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng([int(seed), 41])
    style = style or str(rng.choice(STYLES, p=[0.4, 0.35, 0.25]))
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, not {style!r}")
    W, H = int(width), int(height)
    r = {"genga": 0.5, "pen": rng.uniform(0.6, 1.6), "pencil": rng.uniform(0.6, 1.2)}[style]
    strokes: list[_Stroke] = []
    n_chars = int(rng.integers(1, 4))
    for _ in range(n_chars):
        R = rng.uniform(0.12, 0.22) * min(W, H)
        c = rng.uniform([0.25 * W, 0.2 * H], [0.75 * W, 0.55 * H])
        strokes += _character(rng, c, R, r)
    strokes += _hatching(rng, W, H, r)
    if style == "pencil":
        strokes += _construction(rng, W, H)
    layers = _render(strokes, W, H, style, rng)
    rgb = np.ones((H, W, 3), np.float32)
    for name in ("red", "blue", "ink"):                    # black ink over the trace lines
        if name in layers:
            col = np.float32(TRACE_RGB.get(name, (0.0, 0.0, 0.0)))
            a = np.clip(layers[name], 0, 1)[..., None]
            rgb = rgb * (1 - a) + col * a
    lum = rgb @ np.float32([0.2126, 0.7152, 0.0722])
    lines = np.clip(1.0 - lum, 0.0, 1.0).astype(np.float32)
    return {"lines": lines, "rgb": rgb.astype(np.float32), "ink": lines >= 0.5, "style": style}

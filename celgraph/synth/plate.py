"""Painted-looking background plates (anime "BG art"): gradients, soft shapes, texture and
painted detail lines.  Detail lines here are plate texture, NOT line art: they never appear in
the ``lines`` ground truth of a clip.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from . import _color as C
from ._geom import catmull_rom
from .raster import cover_polylines_fast, cover_polys, roi_of


def value_noise(rng, w, h, cell):
    """Smooth random field in [0, 1] with features of about ``cell`` pixels."""
    gw = max(2, int(math.ceil(w / cell)) + 2)
    gh = max(2, int(math.ceil(h / cell)) + 2)
    g = rng.random((gh, gw)).astype(np.float32)
    big = cv2.resize(g, (int(gw * cell), int(gh * cell)), interpolation=cv2.INTER_CUBIC)
    ox = int(rng.integers(0, max(1, big.shape[1] - w)))
    oy = int(rng.integers(0, max(1, big.shape[0] - h)))
    return np.clip(big[oy:oy + h, ox:ox + w], 0, 1)


def fbm(rng, w, h, cell, octaves=4):
    acc = np.zeros((h, w), np.float32)
    amp, tot = 1.0, 0.0
    for _ in range(octaves):
        acc += amp * value_noise(rng, w, h, max(cell, 2.0))
        tot += amp
        amp *= 0.5
        cell /= 2.0
    return acc / tot


class Painter:
    """Paints into a float32 RGB image with AA masks restricted to ROIs."""

    def __init__(self, img, ss=2):
        self.img = img
        self.h, self.w = img.shape[:2]
        self.ss = ss

    def poly(self, pts, color, alpha=1.0, blur=0.0, grad=None):
        pad = 3 + 3 * blur
        roi = roi_of(pts, pad, self.w, self.h)
        if roi is None:
            return
        m = cover_polys([pts], roi, self.ss) * alpha
        if blur > 0:
            m = cv2.GaussianBlur(m, (0, 0), blur)
        self._blend(roi, m, color, grad)

    def polys(self, polys, color, alpha=1.0):
        roi = roi_of(np.concatenate(polys), 3, self.w, self.h)
        if roi is None:
            return
        self._blend(roi, cover_polys(polys, roi, self.ss) * alpha, color)

    def strokes(self, strokes, color, alpha=1.0, blur=0.0):
        allp = np.concatenate([s[0] for s in strokes])
        rmax = max(float(np.max(s[1])) for s in strokes)
        roi = roi_of(allp, rmax + 3 + 3 * blur, self.w, self.h)
        if roi is None:
            return
        m = cover_polylines_fast(strokes, roi, self.ss) * alpha
        if blur > 0:
            m = cv2.GaussianBlur(m, (0, 0), blur)
        self._blend(roi, m, color)

    def _blend(self, roi, m, color, grad=None):
        x0, y0, w, h = roi
        sub = self.img[y0:y0 + h, x0:x0 + w]
        if grad is not None:
            # vertical gradient of the colour: grad = (top_rgb, bottom_rgb, ytop, ybot)
            top, bot, ya, yb = grad
            t = np.clip((np.arange(y0, y0 + h, dtype=np.float32) - ya) / max(yb - ya, 1e-3), 0, 1)
            col = (np.asarray(top, np.float32)[None, :] * (1 - t[:, None])
                   + np.asarray(bot, np.float32)[None, :] * t[:, None])[:, None, :]
        else:
            col = np.asarray(color, np.float32)
        sub += (col - sub) * m[..., None]


def _mix(a, b, t):
    return np.asarray(a) * (1 - t) + np.asarray(b) * t


def _sky(rng, img, horizon):
    h, w = img.shape[:2]
    mood = rng.choice(["day", "day", "day", "dusk", "night"])
    if mood == "day":
        top = C.hsv(rng.uniform(200, 225), rng.uniform(0.45, 0.75), rng.uniform(0.75, 0.95))
        bot = C.hsv(rng.uniform(190, 210), rng.uniform(0.08, 0.25), rng.uniform(0.92, 1.0))
    elif mood == "dusk":
        top = C.hsv(rng.uniform(230, 275), rng.uniform(0.35, 0.6), rng.uniform(0.45, 0.7))
        bot = C.hsv(rng.uniform(15, 40), rng.uniform(0.35, 0.65), rng.uniform(0.9, 1.0))
    else:
        top = C.hsv(rng.uniform(220, 245), rng.uniform(0.5, 0.8), rng.uniform(0.12, 0.25))
        bot = C.hsv(rng.uniform(210, 240), rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.5))
    t = np.clip(np.arange(h, dtype=np.float32) / max(horizon, 1), 0, 1) ** rng.uniform(0.7, 1.4)
    img[:] = (top[None, :] * (1 - t[:, None]) + bot[None, :] * t[:, None])[:, None, :].astype(np.float32)
    return mood, top, bot


def _clouds(rng, P, horizon, unit, mood):
    w = P.w
    n = int(rng.integers(2, 7))
    base = C.hsv(rng.uniform(200, 240), 0.03, 1.0) if mood == "day" else C.hsv(rng.uniform(10, 40), 0.25, 0.95)
    shade = C.shadow_of(base, rng) * 0.95
    for _ in range(n):
        cx, cy = rng.uniform(0, w), rng.uniform(0.05, 0.8) * horizon
        sx = rng.uniform(40, 140) * unit
        k = int(rng.integers(4, 10))
        for j in range(k):
            ex = cx + rng.normal(0, sx * 0.5)
            ey = cy + rng.normal(0, sx * 0.12)
            rx, ry = rng.uniform(0.25, 0.6) * sx, rng.uniform(0.12, 0.3) * sx
            t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
            pts = np.stack([ex + rx * np.cos(t), ey + ry * np.sin(t)], 1)
            P.poly(pts, shade, alpha=0.85, blur=2.0 * unit)
            P.poly(pts - (0, ry * 0.35), base, alpha=0.9, blur=1.5 * unit)


def _hills(rng, P, horizon, unit, sky_bot, ground):
    h, w = P.h, P.w
    layers = int(rng.integers(1, 4))
    for i in range(layers):
        far = (layers - i) / (layers + 1.0)
        y = horizon - rng.uniform(0.05, 0.35) * h * far
        xs = np.linspace(-40 * unit, w + 40 * unit, int(rng.integers(5, 10)))
        ys = y + rng.normal(0, 0.08 * h * far + 3 * unit, len(xs))
        ridge = catmull_rom(np.stack([xs, ys], 1), closed=False, spacing=4.0)
        pts = np.concatenate([ridge, [[w + 50 * unit, h + 10], [-50 * unit, h + 10]]])
        col = _mix(ground * rng.uniform(0.7, 1.0), sky_bot, 0.35 + 0.5 * far)
        P.poly(pts, col, blur=0.6 * unit, grad=(col * 1.05, col * 0.8, y, horizon + 0.2 * h))


def _ground(rng, P, horizon, unit):
    h, w = P.h, P.w
    gcol = C.hsv(rng.uniform(70, 140), rng.uniform(0.3, 0.65), rng.uniform(0.45, 0.8)) \
        if rng.random() < 0.7 else C.hsv(rng.uniform(25, 45), rng.uniform(0.25, 0.55), rng.uniform(0.55, 0.85))
    xs = np.linspace(-20, w + 20, 6)
    ys = horizon + rng.normal(0, 4 * unit, 6)
    edge = catmull_rom(np.stack([xs, ys], 1), closed=False, spacing=4.0)
    pts = np.concatenate([edge, [[w + 20, h + 10], [-20, h + 10]]])
    P.poly(pts, gcol, blur=0.5 * unit, grad=(gcol * 1.08, gcol * 0.75, horizon, h))
    # brush dabs
    n = int(40 * (w * h) / (456 * 256 * 1.0) / max(unit, 1) ** 2) + 30
    for _ in range(min(n, 400)):
        x, y = rng.uniform(0, w), rng.uniform(horizon, h)
        r = rng.uniform(3, 14) * unit * (0.5 + (y - horizon) / max(h - horizon, 1))
        t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        ang = rng.uniform(-0.3, 0.3)
        pts = np.stack([x + r * np.cos(t + ang) * 1.8, y + r * 0.5 * np.sin(t + ang)], 1)
        P.poly(pts, gcol * rng.uniform(0.75, 1.15), alpha=rng.uniform(0.15, 0.4), blur=1.0 * unit)
    # grass / pebble detail lines (painted, dark-ish local colour)
    strokes = []
    for _ in range(int(rng.integers(15, 50))):
        x, y = rng.uniform(0, w), rng.uniform(horizon + 5 * unit, h)
        L = rng.uniform(3, 10) * unit
        a = -np.pi / 2 + rng.uniform(-0.5, 0.5)
        p = np.array([[x, y], [x + L * 0.5 * np.cos(a) + rng.normal(0, 1), y + L * 0.5 * np.sin(a)],
                      [x + L * np.cos(a) + rng.normal(0, 2), y + L * np.sin(a)]])
        pts = catmull_rom(p, closed=False, spacing=1.0)
        rr = np.linspace(0.55, 0.1, len(pts)) * unit
        strokes.append((pts, rr))
    P.strokes(strokes, gcol * 0.55, alpha=0.8)
    return gcol


def _trees(rng, P, horizon, unit, gcol):
    h, w = P.h, P.w
    for _ in range(int(rng.integers(1, 6))):
        x = rng.uniform(0, w)
        base = horizon + rng.uniform(0.0, 0.25) * (h - horizon)
        s = rng.uniform(30, 80) * unit * (0.7 + (base - horizon) / max(h - horizon, 1))
        trunk = np.array([[x - 0.06 * s, base], [x + 0.06 * s, base], [x + 0.04 * s, base - 0.9 * s],
                          [x - 0.04 * s, base - 0.9 * s]])
        bark = C.hsv(rng.uniform(15, 35), rng.uniform(0.3, 0.6), rng.uniform(0.25, 0.45))
        P.poly(trunk, bark, blur=0.4 * unit)
        leaf = C.hsv(rng.uniform(80, 150), rng.uniform(0.35, 0.7), rng.uniform(0.3, 0.65))
        cy = base - 1.0 * s
        blobs = [(x + rng.normal(0, 0.35 * s), cy + rng.normal(0, 0.25 * s), rng.uniform(0.25, 0.45) * s)
                 for _ in range(int(rng.integers(4, 9)))]
        t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        for bx, by, r in blobs:
            P.poly(np.stack([bx + r * np.cos(t), by + r * np.sin(t)], 1), leaf * 0.75, blur=0.6 * unit)
        for bx, by, r in blobs:
            r2 = r * 0.75
            P.poly(np.stack([bx - 0.2 * r + r2 * np.cos(t), by - 0.25 * r + r2 * np.sin(t)], 1),
                   leaf * 1.1, alpha=0.8, blur=1.2 * unit)
        # branches: thin painted lines
        strokes = []
        for _ in range(int(rng.integers(2, 5))):
            a = -np.pi / 2 + rng.uniform(-1.0, 1.0)
            y0 = base - rng.uniform(0.4, 0.9) * s
            L = rng.uniform(0.2, 0.45) * s
            p = np.array([[x, y0], [x + L * 0.5 * np.cos(a), y0 + L * 0.5 * np.sin(a) - 0.05 * s],
                          [x + L * np.cos(a), y0 + L * np.sin(a)]])
            pts = catmull_rom(p, closed=False, spacing=1.0)
            strokes.append((pts, np.linspace(0.9, 0.2, len(pts)) * unit))
        P.strokes(strokes, bark * 0.7, alpha=0.9)


def _buildings(rng, P, horizon, unit, sky_bot):
    h, w = P.h, P.w
    x = rng.uniform(-60, 0) * unit
    lines = []
    while x < w:
        bw = rng.uniform(40, 130) * unit
        bh = rng.uniform(0.12, 0.45) * h
        top = horizon - bh
        wall = C.hsv(rng.uniform(0, 360), rng.uniform(0.05, 0.35), rng.uniform(0.55, 0.95))
        wall = _mix(wall, sky_bot, rng.uniform(0.0, 0.3))
        rect = np.array([[x, top], [x + bw, top], [x + bw, h + 5], [x, h + 5]])
        P.poly(rect, wall, grad=(wall * 1.05, wall * 0.78, top, horizon + 0.3 * h))
        # shaded side
        side = np.array([[x + bw * 0.82, top], [x + bw, top], [x + bw, h + 5], [x + bw * 0.82, h + 5]])
        P.poly(side, C.shadow_of(wall, rng), alpha=0.7)
        if rng.random() < 0.5:
            roof = np.array([[x - 4 * unit, top], [x + bw * 0.5, top - rng.uniform(10, 35) * unit],
                             [x + bw + 4 * unit, top]])
            P.poly(roof, C.hsv(rng.uniform(0, 40), rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.6)))
        win = C.hsv(rng.uniform(190, 220), rng.uniform(0.15, 0.4), rng.uniform(0.6, 0.9))
        ww, wh = rng.uniform(6, 12) * unit, rng.uniform(8, 14) * unit
        gx, gy = ww * rng.uniform(1.6, 2.4), wh * rng.uniform(1.5, 2.2)
        yy = top + gy * 0.6
        wins = []
        while yy + wh < min(h, horizon + 0.3 * h):
            xx = x + gx * 0.5
            while xx + ww < x + bw * 0.8:
                wins.append(np.array([[xx, yy], [xx + ww, yy], [xx + ww, yy + wh], [xx, yy + wh]]))
                rr = 0.35 * unit
                lines.append((np.array([[xx, yy + wh], [xx + ww, yy + wh]]), np.array([rr, rr])))
                lines.append((np.array([[xx + ww * 0.5, yy], [xx + ww * 0.5, yy + wh]]),
                              np.array([rr * 0.8, rr * 0.8])))
                xx += gx
            yy += gy
        if wins:
            P.polys(wins, win)
        lines.append((np.array([[x, top], [x, h]]), np.array([0.5, 0.5]) * unit))
        x += bw + rng.uniform(0, 20) * unit
    if lines:
        P.strokes(lines, np.array([0.25, 0.25, 0.3]), alpha=0.55)
    # power lines across the sky: a classic anime background detail
    if rng.random() < 0.6:
        strokes = []
        y0 = rng.uniform(0.05, 0.4) * horizon
        for i in range(int(rng.integers(2, 5))):
            ya, yb = y0 + i * 4 * unit, y0 + i * 4 * unit + rng.uniform(-30, 30) * unit
            sag = rng.uniform(5, 25) * unit
            p = np.array([[-10, ya], [w * 0.5, (ya + yb) / 2 + sag], [w + 10, yb]])
            pts = catmull_rom(p, closed=False, spacing=2.0)
            strokes.append((pts, np.full(len(pts), 0.45 * unit)))
        P.strokes(strokes, np.array([0.15, 0.15, 0.2]), alpha=0.85)


def _room(rng, P, unit):
    h, w = P.h, P.w
    wall = C.hsv(rng.uniform(20, 60), rng.uniform(0.1, 0.35), rng.uniform(0.7, 0.95))
    floor_y = rng.uniform(0.6, 0.8) * h
    P.img[:] = np.asarray(wall, np.float32)
    P.poly(np.array([[-5, -5], [w + 5, -5], [w + 5, floor_y], [-5, floor_y]]), wall,
           grad=(wall * 0.85, wall * 1.05, 0, floor_y))
    floor = C.hsv(rng.uniform(20, 40), rng.uniform(0.3, 0.6), rng.uniform(0.4, 0.7))
    P.poly(np.array([[-5, floor_y], [w + 5, floor_y], [w + 5, h + 5], [-5, h + 5]]), floor,
           grad=(floor * 0.8, floor * 1.1, floor_y, h))
    lines = []
    vx = rng.uniform(0.3, 0.7) * w
    for i in range(-12, 13):
        xb = vx + i * rng.uniform(50, 70) * unit
        lines.append((np.array([[vx + (xb - vx) * 0.25, floor_y], [xb, h + 5]]), np.array([0.4, 0.7]) * unit))
    P.strokes(lines, floor * 0.6, alpha=0.7)
    # windows
    for _ in range(int(rng.integers(1, 3))):
        wx, wy = rng.uniform(0, w), rng.uniform(0.1, 0.35) * h
        ww, wh = rng.uniform(60, 140) * unit, rng.uniform(50, 100) * unit
        frame = np.array([[wx, wy], [wx + ww, wy], [wx + ww, wy + wh], [wx, wy + wh]])
        P.poly(frame + (3 * unit, 3 * unit), wall * 0.7, alpha=0.6, blur=2 * unit)
        sky = C.hsv(rng.uniform(195, 215), rng.uniform(0.3, 0.6), rng.uniform(0.85, 1.0))
        P.poly(frame, sky, grad=(sky * 0.85, sky * 1.1, wy, wy + wh))
        fw = 0.8 * unit
        lines = [(np.array([[wx, wy], [wx + ww, wy], [wx + ww, wy + wh], [wx, wy + wh], [wx, wy]]),
                  np.full(5, fw * 1.5)),
                 (np.array([[wx + ww / 2, wy], [wx + ww / 2, wy + wh]]), np.array([fw, fw])),
                 (np.array([[wx, wy + wh / 2], [wx + ww, wy + wh / 2]]), np.array([fw, fw]))]
        P.strokes(lines, wall * 0.5, alpha=0.9)
    # furniture blocks
    for _ in range(int(rng.integers(1, 4))):
        bx, bw = rng.uniform(0, w), rng.uniform(40, 120) * unit
        bh = rng.uniform(30, 90) * unit
        col = C.sample_family(rng, "cloth") * 0.8
        r = np.array([[bx, floor_y - bh], [bx + bw, floor_y - bh], [bx + bw, floor_y + 4 * unit],
                      [bx, floor_y + 4 * unit]])
        P.poly(r, col, grad=(col * 1.1, col * 0.75, floor_y - bh, floor_y))
        P.strokes([(np.array([[bx, floor_y - bh * 0.5], [bx + bw, floor_y - bh * 0.5]]),
                    np.array([0.5, 0.5]) * unit)], col * 0.55, alpha=0.8)


def paint_plate(rng, width, height, unit=1.0):
    """Paint a background plate of ``width`` x ``height`` pixels. ``unit`` scales feature sizes
    (1.0 for a 256-pixel-high frame).  Returns (float32 H x W x 3 in 0..1, info dict)."""
    img = np.zeros((height, width, 3), np.float32)
    P = Painter(img, ss=2)
    scene = str(rng.choice(["field", "field", "town", "room"]))
    if scene == "room":
        _room(rng, P, unit)
    else:
        horizon = rng.uniform(0.45, 0.75) * height
        mood, top, bot = _sky(rng, img, horizon)
        _clouds(rng, P, horizon, unit, mood)
        if scene == "field":
            gc = C.hsv(rng.uniform(70, 140), rng.uniform(0.3, 0.6), rng.uniform(0.45, 0.8))
            _hills(rng, P, horizon, unit, bot, gc)
            gcol = _ground(rng, P, horizon, unit)
            _trees(rng, P, horizon, unit, gcol)
        else:
            _ground(rng, P, horizon, unit)
            _buildings(rng, P, horizon, unit, bot)
    # painterly texture: low-frequency tint, brush grain
    tex = fbm(rng, width, height, cell=60.0 * unit, octaves=4) - 0.5
    img *= (1.0 + 0.08 * tex)[..., None]
    grain = fbm(rng, width, height, cell=6.0 * unit, octaves=2) - 0.5
    img += 0.025 * grain[..., None]
    img = cv2.GaussianBlur(img, (0, 0), 0.45 * max(unit, 1.0) ** 0.5)
    np.clip(img, 0.0, 1.0, out=img)
    return img, {"scene": scene}


def paint_detailed_plate(rng, width, height, unit=1.0):
    """A busy painted street plate, as detailed anime backgrounds are: a strip of sky, then dense
    façades with outlined window frames and sills, shop signs with lettering, foliage made of many
    small outlined leaf clusters, and cobbles with dark joints. Drawn with anti-aliased OpenCV
    primitives at 2× and area-downsampled. Returns (float32 H×W×3 in 0..1, info dict)."""
    ss = 2
    W, H = width * ss, height * ss
    u = unit * ss
    img = np.zeros((H, W, 3), np.uint8)                 # OpenCV draws text on 8-bit images only
    horizon = int(rng.uniform(0.18, 0.3) * H)
    aa = cv2.LINE_AA

    def col(c):
        return tuple(int(round(255 * v)) for v in np.clip(c, 0, 1))

    img[:] = col(C.hsv(rng.uniform(195, 225), rng.uniform(0.35, 0.6), rng.uniform(0.8, 0.95)))
    ink = col((0.12, 0.1, 0.12))

    def outlined_rect(x0, y0, x1, y1, fill, width=1):
        p0, p1 = (int(x0), int(y0)), (int(x1), int(y1))
        cv2.rectangle(img, p0, p1, col(fill), -1, aa)
        cv2.rectangle(img, p0, p1, ink, max(1, int(round(width * u))), aa)

    # façades, edge to edge
    x = -rng.uniform(0, 40) * u
    while x < W:
        bw = rng.uniform(50, 120) * u
        btop = horizon - rng.uniform(0.0, 0.15) * H
        wall = C.hsv(rng.uniform(0, 360), rng.uniform(0.15, 0.5), rng.uniform(0.5, 0.95))
        outlined_rect(x, btop, x + bw, H, wall)
        for bx in np.arange(x + 4 * u, x + bw - 4 * u, 9 * u):            # brick courses
            cv2.line(img, (int(bx), int(btop)), (int(bx), int(btop + 6 * u)), col(wall * 0.8), 1, aa)
        ww, wh = rng.uniform(7, 13) * u, rng.uniform(9, 16) * u
        gx, gy = ww + rng.uniform(4, 9) * u, wh + rng.uniform(5, 10) * u
        glass = C.hsv(rng.uniform(180, 230), rng.uniform(0.2, 0.5), rng.uniform(0.35, 0.85))
        yy = btop + 8 * u
        while yy + wh < H * 0.72:
            xx = x + 5 * u
            while xx + ww < x + bw - 4 * u:
                shade = glass * rng.uniform(0.7, 1.15)
                outlined_rect(xx, yy, xx + ww, yy + wh, shade)
                cv2.line(img, (int(xx + ww / 2), int(yy)), (int(xx + ww / 2), int(yy + wh)), ink, 1, aa)
                cv2.line(img, (int(xx - u), int(yy + wh + u)), (int(xx + ww + u), int(yy + wh + u)),
                         col(wall * 1.15), max(1, int(u)), aa)                                   # sill
                xx += gx
            yy += gy
        # a shop sign with lettering
        sy = int(H * rng.uniform(0.72, 0.78))
        sign = C.hsv(rng.uniform(0, 360), rng.uniform(0.5, 0.9), rng.uniform(0.4, 0.9))
        outlined_rect(x + 3 * u, sy, x + bw - 3 * u, sy + 14 * u, sign)
        text = "".join(rng.choice(list("ABCDEFGHKMNPRSTUVWXYZ0123456789"), int(rng.integers(4, 9))))
        light = col((1.0, 1.0, 0.95)) if sign.mean() < 0.6 else ink
        cv2.putText(img, text, (int(x + 6 * u), int(sy + 11 * u)), cv2.FONT_HERSHEY_SIMPLEX, 0.32 * u, light,
                    max(1, int(round(0.6 * u))), aa)
        x += bw
    # cobbles below the signs
    ground = C.hsv(rng.uniform(20, 50), rng.uniform(0.1, 0.3), rng.uniform(0.45, 0.7))
    gy0 = int(H * 0.8)
    img[gy0:] = col(ground)
    for cy in np.arange(gy0, H, 7 * u):
        off = rng.uniform(0, 10 * u)
        for cx in np.arange(-off, W, 11 * u):
            c = ground * rng.uniform(0.85, 1.15)
            cv2.ellipse(img, (int(cx), int(cy)), (int(5 * u), int(3 * u)), 0, 0, 360, col(c), -1, aa)
            cv2.ellipse(img, (int(cx), int(cy)), (int(5 * u), int(3 * u)), 0, 0, 360, col(ground * 0.55), 1, aa)
    # foliage: clusters of small outlined leaves (trees in tubs, hanging plants)
    for _ in range(int(rng.integers(6, 12)) * max(1, W // (400 * ss))):
        fx, fy = rng.uniform(0, W), rng.uniform(0.3, 0.85) * H
        leaf = C.hsv(rng.uniform(80, 150), rng.uniform(0.4, 0.8), rng.uniform(0.3, 0.7))
        r = rng.uniform(14, 30) * u
        for _ in range(int(rng.integers(25, 60))):
            lx, ly = fx + rng.normal(0, r * 0.6), fy + rng.normal(0, r * 0.4)
            a, lr = rng.uniform(0, 180), rng.uniform(2.5, 5) * u
            c = leaf * rng.uniform(0.75, 1.3)
            cv2.ellipse(img, (int(lx), int(ly)), (int(lr), int(lr * 0.55)), a, 0, 360, col(c), -1, aa)
            cv2.ellipse(img, (int(lx), int(ly)), (int(lr), int(lr * 0.55)), a, 0, 360, col(leaf * 0.4), 1, aa)
    img = cv2.resize(img.astype(np.float32) / 255.0, (width, height), interpolation=cv2.INTER_AREA)
    return np.clip(img, 0.0, 1.0), {"scene": "detailed street"}

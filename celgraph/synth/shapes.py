"""Vector designs of cartoon sprites: closed spline parts with flat fills, cel-shadow and
highlight regions (colour boundaries without ink), outlines with pressure and open detail strokes.

A design is a list of ``Part`` objects drawn back to front.  Coordinates are in pixels of the
space the design lives in (sprite-local, canvas or page); ``transform_design`` moves a design
between spaces.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from . import _color as C
from ._geom import apply, catmull_rom, inward_normals, resample

SPACING = 0.5  # arc-length spacing of stroke samples (px)
MIN_OUTLINE_R = 0.75  # outlines stay >= 1.5 px wide: binarised at 0.5 they remain closed (8-connected)


@dataclass
class Stroke:
    pts: np.ndarray            # (N, 2) dense samples, SPACING apart
    radii: np.ndarray          # (N,) half-width in px (pressure / taper)
    closed: bool = False
    ends: tuple = ()           # open strokes: ('free'|'junction', 'free'|'junction'); closed: ()
    kind: str = "detail"       # 'outline' | 'detail' | 'free'


@dataclass
class Shade:
    poly: np.ndarray           # closed polygon
    mode: str                  # 'inside': part AND poly; 'outside': part minus poly
    color: np.ndarray
    kind: str                  # 'shadow' | 'highlight' | 'pattern'


@dataclass
class Part:
    name: str
    poly: np.ndarray | None    # closed dense polygon, None for ink-only parts
    color: np.ndarray
    ink: np.ndarray
    shades: list = field(default_factory=list)
    strokes: list = field(default_factory=list)


@dataclass
class Design:
    kind: str
    parts: list
    radius: float

    def bounds(self):
        pts = [p.poly for p in self.parts if p.poly is not None]
        pts += [s.pts for p in self.parts for s in p.strokes]
        pts += [s.poly for p in self.parts for s in p.shades]
        allp = np.concatenate(pts)
        rmax = max([float(s.radii.max()) for p in self.parts for s in p.strokes] + [0.0])
        return allp.min(0) - rmax, allp.max(0) + rmax


# ---------------------------------------------------------------- primitive shapes

def blob(rng, c, R, n=None, irregular=0.25, aspect=1.0, rot=0.0):
    n = int(rng.integers(5, 10)) if n is None else n
    ang = np.sort((np.arange(n) + rng.uniform(-0.3, 0.3, n)) / n * 2 * np.pi)
    rad = R * (1.0 + rng.uniform(-irregular, irregular, n))
    pts = np.stack([rad * np.cos(ang) * aspect, rad * np.sin(ang)], 1)
    c_, s_ = math.cos(rot), math.sin(rot)
    pts = pts @ np.array([[c_, s_], [-s_, c_]])
    return catmull_rom(pts + c, closed=True, spacing=SPACING)


def ellipse(c, rx, ry, rot=0.0):
    n = max(24, int(2 * np.pi * max(rx, ry) / 2.0))
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    pts = np.stack([rx * np.cos(t), ry * np.sin(t)], 1)
    c_, s_ = math.cos(rot), math.sin(rot)
    pts = pts @ np.array([[c_, s_], [-s_, c_]])
    return resample(pts + c, SPACING, closed=True)


def star(rng, c, R, n=5, inner=0.5, rot=0.0):
    ang = rot + np.arange(2 * n) * np.pi / n
    rad = np.where(np.arange(2 * n) % 2 == 0, R, R * inner) * (1 + rng.uniform(-0.08, 0.08, 2 * n))
    pts = np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1) + c
    return catmull_rom(pts, closed=True, spacing=SPACING, alpha=0.5)


def rounded_poly(rng, c, R, n=4, rot=0.0, round_=0.25):
    """Rounded convex polygon (n corners) via a Catmull-Rom through corner-adjacent points."""
    ang = rot + np.arange(n) * 2 * np.pi / n + rng.uniform(-0.15, 0.15, n)
    corners = np.stack([R * np.cos(ang), R * np.sin(ang)], 1)
    pts = []
    for i in range(n):
        a, b = corners[i - 1], corners[i]
        pts += [a + (b - a) * round_, a + (b - a) * (1 - round_)]
    return catmull_rom(np.array(pts) + c, closed=True, spacing=SPACING)


def leaf(rng, c, R, rot=0.0):
    w = R * rng.uniform(0.35, 0.55)
    pts = np.array([[-R, 0], [-R * 0.4, -w], [R * 0.3, -w * 0.8], [R, 0], [R * 0.3, w * 0.8], [-R * 0.4, w]])
    c_, s_ = math.cos(rot), math.sin(rot)
    pts = pts @ np.array([[c_, s_], [-s_, c_]])
    return catmull_rom(pts + c, closed=True, spacing=SPACING)


# ---------------------------------------------------------------- strokes

def _periodic_noise(rng, n, k=3):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    out = np.zeros(n)
    for f in range(1, k + 1):
        out += rng.normal(0, 1.0 / f) * np.sin(f * t + rng.uniform(0, 2 * np.pi))
    return out / max(np.abs(out).max(), 1e-6)


def outline_stroke(rng, poly, r0):
    """Closed outline with pressure variation (radius r0 * 0.75..1.2)."""
    n = len(poly)
    rad = r0 * (0.98 + 0.22 * _periodic_noise(rng, n))
    return Stroke(pts=poly.copy(), radii=np.maximum(rad, MIN_OUTLINE_R), closed=True, ends=(), kind="outline")


def taper_profile(n, r0, taper_in, taper_out, rng=None, start_full=False):
    """Pressure profile: 入り/抜き tapers at the ends (lengths in px)."""
    s = np.arange(n) * SPACING
    L = s[-1] if n > 1 else 0.0
    a = np.ones(n) if start_full else np.clip(s / max(taper_in, 1e-3), 0, 1) ** 0.7
    b = np.clip((L - s) / max(taper_out, 1e-3), 0, 1) ** 0.7
    wob = 1.0
    if rng is not None and n > 4:
        wob = 1.0 + 0.12 * np.sin(np.linspace(0, rng.uniform(2, 6), n) + rng.uniform(0, 6))
    return np.maximum(r0 * np.minimum(a, b) * wob, 0.06 * r0)


class Inside:
    """Fast point-in-part test with clearance: rasterised signed distance (sprite-local)."""

    def __init__(self, poly):
        self.o = np.floor(poly.min(0)) - 4
        sz = np.ceil(poly.max(0) - self.o).astype(int) + 5
        m = np.zeros((sz[1], sz[0]), np.uint8)
        cv2.fillPoly(m, [np.round((poly - self.o) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
        self.dist = cv2.distanceTransform(m, cv2.DIST_L2, 5)

    def depth(self, pts):
        q = np.round(np.asarray(pts) - self.o).astype(int)
        h, w = self.dist.shape
        ok = (q[:, 0] >= 0) & (q[:, 0] < w) & (q[:, 1] >= 0) & (q[:, 1] < h)
        d = np.zeros(len(q))
        d[ok] = self.dist[q[ok, 1], q[ok, 0]]
        return d


def detail_stroke(rng, part_poly, inside, r, length, from_outline=True, direction=None,
                  bend=0.3, start=None):
    """Open detail stroke inside a part.  Starts on the outline ('junction' end) or inside
    ('free' end), ends free, and is truncated where it would leave the part (clearance r+1.5)."""
    if from_outline:
        i = int(rng.integers(len(part_poly))) if start is None else start
        p0 = part_poly[i]
        nrm = inward_normals(part_poly)[i]
        base = math.atan2(nrm[1], nrm[0]) if direction is None else direction
        ang = base + rng.uniform(-0.6, 0.6)
    else:
        # random interior point with clearance
        for _ in range(40):
            lo, hi = part_poly.min(0), part_poly.max(0)
            p0 = rng.uniform(lo, hi)
            if inside.depth(p0[None])[0] > r + 3:
                break
        else:
            return None
        ang = rng.uniform(0, 2 * np.pi) if direction is None else direction + rng.uniform(-0.4, 0.4)
    d = np.array([math.cos(ang), math.sin(ang)])
    nrm2 = np.array([-d[1], d[0]])
    k = rng.uniform(-bend, bend) * length
    ctrl = np.array([p0, p0 + d * length * 0.5 + nrm2 * k, p0 + d * length + nrm2 * k * 0.3])
    pts = catmull_rom(ctrl, closed=False, spacing=SPACING)
    dep = inside.depth(pts)
    s = np.arange(len(pts)) * SPACING
    need = r + 1.5
    ok = dep >= need
    if from_outline:
        ok |= s < need + r + 3.0  # the start sits on the outline
    bad = np.nonzero(~ok)[0]
    if len(bad):
        pts = pts[:bad[0]]
    if len(pts) * SPACING < max(4.0, 0.3 * length):
        return None
    n = len(pts)
    L = n * SPACING
    radii = taper_profile(n, r, taper_in=L * rng.uniform(0.15, 0.35), taper_out=L * rng.uniform(0.3, 0.6),
                          rng=rng, start_full=from_outline)
    return Stroke(pts=pts, radii=radii, closed=False,
                  ends=("junction" if from_outline else "free", "free"), kind="detail")


def crescent_shadow(part_poly, light, dist, color):
    """Shadow on the side away from the light: part minus part shifted toward the light."""
    return Shade(poly=part_poly + light * dist, mode="outside", color=color, kind="shadow")


# ---------------------------------------------------------------- designs

def _finish_part(rng, name, poly, color, ink, r_out):
    part = Part(name=name, poly=poly, color=np.asarray(color, np.float64), ink=ink)
    part.strokes.append(outline_stroke(rng, poly, r_out))
    return part


def design_character(rng, R, r0, light, ink):
    parts = []
    skin = C.sample_family(rng, "skin")
    hair = C.sample_family(rng, "hair")
    cloth = C.sample_family(rng, "cloth")
    Rh = R * rng.uniform(0.42, 0.5)
    hc = np.array([rng.uniform(-0.05, 0.05) * R, -R + Rh * 1.25])
    ink_of = (lambda col: C.ink_color(rng, col, "trace")) if rng.random() < 0.25 else (lambda col: ink)
    # back hair
    if rng.random() < 0.6:
        bh = blob(rng, hc + (0, Rh * 0.35), Rh * rng.uniform(1.1, 1.3), n=7, irregular=0.12,
                  aspect=rng.uniform(0.95, 1.15))
        p = _finish_part(rng, "back_hair", bh, C.shadow_of(hair, rng), ink_of(hair), r0)
        parts.append(p)
    # torso
    tw, th = R * rng.uniform(0.55, 0.8), R * rng.uniform(0.45, 0.6)
    ty = hc[1] + Rh * 0.85 + th * 0.8
    tpts = np.array([[-tw * 0.45, ty - th], [tw * 0.45, ty - th], [tw, ty - th * 0.35], [tw * 1.05, ty + th * 0.9],
                     [0, ty + th * 1.05], [-tw * 1.05, ty + th * 0.9], [-tw, ty - th * 0.35]])
    tpts[:, 0] += hc[0]
    torso = catmull_rom(tpts + rng.normal(0, 0.03 * R, tpts.shape), closed=True, spacing=SPACING)
    tp = _finish_part(rng, "torso", torso, cloth, ink_of(cloth), r0)
    tp.shades.append(crescent_shadow(torso, light, R * rng.uniform(0.1, 0.2), C.shadow_of(cloth, rng)))
    ins = Inside(torso)
    for _ in range(int(rng.integers(1, 4))):
        st = detail_stroke(rng, torso, ins, r0 * rng.uniform(0.5, 0.8), R * rng.uniform(0.15, 0.35),
                           from_outline=rng.random() < 0.5, bend=0.4)
        if st is not None:
            tp.strokes.append(st)
    parts.append(tp)
    # neck + head
    hpts = []
    for i, a in enumerate(np.linspace(0, 2 * np.pi, 8, endpoint=False)):
        rr = Rh * (1.0 + rng.uniform(-0.05, 0.05))
        if abs(a - np.pi / 2) < 0.1:
            rr *= rng.uniform(1.1, 1.25)  # chin
        hpts.append(hc + rr * np.array([math.cos(a) * rng.uniform(0.88, 0.98), math.sin(a)]))
    head = catmull_rom(np.array(hpts), closed=True, spacing=SPACING)
    hp = _finish_part(rng, "head", head, skin, ink_of(skin), r0)
    # bangs polygon (needed for the cast shadow on the face)
    top = [hc + Rh * 1.12 * np.array([math.cos(a), math.sin(a)]) * (1 + rng.uniform(-0.04, 0.04))
           for a in np.linspace(np.pi * 1.05, np.pi * 1.95, 6)]
    nsp = int(rng.integers(3, 7))
    xs = np.linspace(Rh * 1.05, -Rh * 1.05, 2 * nsp + 1)
    bottom = []
    for j, x in enumerate(xs):
        tip = (j % 2 == 1)
        y = hc[1] + (rng.uniform(-0.05, 0.12) if tip else rng.uniform(-0.45, -0.25)) * Rh
        if j in (0, len(xs) - 1):
            y = hc[1] + rng.uniform(0.1, 0.35) * Rh
        bottom.append(np.array([hc[0] + x, y]))
    bangs = catmull_rom(np.array(top + bottom), closed=True, spacing=SPACING)
    hp.shades.append(Shade(poly=bangs + (Rh * 0.05 * light[0], Rh * rng.uniform(0.1, 0.18)), mode="inside",
                           color=C.shadow_of(skin, rng), kind="shadow"))
    hp.shades.append(crescent_shadow(head, light, Rh * rng.uniform(0.12, 0.25), C.shadow_of(skin, rng)))
    # mouth and nose (free strokes inside the head)
    mc = hc + (0, Rh * rng.uniform(0.45, 0.6))
    mw = Rh * rng.uniform(0.12, 0.25)
    mouth = catmull_rom(np.array([mc - (mw, 0), mc + (0, rng.uniform(-0.3, 0.5) * mw), mc + (mw, 0)]),
                        closed=False, spacing=SPACING)
    hp.strokes.append(Stroke(pts=mouth, radii=taper_profile(len(mouth), r0 * 0.7, mw * 0.5, mw * 0.5),
                             ends=("free", "free"), kind="detail"))
    parts.append(hp)
    # eyes
    for sx in (-1, 1):
        ec = hc + (sx * Rh * rng.uniform(0.34, 0.42), Rh * rng.uniform(0.05, 0.15))
        rx, ry = Rh * rng.uniform(0.13, 0.18), Rh * rng.uniform(0.18, 0.25)
        eye = ellipse(ec, rx, ry, rng.uniform(-0.15, 0.15))
        ep = _finish_part(rng, "eye", eye, C.sample_family(rng, "white"), ink, r0 * 0.8)
        ep.shades.append(Shade(poly=ellipse(ec - (0, ry * 0.9), rx * 1.4, ry * 0.45), mode="inside",
                               color=C.shadow_of(ep.color, rng), kind="shadow"))
        parts.append(ep)
        iris = ellipse(ec + (sx * rx * 0.15, ry * 0.15), rx * 0.7, ry * 0.72)
        ip = _finish_part(rng, "iris", iris, C.sample_family(rng, "eye"), ink, r0 * 0.55)
        ip.shades.append(Shade(poly=ellipse(ec + (sx * rx * 0.15 - rx * 0.25, -ry * 0.15), rx * 0.22, ry * 0.2),
                               mode="inside", color=np.array([1.0, 1.0, 1.0]), kind="highlight"))
        parts.append(ip)
    # front hair
    bp = _finish_part(rng, "bangs", bangs, hair, ink_of(hair), r0)
    bp.shades.append(crescent_shadow(bangs, light, Rh * rng.uniform(0.12, 0.25), C.shadow_of(hair, rng)))
    hl = ellipse(hc + (-light[0] * 0.0, -Rh * 0.72), Rh * rng.uniform(0.5, 0.8), Rh * 0.08,
                 rng.uniform(-0.2, 0.2))
    bp.shades.append(Shade(poly=hl, mode="inside", color=C.highlight_of(hair, rng), kind="highlight"))
    ins = Inside(bangs)
    for _ in range(int(rng.integers(2, 5))):
        # hair strands: from the upper outline downward, free lower end
        top_idx = np.nonzero(bangs[:, 1] < hc[1] - Rh * 0.6)[0]
        if len(top_idx) == 0:
            break
        st = detail_stroke(rng, bangs, ins, r0 * rng.uniform(0.45, 0.75), Rh * rng.uniform(0.4, 0.8),
                           from_outline=True, direction=np.pi / 2, bend=0.25,
                           start=int(rng.choice(top_idx)))
        if st is not None:
            bp.strokes.append(st)
    parts.append(bp)
    return parts


def design_creature(rng, R, r0, light, ink):
    parts = []
    body_col = C.sample_family(rng, "bright" if rng.random() < 0.5 else "any")
    body = blob(rng, np.zeros(2), R * rng.uniform(0.75, 0.95), irregular=rng.uniform(0.1, 0.3),
                aspect=rng.uniform(0.8, 1.3))
    lo, hi = body.min(0), body.max(0)
    # ears / horns behind the body
    if rng.random() < 0.7:
        for sx in (-1, 1):
            c = np.array([sx * (hi[0] - lo[0]) * rng.uniform(0.2, 0.35), lo[1] + R * 0.05])
            ear = star(rng, c, R * rng.uniform(0.2, 0.35), n=3, inner=0.45, rot=-np.pi / 2) \
                if rng.random() < 0.5 else blob(rng, c, R * rng.uniform(0.18, 0.3), n=5, irregular=0.2, aspect=0.6)
            ep = _finish_part(rng, "ear", ear, C.shadow_of(body_col, rng), ink, r0)
            parts.append(ep)
    bp = _finish_part(rng, "body", body, body_col, ink, r0)
    bp.shades.append(crescent_shadow(body, light, R * rng.uniform(0.12, 0.25), C.shadow_of(body_col, rng)))
    for _ in range(int(rng.integers(0, 4))):
        c = rng.uniform(lo * 0.6, hi * 0.6)
        bp.shades.append(Shade(poly=blob(rng, c, R * rng.uniform(0.06, 0.15), n=5), mode="inside",
                               color=C.sample_family(rng, "any"), kind="pattern"))
    bp.shades.append(Shade(poly=ellipse(light * R * 0.45, R * 0.18, R * 0.09, math.atan2(light[1], light[0]) + 1.5),
                           mode="inside", color=C.highlight_of(body_col, rng), kind="highlight"))
    ins = Inside(body)
    for _ in range(int(rng.integers(1, 4))):
        st = detail_stroke(rng, body, ins, r0 * rng.uniform(0.5, 0.8), R * rng.uniform(0.12, 0.3),
                           from_outline=rng.random() < 0.6, bend=0.5)
        if st is not None:
            bp.strokes.append(st)
    parts.append(bp)
    # belly patch
    if rng.random() < 0.6:
        belly = ellipse(np.array([0, hi[1] * 0.35]), (hi[0] - lo[0]) * rng.uniform(0.18, 0.28),
                        (hi[1] - lo[1]) * rng.uniform(0.15, 0.22))
        pp = _finish_part(rng, "belly", belly, C.highlight_of(body_col, rng), ink, r0 * 0.8)
        parts.append(pp)
    # eyes
    neye = int(rng.choice([1, 2, 2, 2]))
    ey = lo[1] * rng.uniform(0.25, 0.45)
    for j in range(neye):
        ex = 0.0 if neye == 1 else (j - 0.5) * (hi[0] - lo[0]) * rng.uniform(0.25, 0.4)
        rx = R * rng.uniform(0.09, 0.16)
        eye = ellipse(np.array([ex, ey]), rx, rx * rng.uniform(1.0, 1.4))
        parts.append(_finish_part(rng, "eye", eye, C.sample_family(rng, "white"), ink, r0 * 0.75))
        pup = ellipse(np.array([ex + rx * 0.15, ey + rx * 0.15]), rx * 0.5, rx * 0.6)
        pp = _finish_part(rng, "pupil", pup, np.array([0.05, 0.05, 0.08]) + C.sample_family(rng, "eye") * 0.2,
                          ink, r0 * 0.5)
        pp.shades.append(Shade(poly=ellipse(np.array([ex, ey]), rx * 0.18, rx * 0.18), mode="inside",
                               color=np.array([1.0, 1.0, 1.0]), kind="highlight"))
        parts.append(pp)
    # mouth
    mc = np.array([0.0, ey + R * rng.uniform(0.2, 0.35)])
    mw = R * rng.uniform(0.1, 0.25)
    mouth = catmull_rom(np.array([mc - (mw, 0), mc + (0, mw * rng.uniform(0.2, 0.6)), mc + (mw, 0)]),
                        closed=False, spacing=SPACING)
    if Inside(body).depth(mouth).min() > r0 + 2:
        bp.strokes.append(Stroke(pts=mouth, radii=taper_profile(len(mouth), r0 * 0.75, mw * 0.4, mw * 0.4),
                                 ends=("free", "free"), kind="detail"))
    return parts


def design_prop(rng, R, r0, light, ink):
    col = C.sample_family(rng, "bright")
    kind = rng.choice(["star", "leaf", "rounded", "blob"])
    if kind == "star":
        poly = star(rng, np.zeros(2), R, n=int(rng.integers(4, 8)), inner=rng.uniform(0.4, 0.65),
                    rot=rng.uniform(0, np.pi))
    elif kind == "leaf":
        poly = leaf(rng, np.zeros(2), R, rot=rng.uniform(0, np.pi))
    elif kind == "rounded":
        poly = rounded_poly(rng, np.zeros(2), R, n=int(rng.integers(3, 7)), rot=rng.uniform(0, np.pi),
                            round_=rng.uniform(0.15, 0.35))
    else:
        poly = blob(rng, np.zeros(2), R, irregular=0.3)
    p = _finish_part(rng, str(kind), poly, col, ink, r0)
    p.shades.append(crescent_shadow(poly, light, R * rng.uniform(0.1, 0.25), C.shadow_of(col, rng)))
    if rng.random() < 0.5:  # stripes
        a = rng.uniform(0, np.pi)
        d = np.array([math.cos(a), math.sin(a)])
        n = np.array([-d[1], d[0]])
        for k in range(int(rng.integers(1, 4))):
            off = rng.uniform(-0.6, 0.6) * R
            w = rng.uniform(0.06, 0.15) * R
            band = np.array([n * off - d * 2 * R, n * off + d * 2 * R, n * (off + w) + d * 2 * R, n * (off + w) - d * 2 * R])
            p.shades.append(Shade(poly=band, mode="inside", color=C.sample_family(rng, "bright"), kind="pattern"))
    p.shades.append(Shade(poly=ellipse(light * R * 0.4, R * 0.15, R * 0.07, rng.uniform(0, np.pi)), mode="inside",
                          color=C.highlight_of(col, rng), kind="highlight"))
    ins = Inside(poly)
    for _ in range(int(rng.integers(1, 4))):
        st = detail_stroke(rng, poly, ins, r0 * rng.uniform(0.5, 0.8), R * rng.uniform(0.2, 0.5),
                           from_outline=rng.random() < 0.6, bend=0.3)
        if st is not None:
            p.strokes.append(st)
    return [p]


def make_design(rng, R, r0, light=None, kind=None):
    """A random sprite design centred at (0, 0) with overall radius ~R px and outline radius r0."""
    if light is None:
        a = rng.uniform(0, 2 * np.pi)
        light = np.array([math.cos(a), math.sin(a)])
    kind = str(rng.choice(["character", "character", "creature", "creature", "prop"])) if kind is None else kind
    ink = C.ink_color(rng, kind="dark")
    fn = {"character": design_character, "creature": design_creature, "prop": design_prop}[kind]
    parts = fn(rng, R, r0, np.asarray(light, np.float64), ink)
    d = Design(kind=kind, parts=parts, radius=R)
    lo, hi = d.bounds()
    ctr = (lo + hi) / 2
    return transform_design(d, np.array([[1, 0, -ctr[0]], [0, 1, -ctr[1]], [0, 0, 1.0]]))


def transform_design(design, M):
    """Apply an affine 3x3 ``M`` to all geometry; stroke radii scale by sqrt|det|."""
    sc = math.sqrt(abs(np.linalg.det(M[:2, :2])))
    parts = []
    for p in design.parts:
        q = Part(name=p.name, poly=None if p.poly is None else apply(M, p.poly), color=p.color, ink=p.ink,
                 shades=[Shade(apply(M, s.poly), s.mode, s.color, s.kind) for s in p.shades],
                 strokes=[])
        for s in p.strokes:
            pts = apply(M, s.pts)
            if abs(sc - 1.0) > 1e-9:  # keep SPACING arc-length sampling
                pts_r = resample(pts, SPACING, closed=s.closed)
                rad = np.interp(np.linspace(0, 1, len(pts_r)), np.linspace(0, 1, len(pts)), s.radii) * sc
                pts = pts_r
            else:
                rad = s.radii.copy()
            q.strokes.append(Stroke(pts=pts, radii=rad, closed=s.closed, ends=s.ends, kind=s.kind))
        parts.append(q)
    return Design(kind=design.kind, parts=parts, radius=design.radius * sc)

"""Dark objects outlined by a line barely darker than their fill, for Sketch training.

In real anime a dark object — a black ribbon or bow, a dark hair mass, a dark coat — is outlined
like any other part, but its line is traced in a colour only slightly darker than (or equal to)
its fill (Violet's ribbon: fill ≈ 0.3 grey, no darker rim). What the pixels show is only the
soft **dark-to-light step**, and the line art has a line there: the boundary of the dark region is
where the line is. :func:`add_dark_objects` paints such objects over a frame and adds their
outlines to its ``lines``:

* **shapes** (seeded): a bow (two loops, a knot, two tails), a hair mass (a blob with pointed
  strands), a ribbon band along a curve, or a coat (a large blob, often running off the frame);
  placed on the sprites (80 %) or anywhere;
* **fill**: value 0.03-0.35 (``fill``; the dark-object bench draws 0.05-0.4 on frames dimmed
  to 0.45-1×, ``ground``) with a slight tint, soft shading (± 0-25 %), sometimes a hard painted
  highlight or shadow inside it (a colour boundary, **not** ink: a negative);
* **outline**: a band of width 2r (r = 0.5-1.0 px × max(1, H/512)) centred on the object's
  boundary, in the fill's mean colour × 0.55-1.0; it is ink in the target only where the step is
  visible — where the pixels outside are lighter than the fill (by 0.05-0.15 and more, a smooth
  ramp) — and the pixels use the same weighted band;
* **softness**: drawn at 4× and area-filtered (anti-aliased); in the pixels object and outline
  are blurred together with σ 0.3-2 px × max(1, H/720) (Violet's ribbon edge is a soft ramp),
  while the target keeps the line as drawn (as for :func:`degrade_photo`'s blur);
* **negatives** (``p_plate``): 1-2 dark blobs painted on the background plate, out of focus
  (σ 1.5-4 px × max(1, H/720)), with no line.

Everything under the object (the frame's own ink included) is covered by it. Pure numpy + OpenCV;
deterministic for a given generator state.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from ._geom import catmull_rom, normals
from .plate import value_noise
from .shapes import blob, ellipse, leaf

__all__ = ["add_dark_objects", "dark_shape", "KINDS"]

KINDS = ("bow", "hair", "ribbon", "coat")
SS = 4                                   # supersampling of the shapes
_LUM = np.array([0.299, 0.587, 0.114], np.float32)


def _rot(v: float) -> np.ndarray:
    return np.array([math.cos(v), math.sin(v)])


def dark_shape(rng: np.random.Generator, kind: str, c, R: float) -> list[np.ndarray]:
    """Closed polygons (N×2, pixels) whose union is a dark object of ``kind`` around ``c``, of
    size about ``R`` px."""
    c = np.asarray(c, np.float64)
    if kind == "bow":
        a = rng.uniform(0, 2 * np.pi)
        polys = [leaf(rng, c + s * _rot(a) * R * 0.5, R * 0.55, rot=a + rng.uniform(-0.3, 0.3)) for s in (-1, 1)]
        polys.append(ellipse(c, R * 0.22, R * 0.2, rot=a))
        down = a + np.pi / 2
        for s in (-1, 1):
            t = down + s * rng.uniform(0.2, 0.6)
            polys.append(leaf(rng, c + _rot(t) * R * 0.7, R * rng.uniform(0.5, 0.8), rot=t))
        return polys
    if kind == "hair":
        polys = [blob(rng, c, R, irregular=0.2, aspect=rng.uniform(0.7, 1.4), rot=rng.uniform(0, np.pi))]
        base = rng.uniform(0, 2 * np.pi)
        for t in base + rng.uniform(-1.2, 1.2, int(rng.integers(3, 8))):
            L = R * rng.uniform(0.5, 1.0)
            polys.append(leaf(rng, c + _rot(t) * (R * 0.8 + L * 0.5), L * 0.6, rot=t))
        return polys
    if kind == "ribbon":
        a = rng.uniform(0, 2 * np.pi)
        k = int(rng.integers(3, 6))
        steps = np.cumsum(np.stack([_rot(a + rng.uniform(-0.7, 0.7)) * R * 0.6 for _ in range(k)]), 0)
        mid = catmull_rom(np.concatenate([c[None], c + steps]), closed=False, spacing=0.5)
        hw = R * rng.uniform(0.12, 0.3) * (0.7 + 0.3 * np.sin(np.linspace(0, np.pi, len(mid))))[:, None]
        n = normals(mid, closed=False)
        return [np.concatenate([mid + n * hw, (mid - n * hw)[::-1]])]
    if kind == "coat":
        return [blob(rng, c, R * rng.uniform(1.5, 2.5), irregular=0.3, aspect=rng.uniform(0.6, 1.6),
                     rot=rng.uniform(0, np.pi))]
    raise ValueError(f"dark object kind {kind!r} is not one of {KINDS}")


def _raster(polys: list[np.ndarray], x0: int, y0: int, w: int, h: int, r: float):
    """(coverage of the union, coverage of a band of half-width r on its boundary), both h×w, anti-aliased."""
    hi = np.zeros((h * SS, w * SS), np.uint8)
    pts = [np.round((((p - (x0, y0)) + 0.5) * SS - 0.5) * 16).astype(np.int32) for p in polys]
    for p in pts:                                    # one at a time: a union (fillPoly of a list is even-odd)
        cv2.fillPoly(hi, [p], 255, lineType=cv2.LINE_8, shift=4)
    k = max(1, int(round(r * SS)))
    ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    # pockets and slits narrower than two lines (between a bow's loops, a hair mass's strands) are
    # painted over, as the lines would fill them: no outline inside the dark
    hi = cv2.morphologyEx(hi, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (4 * k + 1, 4 * k + 1)))
    band = cv2.subtract(cv2.dilate(hi, ker), cv2.erode(hi, ker))
    down = lambda a: cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0  # noqa: E731
    return down(hi), down(band)


def _roi(polys, pad: int, W: int, H: int):
    allp = np.concatenate(polys)
    x0 = int(max(0, math.floor(allp[:, 0].min()) - pad))
    y0 = int(max(0, math.floor(allp[:, 1].min()) - pad))
    x1 = int(min(W, math.ceil(allp[:, 0].max()) + pad + 1))
    y1 = int(min(H, math.ceil(allp[:, 1].max()) + pad + 1))
    return x0, y0, x1, y1


def _fill(rng: np.random.Generator, polys, x0, y0, w, h, R: float, value=(0.03, 0.35)) -> np.ndarray:
    """The dark object's painted colour over its ROI (h×w×3): tinted dark value (in the range
    ``value``), soft shading, sometimes a hard highlight or shadow (a painted boundary, not ink)."""
    v = rng.uniform(*value)
    tint = (0.75 + 0.25 * rng.random(3)).astype(np.float32)
    base = v * tint / float(tint @ _LUM)
    shade = 1.0 + rng.uniform(0, 0.25) * (2 * value_noise(rng, w, h, max(4.0, R)) - 1)
    F = base[None, None] * shade[..., None]
    if rng.random() < 0.45:
        c = polys[0][int(rng.integers(len(polys[0])))]
        spot = blob(rng, c, R * rng.uniform(0.3, 0.6), irregular=0.3, aspect=rng.uniform(1.5, 3.0),
                    rot=rng.uniform(0, np.pi))
        m, _ = _raster([spot], x0, y0, w, h, 1.0)
        if rng.random() < 0.6:                           # a painted highlight (hair sheen, a fold's light)
            F = F + m[..., None] * rng.uniform(0.08, 0.22)
        else:                                            # a cel shadow
            F = F * (1.0 - m[..., None] * rng.uniform(0.3, 0.6))
    return np.clip(F, 0, 1).astype(np.float32)


def _soft(a: np.ndarray, s: float) -> np.ndarray:
    return cv2.GaussianBlur(a, (0, 0), s) if s > 0 else a


def add_dark_objects(color: np.ndarray, lines: np.ndarray, sprite: np.ndarray | None, rng: np.random.Generator,
                     n: int | None = None, p_plate: float = 0.5, kinds=KINDS, soft=(0.3, 2.0),
                     fill=(0.03, 0.35), ground=None) -> dict:
    """{"color", "lines", "objects", "outline"}: ``color`` (H×W×3, 0..1) with ``n`` dark objects
    painted over it (None: 1-3) and their visible outlines added to ``lines`` (H×W ink coverage);
    ``objects`` is the union of their coverage, ``outline`` the outline ink added. ``sprite``
    (H×W coverage of the characters, or None) places the objects on the sprites and keeps the
    plate negatives off them; ``soft``: the range of the objects' blur σ at 720 rows (the target
    does not depend on it); ``fill``: the range of their fill value; ``ground``: None, or the range
    of a factor the frame's colours are dimmed by first (a mid-grey or dusk frame: the step from a
    dark fill to its surroundings is smaller). See the module doc."""
    color = np.array(color, np.float32)
    if ground is not None:
        color *= np.float32(rng.uniform(*ground))
    lines = np.array(lines, np.float32)
    H, W = lines.shape
    sprite = np.zeros((H, W), np.float32) if sprite is None else np.clip(np.asarray(sprite, np.float32), 0, 1)
    unit = H / 256.0
    objects = np.zeros((H, W), np.float32)
    outline = np.zeros((H, W), np.float32)
    # negatives first (they are plate): dark, out-of-focus blobs with no line
    if rng.random() < p_plate:
        for _ in range(int(rng.integers(1, 3))):
            c = rng.uniform((0, 0), (W, H))
            poly = blob(rng, c, rng.uniform(6, 30) * unit, irregular=0.3, aspect=rng.uniform(0.5, 2.0))
            s = rng.uniform(1.5, 4.0) * max(1.0, H / 720)
            x0, y0, x1, y1 = _roi([poly], int(3 * s) + 2, W, H)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            m, _ = _raster([poly], x0, y0, x1 - x0, y1 - y0, 1.0)
            m = _soft(m, s) * (1.0 - sprite[y0:y1, x0:x1])
            dark = rng.uniform(0.05, 0.35) * (0.8 + 0.2 * rng.random(3)).astype(np.float32)
            roi = color[y0:y1, x0:x1]
            color[y0:y1, x0:x1] = roi * (1 - m[..., None]) + dark * m[..., None]
    on = np.argwhere(sprite > 0.5)
    for _ in range(int(rng.integers(1, 4)) if n is None else n):
        kind = kinds[int(rng.integers(len(kinds)))]
        if len(on) and rng.random() < 0.8:
            c = on[int(rng.integers(len(on)))][::-1].astype(np.float64)
        else:
            c = rng.uniform((0, 0), (W, H))
        R = rng.uniform(10, 40) * unit
        polys = dark_shape(rng, kind, c, R)
        s = rng.uniform(*soft) * max(1.0, H / 720)
        r = rng.uniform(0.5, 1.0) * max(1.0, H / 512)
        x0, y0, x1, y1 = _roi(polys, int(math.ceil(r + 3 * s)) + 3, W, H)
        w, h = x1 - x0, y1 - y0
        if w < 2 or h < 2:
            continue
        M, L = _raster(polys, x0, y0, w, h, r)
        F = _fill(rng, polys, x0, y0, w, h, R, fill)
        ink = F[M > 0.5].mean(0) * rng.uniform(0.55, 1.0) if (M > 0.5).any() else F.mean((0, 1))
        # the step is visible where the pixels just outside are lighter than the fill
        old = color[y0:y1, x0:x1]
        out_w = (1.0 - M) * (1.0 - L)
        sig = 1.5 * r + 1.0
        outside = _soft(old @ _LUM * out_w, sig) / (_soft(out_w, sig) + 1e-4)
        vis = np.clip((outside - F @ _LUM - 0.05) / 0.1, 0.0, 1.0)
        Lv = (L * vis).astype(np.float32)
        # the pixels are the object and its line out of focus; the target is the line as drawn
        Mb, Lb = _soft(M, s)[..., None], _soft(Lv, s)[..., None]
        color[y0:y1, x0:x1] = Lb * ink + (1 - Lb) * (Mb * F + (1 - Mb) * old)
        lines[y0:y1, x0:x1] = Lv + (1 - Lv) * (1 - M) * lines[y0:y1, x0:x1]
        outline[y0:y1, x0:x1] = Lv + (1 - Lv) * (1 - M) * outline[y0:y1, x0:x1]
        objects[y0:y1, x0:x1] = np.maximum(objects[y0:y1, x0:x1], M)
    lines[lines < 1e-3] = 0.0
    return {"color": np.clip(color, 0, 1).astype(np.float32), "lines": np.clip(lines, 0, 1).astype(np.float32),
            "objects": objects, "outline": outline}

"""Procedural cartoon clips with exact ground truth.

A clip is a painted background plate moved by a known similarity per frame, plus 1-4 sprites.
Each sprite is rendered ONCE onto its own canvas (premultiplied colour, fill, ink, region ids)
and every frame is produced by warping the canvases with ``cv2.remap`` (bilinear for colour,
ink and alpha, nearest for ids) and compositing back to front, so appearance, transforms and
flow agree exactly.

Conventions: top-left origin, x right, y down, pixel centres at integer coordinates; flow in
pixels (+x right, +y down); ``transforms[k]`` maps frame pixel coords to sprite-k canvas coords;
``plate_transform`` maps frame pixel coords to plate coords.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from ._geom import apply, mat_rotate, mat_scale, mat_squash, mat_translate
from .plate import paint_detailed_plate, paint_plate
from .render import MARGIN, render_design
from .shapes import make_design, transform_design

FRAME_KEYS = ("color", "fill", "lines", "regions", "parts", "alpha", "alpha_full", "owner",
              "transforms", "plate_transform", "depth_order", "flow_fw", "flow_bw", "occ_fw", "occ_bw")


# ---------------------------------------------------------------- deformation

def _remap_points(img, x, y):
    """Bilinear samples of ``img`` (h x w [x c], c in {1, 3, 4}, float32) at arbitrary-shaped float
    coords with exact float interpolation (cv2.remap), border replicated; returns shape + (c,)."""
    shp = np.shape(x)
    x = np.asarray(x, np.float32).ravel()
    y = np.asarray(y, np.float32).ravel()
    n = x.size
    cols = 1024
    rows = max(1, -(-n // cols))
    mx = np.zeros(rows * cols, np.float32)
    my = np.zeros(rows * cols, np.float32)
    mx[:n] = x
    my[:n] = y
    mx, my = mx.reshape(rows, cols), my.reshape(rows, cols)
    out = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out = out.reshape(rows * cols, -1)[:n]
    return out.reshape(shp + (out.shape[1],))


class Deformation:
    """Mild smooth non-rigid deformation in canvas space: c = q + e_t(q), where q = A_t p is the
    affine canvas coordinate of frame pixel p.  e_t is a sum of Gaussian bumps whose vector
    amplitudes oscillate smoothly in time, sampled on a coarse grid (``step`` px) and defined
    everywhere by bilinear interpolation of that grid (so rendering, ``canvas_coords`` and the
    flow all use one exactly reproducible function).  Its Lipschitz constant stays below ``lip``
    (< 1), so q -> q + e_t(q) is invertible and the fixed-point inverse converges."""

    def __init__(self, rng, lo, hi, R, n_frames, strength=1.0, lip=0.35, size=None):
        k = int(rng.integers(2, 6))
        self.centers = rng.uniform(lo, hi, size=(k, 2))
        self.sigmas = rng.uniform(0.25, 0.6, size=k) * R
        ang = rng.uniform(0, 2 * np.pi, size=k)
        mag = rng.uniform(0.3, 1.0, size=k) * 0.15 * self.sigmas * strength
        # bound the Lipschitz constant: |grad bump| <= |amp| / sigma * exp(-1/2)
        lipsum = float(np.sum(mag / self.sigmas) * math.exp(-0.5))
        if lipsum > lip:
            mag *= lip / lipsum
        self.amps = np.stack([mag * np.cos(ang), mag * np.sin(ang)], 1)
        self.freqs = rng.uniform(0.3, 1.2, size=k) / max(n_frames, 1)   # cycles per frame
        self.phases = rng.uniform(0, 2 * np.pi, size=k)
        size = np.asarray(hi if size is None else size, np.float64)
        self.step = float(max(2.0, min(8.0, float(self.sigmas.min()) / 3.0)))
        self.origin = np.array([-8.0 * self.step, -8.0 * self.step])
        self.grid_shape = (int(math.ceil((size[1] + 16 * self.step) / self.step)) + 1,
                           int(math.ceil((size[0] + 16 * self.step) / self.step)) + 1)
        self._cache = {}

    def params(self):
        return dict(centers=self.centers.tolist(), sigmas=self.sigmas.tolist(), amps=self.amps.tolist(),
                    freqs=self.freqs.tolist(), phases=self.phases.tolist(), grid_step=self.step,
                    grid_origin=self.origin.tolist())

    def field(self, t):
        """Displacement grid (gh x gw x 3 float32; channels dx, dy, 0) for frame t; node (i, j) sits at
        origin + step*(j, i)."""
        if t not in self._cache:
            gh, gw = self.grid_shape
            gx = self.origin[0] + self.step * np.arange(gw)[None, :]
            gy = self.origin[1] + self.step * np.arange(gh)[:, None]
            f = np.zeros((gh, gw, 2), np.float64)
            w = np.sin(2 * np.pi * self.freqs * t + self.phases)
            for (cx, cy), s, (ax, ay), wj in zip(self.centers, self.sigmas, self.amps, w):
                g = np.exp(-((gx - cx) ** 2 + (gy - cy) ** 2) * (0.5 / (s * s)))
                f[..., 0] += (ax * wj) * g
                f[..., 1] += (ay * wj) * g
            # 3 channels (third unused): OpenCV remaps 1, 3 and 4 channel float images with exact
            # bilinear weights but 2-channel ones with 1/32-px quantised weights
            self._cache[t] = np.ascontiguousarray(np.dstack([f, np.zeros(f.shape[:2])]), dtype=np.float32)
        return self._cache[t]

    def disp(self, t, qx, qy):
        """Displacement (dx, dy) at canvas points (arrays qx, qy) for frame t."""
        d = _remap_points(self.field(t), (np.asarray(qx) - self.origin[0]) / self.step,
                          (np.asarray(qy) - self.origin[1]) / self.step)
        return d[..., 0].astype(np.float64), d[..., 1].astype(np.float64)

    def forward(self, t, qx, qy):
        dx, dy = self.disp(t, qx, qy)
        return qx + dx, qy + dy

    def inverse(self, t, cx, cy, iters=50, tol=1e-5):
        """Solve q + e_t(q) = c by fixed-point iteration (contraction, Lipschitz < 1)."""
        qx, qy = np.array(cx, np.float64), np.array(cy, np.float64)
        for _ in range(iters):
            dx, dy = self.disp(t, qx, qy)
            nx, ny = cx - dx, cy - dy
            err = max(float(np.abs(nx - qx).max(initial=0.0)), float(np.abs(ny - qy).max(initial=0.0)))
            qx, qy = nx, ny
            if err < tol:
                break
        return qx, qy


# ---------------------------------------------------------------- data classes

@dataclass
class Sprite:
    design: object                 # shapes.Design in canvas coordinates
    canvas: dict                   # arrays: P, A, Fp, a, ink, ink_rgb, ids, parts
    size: tuple                    # (w, h) of the canvas
    to_frame: list                 # per frame 3x3 canvas->frame (affine part)
    deform: Deformation | None
    info: dict = field(default_factory=dict)


@dataclass
class Clip:
    frames: list                   # list of per-frame dicts (see FRAME_KEYS)
    plate: np.ndarray              # H_p x W_p x 3 float32
    sprites: list                  # list of Sprite
    meta: dict                     # JSON-able spec
    depth_order: list

    @property
    def n_sprites(self):
        return len(self.sprites)

    @property
    def n_frames(self):
        return len(self.frames)

    def stack(self, key):
        """Stack one per-frame key over time (T x ...)."""
        return np.stack([f[key] for f in self.frames])

    def to_dict(self):
        """Flat dict of numpy arrays, easy to np.savez: per-frame keys stacked over time (T x ...),
        plus 'plate', per-sprite canvases 'sprite{k}_rgba' (premultiplied, h x w x 4),
        'sprite{k}_fill' (premultiplied fill RGBA), 'sprite{k}_ink', 'sprite{k}_ids',
        'sprite{k}_parts', and 'meta' (a JSON string)."""
        out = {k: self.stack(k) for k in FRAME_KEYS if k in self.frames[0]}
        out["plate"] = self.plate
        for k, s in enumerate(self.sprites):
            c = s.canvas
            out[f"sprite{k}_rgba"] = np.dstack([c["P"], c["A"]]).astype(np.float32)
            out[f"sprite{k}_fill"] = np.dstack([c["Fp"], c["a"]]).astype(np.float32)
            out[f"sprite{k}_ink"] = c["ink"]
            out[f"sprite{k}_ids"] = c["ids"]
            out[f"sprite{k}_parts"] = c["parts"]
        out["meta"] = np.array(json.dumps(self.meta))
        return out

    def canvas_coords(self, k, t, x, y):
        """Exact canvas coordinates of frame points (x, y) for sprite k at frame t
        (affine transform followed by the deformation, if any)."""
        A = self.frames[t]["transforms"][k]
        qx = A[0, 0] * x + A[0, 1] * y + A[0, 2]
        qy = A[1, 0] * x + A[1, 1] * y + A[1, 2]
        d = self.sprites[k].deform
        if d is not None:
            qx, qy = d.forward(t, qx, qy)
        return qx, qy


# ---------------------------------------------------------------- motion

def _smooth_path(rng, n, start, vel, acc, wobble_amp, wobble_freq):
    t = np.arange(n, dtype=np.float64)[:, None]
    ph = rng.uniform(0, 2 * np.pi, 2)
    wob = wobble_amp * np.sin(2 * np.pi * wobble_freq * t + ph)
    return start + vel * t + 0.5 * acc * t * t + wob


def _plate_motion(rng, W, H, n, unit):
    pan_v = np.array([rng.uniform(-6, 6), rng.uniform(-2, 2)]) * unit * (rng.random() < 0.85)
    pan_a = rng.normal(0, 0.08, 2) * unit
    zoom_rate = rng.uniform(-0.008, 0.008) if rng.random() < 0.5 else 0.0
    rot_rate = rng.uniform(-0.004, 0.004) if rng.random() < 0.4 else 0.0
    rot0 = rng.uniform(-0.03, 0.03)
    fc = np.array([(W - 1) / 2.0, (H - 1) / 2.0])
    rel = []
    for t in range(n):
        pan = pan_v * t + 0.5 * pan_a * t * t
        z = math.exp(zoom_rate * t)
        rel.append(mat_translate(*pan) @ mat_rotate(rot0 + rot_rate * t) @ mat_scale(1.0 / z)
                   @ mat_translate(-fc[0], -fc[1]))
    corners = np.array([[-0.5, -0.5], [W - 0.5, -0.5], [W - 0.5, H - 0.5], [-0.5, H - 0.5]])
    allc = np.concatenate([apply(M, corners) for M in rel])
    margin = 8 + 4 * unit
    lo, hi = allc.min(0) - margin, allc.max(0) + margin
    pw, ph = int(math.ceil(hi[0] - lo[0])), int(math.ceil(hi[1] - lo[1]))
    mats = [mat_translate(-lo[0], -lo[1]) @ M for M in rel]
    info = dict(pan_velocity=pan_v.tolist(), pan_accel=pan_a.tolist(), zoom_rate=zoom_rate,
                rot_rate=rot_rate, rot0=rot0, size=[pw, ph])
    return mats, (pw, ph), info


def _sprite_motion(rng, W, H, n, unit, R, cc, plate_mats, attach):
    """Canvas->frame 3x3 per frame: [plate^-1 if attached] T(pos) R(theta) Squash S(scale) T(-cc)."""
    start = np.array([rng.uniform(0.15, 0.85) * W, rng.uniform(0.25, 0.8) * H])
    speed = rng.uniform(0.0, 6.0) * unit
    ang = rng.uniform(0, 2 * np.pi)
    vel = speed * np.array([math.cos(ang), math.sin(ang)])
    acc = rng.normal(0, 0.1, 2) * unit
    # keep the sprite around the frame: pull start back so the path is centred
    mid = (n - 1) / 2.0
    start = start - vel * mid - 0.5 * acc * mid * mid
    wob = rng.uniform(0, 3.0, 2) * unit
    pos = _smooth_path(rng, n, start, vel, acc, wob, rng.uniform(0.03, 0.12))
    th0, om = rng.uniform(-0.3, 0.3), rng.uniform(-0.025, 0.025)
    th_amp, th_f = rng.uniform(0, 0.08), rng.uniform(0.03, 0.12)
    s0, ds = rng.uniform(0.9, 1.1), rng.uniform(-0.008, 0.008)
    sq_amp, sq_f, sq_ang = rng.uniform(0, 0.08), rng.uniform(0.05, 0.2), rng.uniform(0, np.pi)
    ph = rng.uniform(0, 2 * np.pi, 2)
    mats = []
    for t in range(n):
        th = th0 + om * t + th_amp * math.sin(2 * np.pi * th_f * t + ph[0])
        sc = s0 * (1 + ds * t)
        sq = sq_amp * math.sin(2 * np.pi * sq_f * t + ph[1])
        M = mat_translate(*pos[t]) @ mat_rotate(th) @ mat_squash(sq, sq_ang) @ mat_scale(sc) \
            @ mat_translate(-cc[0], -cc[1])
        if attach:
            M = np.linalg.inv(plate_mats[t]) @ plate_mats[0] @ M
        mats.append(M)
    info = dict(start=start.tolist(), velocity=vel.tolist(), accel=acc.tolist(), theta0=th0, omega=om,
                scale0=s0, scale_rate=ds, squash_amp=sq_amp, attached=bool(attach))
    return mats, info


# ---------------------------------------------------------------- frame rendering

def _affine_maps(M, x0, y0, w, h, dtype=np.float64):
    """(mx, my) = M . (x, y) over the pixel grid of a ROI, by broadcasting."""
    xs = np.arange(x0, x0 + w, dtype=dtype)[None, :]
    ys = np.arange(y0, y0 + h, dtype=dtype)[:, None]
    mx = M[0, 0] * xs + (M[0, 1] * ys + M[0, 2])
    my = M[1, 0] * xs + (M[1, 1] * ys + M[1, 2])
    return mx, my


def _sprite_roi(sprite, A_inv, W, H, pad):
    cw, ch = sprite.size
    corners = np.array([[-pad, -pad], [cw + pad, -pad], [cw + pad, ch + pad], [-pad, ch + pad]], np.float64)
    fc = apply(A_inv, corners)
    x0 = max(int(math.floor(fc[:, 0].min())) - 1, 0)
    y0 = max(int(math.floor(fc[:, 1].min())) - 1, 0)
    x1 = min(int(math.ceil(fc[:, 0].max())) + 2, W)
    y1 = min(int(math.ceil(fc[:, 1].max())) + 2, H)
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def _render_frame(t, W, H, plate, plate_M, sprites, order, stacks):
    """Composite frame t.  Returns the frame dict (without flow)."""
    mx, my = _affine_maps(plate_M.astype(np.float32), 0, 0, W, H, np.float32)
    bg = cv2.remap(plate, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    color = bg
    fill = bg.copy()
    S = len(sprites)
    lines = np.zeros((H, W), np.float32)
    alpha_full = np.zeros((S, H, W), np.float32)
    ids_l = np.zeros((S, H, W), np.int32)
    parts_l = np.zeros((S, H, W), np.int32)
    transforms = np.zeros((S, 3, 3), np.float64)
    for k in order:
        sp = sprites[k]
        M = sp.to_frame[t]
        A = np.linalg.inv(M)
        transforms[k] = A
        pad = 2.0 + (float(np.abs(sp.deform.amps).sum()) if sp.deform is not None else 0.0)
        roi = _sprite_roi(sp, M, W, H, pad)
        if roi is None:
            continue
        x0, y0, w, h = roi
        qx, qy = _affine_maps(A, x0, y0, w, h)
        if sp.deform is not None:
            qx, qy = sp.deform.forward(t, qx, qy)
        qx32, qy32 = qx.astype(np.float32), qy.astype(np.float32)
        # <= 4 channels per call: OpenCV then interpolates in exact float (more channels use
        # 1/32-px quantised weights), so sampling a canvas with cv2.remap reproduces the frame
        lin = [cv2.remap(x, qx32, qy32, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
               for x in stacks[k][0]]
        near = cv2.remap(stacks[k][1], qx32, qy32, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        P, Ak, Fp, a, ink = lin[0][..., 0:3], lin[0][..., 3], lin[1][..., 0:3], lin[1][..., 3], lin[2]
        sl = (slice(y0, y0 + h), slice(x0, x0 + w))
        color[sl] = P + (1.0 - Ak)[..., None] * color[sl]
        fill[sl] = Fp + (1.0 - a)[..., None] * fill[sl]
        lines[sl] = ink + (1.0 - Ak) * lines[sl]
        alpha_full[k][sl] = Ak
        ids_l[k][sl] = near[..., 0]
        parts_l[k][sl] = near[..., 1]
    # visibility front to back
    trans = np.ones((H, W), np.float32)
    alpha_vis = np.zeros_like(alpha_full)
    regions = np.zeros((H, W), np.int32)
    parts = np.zeros((H, W), np.int32)
    for k in reversed(order):
        alpha_vis[k] = alpha_full[k] * trans
        trans *= (1.0 - alpha_full[k])
        free = (regions == 0) & (ids_l[k] > 0)
        regions[free] = ids_l[k][free]
        parts[free] = parts_l[k][free]
    # flow owner: the layer with the largest visible weight (background weight = transmittance)
    owner = np.zeros((H, W), np.int8)
    best = trans.copy()
    for k in range(S):
        m = alpha_vis[k] > best
        owner[m] = k + 1
        np.maximum(best, alpha_vis[k], out=best)
    np.clip(color, 0, 1, out=color)
    np.clip(fill, 0, 1, out=fill)
    frame = dict(t=t, color=color, fill=fill, lines=np.clip(lines, 0, 1), regions=regions, parts=parts,
                 alpha=alpha_vis, alpha_full=alpha_full, owner=owner, transforms=transforms,
                 plate_transform=plate_M.copy(), depth_order=np.asarray(order, np.int32))
    return frame


def _flow(frames, t, t2, W, H, sprites):
    """Exact flow from frame t to frame t2 (= t+-1) and the occlusion mask.

    Each pixel moves with the layer that owns it (largest visible weight).  Occluded = the target
    leaves the frame, or that layer's visible weight at the target in frame t2 is < 0.5."""
    f = frames[t]
    g = frames[t2]
    owner = f["owner"]
    # background everywhere first: exact affine, frame t -> plate -> frame t2
    Pb = np.linalg.inv(g["plate_transform"]) @ f["plate_transform"]
    tx, ty = _affine_maps(Pb, 0, 0, W, H)
    vis = np.zeros((H, W), np.float32)
    bgw = 1.0 - g["alpha"].sum(0)
    m = owner == 0
    vis[m] = _remap_points(np.ascontiguousarray(bgw, np.float32), tx[m], ty[m])[:, 0]
    for k, sp in enumerate(sprites):
        ys, xs = np.nonzero(owner == (k + 1))
        if len(ys) == 0:
            continue
        px, py = xs.astype(np.float64), ys.astype(np.float64)
        A = f["transforms"][k]
        qx = A[0, 0] * px + A[0, 1] * py + A[0, 2]
        qy = A[1, 0] * px + A[1, 1] * py + A[1, 2]
        if sp.deform is not None:
            cx, cy = sp.deform.forward(t, qx, qy)
            qx, qy = sp.deform.inverse(t2, cx, cy)
        B = sp.to_frame[t2]
        ux = B[0, 0] * qx + B[0, 1] * qy + B[0, 2]
        uy = B[1, 0] * qx + B[1, 1] * qy + B[1, 2]
        tx[ys, xs] = ux
        ty[ys, xs] = uy
        vis[ys, xs] = _remap_points(g["alpha"][k], ux, uy)[:, 0]
    gx = np.arange(W, dtype=np.float64)[None, :]
    gy = np.arange(H, dtype=np.float64)[:, None]
    flow = np.empty((H, W, 2), np.float32)
    flow[..., 0] = tx - gx
    flow[..., 1] = ty - gy
    out = (tx < 0) | (tx > W - 1) | (ty < 0) | (ty > H - 1)
    occ = out | (vis < 0.5)
    return flow, occ


# ---------------------------------------------------------------- public API

def make_clip(seed, width=456, height=256, n_frames=16, n_sprites=None, deform=True, flow=True,
              deform_strength=1.0, sprite_kinds=None, ss=4, background="painted"):
    """Generate a procedural cartoon clip with exact ground truth.

    seed: int (or anything np.random.default_rng accepts).  Same seed -> identical arrays.
    n_sprites: 1-4 (None: random).  deform: add mild smooth non-rigid deformation to sprites.
    flow: compute flow_fw/flow_bw/occ_fw/occ_bw (the most expensive part at high resolution).
    sprite_kinds: optional list of 'character' | 'creature' | 'prop' per sprite.
    background: 'painted' (a field, town or room, soft painted shapes) or 'detailed' (a busy street of
    outlined façades, window frames, signs with lettering, leaf clusters and cobbles).
    """
    painters = {"painted": paint_plate, "detailed": paint_detailed_plate}
    if background not in painters:
        raise ValueError(f"background {background!r}: use one of {sorted(painters)}")
    # independent random streams, so that e.g. n_frames or deform do not change the designs
    r_main, r_plate, r_sprites = np.random.default_rng(seed).spawn(3)
    W, H, T = int(width), int(height), int(n_frames)
    unit = H / 256.0
    if n_sprites is None and sprite_kinds is not None:
        n_sprites = len(sprite_kinds)
    S = int(r_main.integers(1, 5)) if n_sprites is None else int(n_sprites)
    order = [int(i) for i in r_main.permutation(S)]
    # background
    plate_mats, (pw, ph), plate_info = _plate_motion(r_plate, W, H, T, unit)
    plate, pinfo = painters[background](r_plate, pw, ph, unit)
    plate_info.update(pinfo)
    # sprites
    la = r_main.uniform(0, 2 * np.pi)
    light = np.array([math.cos(la), math.sin(la)])
    lw = max(0.8, r_main.uniform(0.6, 1.25) * unit ** 0.5)
    Rmin, Rmax = {1: (0.3, 0.42), 2: (0.22, 0.34)}.get(S, (0.16, 0.28))
    sprites, regions_meta, parts_meta, sinfo = [], [], [], []
    rbase, pbase = 0, 0
    for k, r_k in enumerate(r_sprites.spawn(S)):
        rng, r_motion, r_deform = r_k.spawn(3)
        R = rng.uniform(Rmin, Rmax) * H
        kind = None if sprite_kinds is None else sprite_kinds[k % len(sprite_kinds)]
        d = make_design(rng, R, lw * rng.uniform(0.85, 1.15), light=light, kind=kind)
        lo, hi = d.bounds()
        off = -lo + MARGIN
        d = transform_design(d, mat_translate(off[0], off[1]))
        cw = int(math.ceil(hi[0] - lo[0] + 2 * MARGIN)) + 1
        ch = int(math.ceil(hi[1] - lo[1] + 2 * MARGIN)) + 1
        canvas = render_design(d.parts, cw, ch, ss=ss, region_base=rbase, part_base=pbase)
        for r in canvas["regions"]:
            r["sprite"] = k
            regions_meta.append(r)
        for i, p in enumerate(d.parts):
            parts_meta.append(dict(id=pbase + 1 + i, sprite=k, name=p.name))
        rbase = max([r["id"] for r in canvas["regions"]] + [rbase])
        pbase += len(d.parts)
        cc = np.array([cw / 2.0, ch / 2.0])
        attach = r_motion.random() < 0.4
        mats, minfo = _sprite_motion(r_motion, W, H, T, unit, R, cc, plate_mats, attach)
        dfm = None
        if deform:
            dfm = Deformation(r_deform, np.array([MARGIN, MARGIN], float), np.array([cw - MARGIN, ch - MARGIN], float),
                              R, T, strength=deform_strength, size=(cw, ch))
        sprites.append(Sprite(design=d, canvas=canvas, size=(cw, ch), to_frame=mats, deform=dfm,
                              info=dict(kind=d.kind, motion=minfo)))
        sinfo.append(dict(kind=d.kind, canvas_size=[cw, ch], radius=R, motion=minfo,
                          deform=None if dfm is None else dfm.params()))
    stacks = []
    for sp in sprites:
        c = sp.canvas
        lin = [np.ascontiguousarray(np.dstack([c["P"], c["A"]]), dtype=np.float32),
               np.ascontiguousarray(np.dstack([c["Fp"], c["a"]]), dtype=np.float32),
               np.ascontiguousarray(c["ink"], dtype=np.float32)]
        near = np.ascontiguousarray(np.dstack([c["ids"], c["parts"]]), dtype=np.int32)
        stacks.append((lin, near))
    frames = [_render_frame(t, W, H, plate, plate_mats[t], sprites, order, stacks) for t in range(T)]
    if flow:
        for t in range(T):
            f = frames[t]
            if t + 1 < T:
                f["flow_fw"], f["occ_fw"] = _flow(frames, t, t + 1, W, H, sprites)
            else:
                f["flow_fw"], f["occ_fw"] = np.zeros((H, W, 2), np.float32), np.ones((H, W), bool)
            if t > 0:
                f["flow_bw"], f["occ_bw"] = _flow(frames, t, t - 1, W, H, sprites)
            else:
                f["flow_bw"], f["occ_bw"] = np.zeros((H, W, 2), np.float32), np.ones((H, W), bool)
    meta = dict(generator="celgraph.synth.make_clip", version=1, seed=int(seed) if np.isscalar(seed) else str(seed),
                width=W, height=H, n_frames=T, n_sprites=S, deform=bool(deform), depth_order=order,
                light=light.tolist(), line_radius=lw, plate=plate_info, sprites=sinfo,
                regions=regions_meta, parts=parts_meta,
                conventions=("x right, y down, pixel centres at integer coords; flow in px (t->t+1 fw, "
                             "t->t-1 bw); occ True = not visible in the other frame or leaving the frame; "
                             "transforms: frame px -> sprite canvas px (affine part; exact when deform=False); "
                             "plate_transform: frame px -> plate px; depth_order back to front; regions 0 = "
                             "background; lines = sprite ink only (plate detail lines are texture)"))
    return Clip(frames=frames, plate=plate, sprites=sprites, meta=meta, depth_order=order)

"""Rendering of vector designs into canvas layers (fill, shades, ink with occlusion)."""
from __future__ import annotations

import numpy as np

from .raster import cover_polys, cover_strokes, roi_of

MARGIN = 4


def part_roi(part, width, height):
    pts = [] if part.poly is None else [part.poly]
    pts += [s.pts for s in part.strokes]
    if not pts:
        return None
    rmax = max([float(s.radii.max()) for s in part.strokes] + [0.0])
    return roi_of(np.concatenate(pts), rmax + 3, width, height)


def render_design(parts, width, height, ss=4, region_base=0, part_base=0, keep_layers=False,
                  want_color=True):
    """Render ``parts`` (canvas coordinates, back to front) into a ``width`` x ``height`` canvas.

    Returns a dict:
      P (h,w,3) premultiplied colour of the sprite (ink over fill), A (h,w) its alpha,
      Fp (h,w,3) premultiplied fill colour (no ink), a (h,w) fill alpha,
      ink (h,w) ink coverage (after occlusion by later parts), ink_rgb (h,w,3) premultiplied ink colour,
      ids (h,w) int32 flat-colour region ids (region_base+1 ...; 0 outside),
      parts (h,w) int32 line-enclosed part ids (part_base+1+index; 0 outside),
      regions: list of dicts (id, part, part_name, kind, color),
      layers (if keep_layers): per part (roi, fill coverage or None, ink coverage or None).
    """
    h, w = height, width
    a = np.zeros((h, w), np.float32)
    ink = np.zeros((h, w), np.float32)
    Fp = np.zeros((h, w, 3), np.float32) if want_color else None
    inkC = np.zeros((h, w, 3), np.float32) if want_color else None
    ids = np.zeros((h, w), np.int32)
    pmap = np.zeros((h, w), np.int32)
    regions, layers = [], []
    rid = region_base
    for pi, part in enumerate(parts):
        roi = part_roi(part, w, h)
        if roi is None:
            layers.append((None, None, None))
            continue
        x0, y0, rw, rh = roi
        sl = (slice(y0, y0 + rh), slice(x0, x0 + rw))
        m = None
        if part.poly is not None:
            m = cover_polys([part.poly], roi, ss)
            hard = m >= 0.5
            idsub = ids[sl]
            rid += 1
            idsub[hard] = rid
            regions.append(dict(id=rid, part=part_base + 1 + pi, part_name=part.name, kind="base",
                                color=[float(c) for c in part.color]))
            Lc = np.empty((rh, rw, 3), np.float32)
            Lc[:] = part.color
            for sh in part.shades:
                ms = cover_polys([sh.poly], roi, ss)
                if sh.mode == "outside":
                    ms = 1.0 - ms
                if want_color:
                    Lc += (np.asarray(sh.color, np.float32) - Lc) * ms[..., None]
                rid += 1
                idsub[hard & (ms >= 0.5)] = rid
                regions.append(dict(id=rid, part=part_base + 1 + pi, part_name=part.name, kind=sh.kind,
                                    color=[float(c) for c in sh.color]))
            if want_color:
                Fsub = Fp[sl]
                Fsub += (Lc - Fsub) * m[..., None]
                inkC[sl] *= (1.0 - m)[..., None]
            a[sl] += m * (1.0 - a[sl])
            ink[sl] *= (1.0 - m)
            pmap[sl][hard] = part_base + 1 + pi
        ip = None
        if part.strokes:
            ip = cover_strokes([(s.pts, s.radii, s.closed) for s in part.strokes], roi)
            if want_color:
                sub = inkC[sl]
                sub *= (1.0 - ip)[..., None]
                sub += ip[..., None] * np.asarray(part.ink, np.float32)
            isub = ink[sl]
            isub *= (1.0 - ip)
            isub += ip
        layers.append((roi, m, ip) if keep_layers else None)
    out = dict(a=a, ink=ink, ids=ids, parts=pmap, regions=regions)
    if want_color:
        out["Fp"] = Fp
        out["ink_rgb"] = inkC
        out["P"] = inkC + (1.0 - ink)[..., None] * Fp
    out["A"] = ink + (1.0 - ink) * a
    if keep_layers:
        out["layers"] = layers
    return out


def composite_ink(layers, width, height, override=None):
    """Recompute the occluded ink layer from per-part (roi, fill cov, ink cov) layers.
    ``override`` maps part index -> replacement ink coverage (same ROI)."""
    ink = np.zeros((height, width), np.float32)
    for pi, L in enumerate(layers):
        if L is None or L[0] is None:
            continue
        roi, m, ip = L
        if override is not None and pi in override:
            ip = override[pi]
        x0, y0, rw, rh = roi
        sub = ink[y0:y0 + rh, x0:x0 + rw]
        if m is not None:
            sub *= (1.0 - m)
        if ip is not None:
            sub *= (1.0 - ip)
            sub += ip
    return ink

"""Looking at optical flow: the Middlebury colour coding, a colour-wheel legend, ``.flo`` files.

Colour coding (Baker et al., "A Database and Evaluation Methodology for Optical Flow", 2007):
the direction of a flow vector picks a hue on a 55-step colour wheel and its length, relative to
``max_flow``, the saturation, from white (no motion) to the full colour. Vectors longer than
``max_flow`` keep the full colour, darkened to 75 %. With the +x right / +y down convention:
right = red, down = orange-yellow, left = cyan, up = blue-violet. Non-finite vectors are black.

Flow arrays are H×W×2 float32 in pixels, channel 0 = +x right, channel 1 = +y down.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.atomic import atomic_write

__all__ = ["flow_to_color", "flow_wheel", "color_wheel", "read_flo", "write_flo", "FLO_MAGIC"]

# hue segments of the wheel and their number of steps: red→yellow→green→cyan→blue→magenta→red
_SEGMENTS = (("RY", 15), ("YG", 6), ("GC", 4), ("CB", 11), ("BM", 13), ("MR", 6))


def color_wheel() -> np.ndarray:
    """The 55 colours of the wheel, 55×3 float32 RGB in 0..1, red first, going through yellow,
    green, cyan, blue and magenta. In each segment one channel ramps linearly while the others
    stay at 0 or 1."""
    rows = []
    for name, n in _SEGMENTS:
        t = np.arange(n, dtype=np.float64) / n
        one, zero = np.ones(n), np.zeros(n)
        rgb = {"RY": (one, t, zero), "YG": (1 - t, one, zero), "GC": (zero, one, t),
               "CB": (zero, 1 - t, one), "BM": (t, zero, one), "MR": (one, zero, 1 - t)}[name]
        rows.append(np.stack(rgb, axis=1))
    return np.concatenate(rows).astype(np.float32)


def flow_to_color(flow: np.ndarray, max_flow: float | None = None) -> np.ndarray:
    """H×W×2 flow (px) → H×W×3 float32 RGB in 0..1 with the Middlebury colour coding.

    ``max_flow`` (px) is the length drawn at full saturation; None uses the longest finite vector
    of this field (so each image is scaled on its own; give a fixed value to compare frames).
    Zero flow is white. Longer vectors than ``max_flow`` are drawn at 75 % brightness.
    """
    f = np.asarray(flow, dtype=np.float32)
    if f.ndim != 3 or f.shape[-1] != 2:
        raise ValueError(f"expected an H×W×2 flow, got shape {f.shape}")
    finite = np.isfinite(f).all(axis=-1)
    u = np.where(finite, f[..., 0], 0).astype(np.float64)
    v = np.where(finite, f[..., 1], 0).astype(np.float64)
    rad = np.hypot(u, v)
    if max_flow is None:
        max_flow = float(rad.max()) if rad.size else 0.0
    elif not max_flow > 0:
        raise ValueError(f"max_flow must be > 0, got {max_flow}")
    scale = 1.0 / max_flow if max_flow > 0 else 0.0
    u, v, rad = u * scale, v * scale, rad * scale

    wheel = color_wheel().astype(np.float64)
    n = len(wheel)
    angle = np.arctan2(-v, -u) / np.pi                  # −1..1; +x (right) lands on red
    fk = (angle + 1) / 2 * (n - 1)
    k0 = np.floor(fk).astype(np.int64) % n
    k1 = (k0 + 1) % n
    frac = (fk - np.floor(fk))[..., None]
    col = (1 - frac) * wheel[k0] + frac * wheel[k1]
    inside = (rad <= 1)[..., None]
    col = np.where(inside, 1 - rad[..., None] * (1 - col), col * 0.75)
    col[~finite] = 0.0
    return np.clip(col, 0, 1).astype(np.float32)


def flow_wheel(size: int = 256, background: float = 1.0) -> np.ndarray:
    """Legend: size×size×3 float32 image of the colour coding. The pixel at offset (dx, dy)
    from the centre shows the colour of the flow (dx, dy); the disc's rim is full saturation.
    Outside the disc is ``background``."""
    c = (size - 1) / 2.0
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    flow = np.stack([xs - c, ys - c], axis=-1)
    img = flow_to_color(flow, max_flow=max(c, 1e-6))
    img[np.hypot(xs - c, ys - c) > c] = background
    return img


# ---------------------------------------------------------------- Middlebury .flo files

FLO_MAGIC = 202021.25          # float32 whose little-endian bytes spell "PIEH"


def read_flo(path) -> np.ndarray:
    """Read a Middlebury ``.flo`` file → H×W×2 float32 (u, v)."""
    with open(path, "rb") as fh:
        magic = np.fromfile(fh, "<f4", count=1)
        if magic.size != 1 or magic[0] != np.float32(FLO_MAGIC):
            raise ValueError(f"{path}: not a .flo file (bad magic number)")
        dims = np.fromfile(fh, "<i4", count=2)
        if dims.size != 2 or (dims < 0).any():
            raise ValueError(f"{path}: truncated .flo header")
        w, h = int(dims[0]), int(dims[1])
        data = np.fromfile(fh, "<f4", count=2 * w * h)
    if data.size != 2 * w * h:
        raise ValueError(f"{path}: .flo file holds {data.size} values, {w}×{h}×2 expected")
    return data.reshape(h, w, 2).astype(np.float32)


def write_flo(path, flow: np.ndarray) -> Path:
    """Write H×W×2 flow as a Middlebury ``.flo`` file (little-endian), atomically."""
    f = np.asarray(flow, dtype=np.float32)
    if f.ndim != 3 or f.shape[-1] != 2:
        raise ValueError(f"expected an H×W×2 flow, got shape {f.shape}")
    path = Path(path)
    with atomic_write(path, "wb") as fh:
        np.array([FLO_MAGIC], "<f4").tofile(fh)
        np.array([f.shape[1], f.shape[0]], "<i4").tofile(fh)
        f.astype("<f4").tofile(fh)
    return path

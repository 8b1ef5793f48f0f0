"""Small utility nodes a graph needs between the big ones: blur, grade, merge, conversions."""
from __future__ import annotations

import cv2
import numpy as np

from .. import colorspace as cs
from ..core import Choice, Context, Float, Image, In, LineArt, NodeType, Out
from ..core.types import as_image


class Blur(NodeType):
    """Gaussian blur of an image (per channel)."""
    id, version, category = "celgraph.Blur", 1, "Filter"
    inputs = [In("image", Image)]
    outputs = [Out("image", Image)]
    params = [Float("size", 2.0, min=0.0, max=200.0, help="Gaussian sigma in pixels")]

    def compute(self, ctx: Context, image):
        if ctx.params.size == 0:
            return {"image": image}
        out = cv2.GaussianBlur(np.ascontiguousarray(image), (0, 0), ctx.params.size,
                               borderType=cv2.BORDER_REFLECT)
        return {"image": out.reshape(image.shape)}


class Grade(NodeType):
    """out = (in · gain + offset) ^ (1/gamma), on colour channels; alpha is kept."""
    id, version, category = "celgraph.Grade", 1, "Color"
    inputs = [In("image", Image)]
    outputs = [Out("image", Image)]
    params = [Float("gain", 1.0, min=0.0, max=100.0, help="multiplier"),
              Float("offset", 0.0, min=-10.0, max=10.0, help="added after the gain"),
              Float("gamma", 1.0, min=0.01, max=10.0, help="gamma applied last")]

    def compute(self, ctx: Context, image):
        p = ctx.params
        out = np.array(image, dtype=np.float32)
        c = out.shape[2] if out.shape[2] in (1, 3) else 3 if out.shape[2] == 4 else out.shape[2]
        rgb = out[:, :, :c] * p.gain + p.offset
        if p.gamma != 1.0:
            rgb = np.sign(rgb) * np.abs(rgb) ** (1.0 / p.gamma)
        out[:, :, :c] = rgb
        return {"image": out}


class Merge(NodeType):
    """Composite A over B (premultiplied 'over'), or plus / multiply."""
    id, version, category = "celgraph.Merge", 1, "Merge"
    inputs = [In("a", Image, help="foreground"), In("b", Image, help="background")]
    outputs = [Out("image", Image)]
    params = [Choice("operation", "over", choices=("over", "plus", "multiply"), help="how A meets B")]

    def compute(self, ctx: Context, a, b):
        if a.shape[:2] != b.shape[:2]:
            raise ValueError(f"A is {a.shape[1]}×{a.shape[0]} but B is {b.shape[1]}×{b.shape[0]}")
        a4, b4 = _rgba(a), _rgba(b)
        op = ctx.params.operation
        if op == "over":
            out = a4 + b4 * (1.0 - a4[:, :, 3:4])
        elif op == "plus":
            out = a4 + b4
        else:
            out = a4 * b4
        return {"image": out.astype(np.float32)}


class ToLineArt(NodeType):
    """Image → LineArt: ink = 1 − luminance, so dark strokes on white paper become ink 1.

    An image with alpha is first laid over white paper, so transparent pixels are paper, not ink.
    Luminance is taken on display-referred (sRGB) values, as a drawing is seen.
    """
    id, version, category = "celgraph.ToLineArt", 3, "Lines"
    color_space = cs.DISPLAY
    inputs = [In("image", Image)]
    outputs = [Out("lines", LineArt)]
    params = [Float("black", 0.0, min=0.0, max=1.0, help="luminance at or below this is full ink"),
              Float("white", 1.0, min=0.0, max=1.0, help="luminance at or above this is paper")]

    def compute(self, ctx: Context, image):
        img = as_image(cs.node_in(self, image))
        luma = img[:, :, 0] if img.shape[2] < 3 else img[:, :, :3] @ np.float32([0.2126, 0.7152, 0.0722])
        if img.shape[2] in (2, 4):                  # premultiplied (grey or RGB) + alpha: over white paper
            luma = luma + (1.0 - img[:, :, -1])
        lo, hi = ctx.params.black, max(ctx.params.white, ctx.params.black + 1e-6)
        return {"lines": np.clip((hi - luma) / (hi - lo), 0.0, 1.0).astype(np.float32)}


class Ink(NodeType):
    """LineArt → Image: the drawing as people expect to see it, black ink on white paper.

    Write writes what it gets, so a LineArt goes to an EXR as its coverage (one channel, a matte a
    compositor can use); put Ink before a Write to an 8- or 16-bit PNG/TIFF/JPEG, or before a host's
    Read, to get the drawing. paper "white": RGB = 1 − coverage, alpha 1; "none": premultiplied
    black ink, alpha = coverage, to lay over a plate.
    """
    id, version, category = "celgraph.Ink", 1, "Lines"
    color_space = cs.DISPLAY                       # the drawing's greys are display values
    inputs = [In("lines", LineArt)]
    outputs = [Out("image", Image, "RGBA drawing")]
    params = [Choice("paper", "white", choices=("white", "none"),
                     help="white: opaque drawing on white paper; none: ink only, alpha = coverage")]

    def compute(self, ctx: Context, lines):
        ink = np.clip(np.asarray(lines, np.float32).reshape(lines.shape[:2]), 0.0, 1.0)
        out = np.empty(ink.shape + (4,), np.float32)
        if ctx.params.paper == "white":
            out[:, :, :3] = (1.0 - ink)[:, :, None]
            out[:, :, 3] = 1.0
        else:
            out[:, :, :3] = 0.0
            out[:, :, 3] = ink
        return {"image": cs.node_out(self, out)}


def _rgba(x: np.ndarray) -> np.ndarray:
    x = as_image(x)
    if x.shape[2] == 4:
        return x
    if x.shape[2] == 2:                             # grey + alpha (e.g. a grey PNG with alpha)
        return np.concatenate([np.repeat(x[:, :, :1], 3, axis=2), x[:, :, 1:]], axis=2)
    if x.shape[2] == 1:
        x = np.repeat(x, 3, axis=2)
    return np.concatenate([x[:, :, :3], np.ones_like(x[:, :, :1])], axis=2)

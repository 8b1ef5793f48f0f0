"""Reformat: resize to a size or by a scale, and back to a plate's size.

The way a compositor runs decomposition at 456×256 and works at 1920×1080: Reformat the plate down,
run the heavy nodes, then Reformat their results with mode "reference" (the plate plugged into
`reference`) to bring them back to the plate's size exactly.

One node type per port type, so each result keeps its type: Reformat (Image, Mask/LineArt accepted
as one-channel images), ReformatLines (LineArt), ReformatLabels (Labels: nearest, ids stay
integers), ReformatFlow (Flow: vectors scaled with the pixels). Filters through OpenCV: area
(averages the source pixels each output pixel covers: the right filter to shrink), lanczos
(Lanczos-4, sharp when enlarging; it rings a little, so LineArt is clipped to 0..1), linear,
nearest; auto picks area to shrink and lanczos to enlarge.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..core import (Choice, CheckContext, Context, Float, Flow, Image, In, Int, Issue, Labels, LineArt, NodeType,
                      Out)

FILTERS = {"area": cv2.INTER_AREA, "lanczos": cv2.INTER_LANCZOS4, "linear": cv2.INTER_LINEAR,
           "nearest": cv2.INTER_NEAREST}
MAX_SIZE = 32768


def output_size(mode: str, width: int, height: int, scale: float, size: tuple[int, int],
                reference: tuple[int, int] | None = None) -> tuple[int, int]:
    """(width, height) of the result for an input of `size` (w, h). A 0 width or height follows
    from the other, keeping the input's aspect."""
    w, h = size
    if mode == "reference":
        if reference is None:
            raise ValueError("mode 'reference' needs the reference input connected (e.g. the plate)")
        return reference
    if mode == "scale":
        return max(1, round(w * scale)), max(1, round(h * scale))
    if width and height:
        return width, height
    if width:
        return width, max(1, round(width * h / w))
    return max(1, round(height * w / h)), height


def resample(array: np.ndarray, size: tuple[int, int], method: str) -> np.ndarray:
    """H×W or H×W×C float/int array resized to size = (w, h) with one of FILTERS (or auto)."""
    h, w = array.shape[:2]
    if (w, h) == tuple(size):
        return np.array(array)
    if method == "auto":
        method = "area" if size[0] <= w and size[1] <= h else "lanczos"
    if method == "nearest":
        return nearest(array, size)
    src = np.ascontiguousarray(array)
    if src.ndim == 3 and src.shape[2] > 4 and method == "lanczos":      # OpenCV: Lanczos up to 4 channels
        return np.concatenate([resample(src[:, :, i:i + 4], size, method) for i in range(0, src.shape[2], 4)],
                              axis=2)
    out = cv2.resize(src, tuple(int(s) for s in size), interpolation=FILTERS[method])
    return out.reshape((size[1], size[0]) + array.shape[2:])


class Reformat(NodeType):
    """Resize an image to a size, by a scale, or to the reference input's size (the inverse: back
    to the plate). Area filter to shrink, Lanczos to enlarge (auto), or as chosen.

    A 0 width or height follows from the other, keeping the pixel aspect. Both set: exactly that
    size (1920×1080 → 456×256 stretches x by 0.2 %; mode reference undoes it exactly).
    """
    id, version, category = "celgraph.Reformat", 1, "Transform"
    inputs = [In("image", Image),
              In("reference", Image, optional=True, help="mode reference: the result gets this image's size")]
    outputs = [Out("image", Image)]
    params = [
        Choice("mode", "scale", choices=("size", "scale", "reference"),
               help="size: width × height; scale: × scale; reference: the reference input's size"),
        Int("width", 0, min=0, max=MAX_SIZE, help="mode size: output width (0: from height, keeping the aspect)"),
        Int("height", 0, min=0, max=MAX_SIZE, help="mode size: output height (0: from width, keeping the aspect)"),
        Float("scale", 0.5, min=1e-3, max=64.0, help="mode scale: output size = input size × scale"),
        Choice("filter", "auto", choices=("auto", "area", "lanczos", "linear", "nearest"),
               help="auto: area when shrinking, lanczos when enlarging"),
    ]

    def check(self, ctx: CheckContext) -> list[Issue]:
        params = ctx.params
        if params["mode"] == "size" and not params["width"] and not params["height"]:
            return [Issue("param_out_of_range", "mode size needs a width or a height (or both)", ctx.node, "width")]
        return []

    def _size(self, ctx: Context, value: np.ndarray, reference) -> tuple[int, int]:
        p = ctx.params
        ref = None if reference is None else (reference.shape[1], reference.shape[0])
        try:
            return output_size(p.mode, p.width, p.height, p.scale, (value.shape[1], value.shape[0]), ref)
        except ValueError as e:
            raise ValueError(f"{ctx.node} ({self.id}) frame {ctx.frame}: {e}") from None

    def _filter(self, ctx: Context) -> str:
        return ctx.params.filter

    def _convert(self, value: np.ndarray, out: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        return out

    def _run(self, ctx: Context, value: np.ndarray, reference) -> dict:
        size = self._size(ctx, value, reference)
        out = resample(value, size, self._filter(ctx))
        return {self.outputs[0].name: self._convert(value, out, size)}

    def compute(self, ctx: Context, image, reference=None):
        return self._run(ctx, image, reference)


class ReformatLines(Reformat):
    """Reformat for LineArt (ink coverage stays in 0..1; Lanczos ringing is clipped)."""
    id = "celgraph.ReformatLines"
    inputs = [In("lines", LineArt),
              In("reference", Image, optional=True, help="mode reference: the result gets this image's size")]
    outputs = [Out("lines", LineArt)]

    def _convert(self, value, out, size):
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def compute(self, ctx: Context, lines, reference=None):
        return self._run(ctx, lines, reference)


class ReformatLabels(Reformat):
    """Reformat for Labels: always nearest, so ids stay the integers they were (no blends)."""
    id = "celgraph.ReformatLabels"
    inputs = [In("labels", Labels),
              In("reference", Image, optional=True, help="mode reference: the result gets this image's size")]
    outputs = [Out("labels", Labels)]
    params = [p for p in Reformat.params if p.name != "filter"]

    def compute(self, ctx: Context, labels, reference=None):
        return {"labels": nearest(labels, self._size(ctx, labels, reference)).astype(np.int32)}


class ReformatFlow(Reformat):
    """Reformat for Flow: the vectors are scaled with the pixels (x by the width ratio, y by the height's)."""
    id = "celgraph.ReformatFlow"
    inputs = [In("flow", Flow),
              In("reference", Image, optional=True, help="mode reference: the result gets this image's size")]
    outputs = [Out("flow", Flow)]

    def _convert(self, value, out, size):
        sx, sy = size[0] / value.shape[1], size[1] / value.shape[0]
        return (out * np.float32([sx, sy])).astype(np.float32)

    def compute(self, ctx: Context, flow, reference=None):
        return self._run(ctx, flow, reference)


def nearest(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest neighbour by pixel centres, by indexing: every output value is an input value,
    whatever its dtype (no float round trip for large ids)."""
    h, w = labels.shape[:2]
    ys = np.minimum((np.arange(size[1]) + 0.5) * h / size[1], h - 1).astype(np.int64)
    xs = np.minimum((np.arange(size[0]) + 0.5) * w / size[0], w - 1).astype(np.int64)
    return labels[ys[:, None], xs[None, :]]

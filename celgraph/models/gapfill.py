"""GapFill networks: the FillLineGaps ``LightUNet`` (re-implemented) and celgraph's ``GapUNet``.

Both are small fully convolutional U-Nets whose stages start with depthwise-separable convs
(``/shared/reference/lines_and_color.md`` §1.2, §9.2). Shapes: input ``B×C×H×W`` float32
(channel 0: ink coverage 0..1; ``GapUNet`` adds channel 1: the endpoint map of
:func:`celgraph.models.autoclose.endpoint_map`), output ``B×1×H×W``.

* :func:`light_unet` — FillLineGaps ``LightUNet(chan_in=1, chan_out=1, long_skip=1, nf=32)``,
  layer for layer: **429,067 parameters** (the reference's count); receptive field 52×52 px by
  :func:`receptive_field` (the reference reports 49 px; the 4×4 transposed convs make it slightly
  asymmetric). With ``long_skip`` the output is network + input
  (the reference's residual image output); ``light_unet(long_skip=False)`` predicts logits of the
  ink to add, like ours, and is what we train as the "lite" baseline.
* :func:`gap_unet` — ours, **163,809 parameters** (< 500k; 38 % of LightUNet): four levels
  (1, ½, ¼, ⅛) of 16-32-96-192 channels after a plain 3×3 stem, every later conv depthwise-separable
  (3×3 depthwise + 1×1 pointwise + BN + ReLU), two per level, one more at ⅛ as a bottleneck
  (``GapUNet(dilations=(2,))`` would dilate it: RF 122 px), nearest ×2 upsampling +
  concatenated skips in the decoder. Receptive field **106×106 px** (LightUNet: 52; a 12-px gap
  plus ~20 px of stroke on each side needs ≈ 60). The width sits at the coarse levels, where it
  is cheap: on CPU it runs a 256² tile ≈ 3× faster than LightUNet. 2 input channels (ink, endpoint
  map). Predicts the **logits of the ink to add**; the caller keeps the input ink (OR), so the
  network can never erase a line.

Full frames: :func:`predict_logits` pads the frame with paper by a margin of at least half the
receptive field and either runs it whole or in overlapping tiles laid on a grid aligned to the
network's stride, blended with feathered (linear ramp) weights over the overlap. Because every
tile keeps ``margin`` px of context that is discarded, tiled and whole-frame logits agree to float
rounding (tests/test_gapfill.py). :func:`close_gaps` runs only the tiles near a stroke end (the
others read −inf: nothing is added there), which is what makes CPU inference of a mostly empty
1080p frame cheap.

Weights: :func:`save_weights` / :func:`load_weights` (safetensors, with the architecture in the
metadata); :func:`build` from an architecture name.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .safetensors_io import save_state

__all__ = ["LightUNet", "GapUNet", "light_unet", "gap_unet", "build", "count_parameters", "receptive_field",
           "predict_logits", "close_gaps", "context_margin", "tile_grid", "save_weights", "load_weights", "ARCHS",
           "fuse_for_inference", "reach_boxes", "stroke_width_ink"]


# ---------------------------------------------------------------- FillLineGaps LightUNet

class DWConv(nn.Module):
    """FillLineGaps ``dw_conv``: depthwise 3×3 (bias) → pointwise 1×1 (bias) → ReLU6."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin)
        self.pointwise = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        return F.relu6(self.pointwise(self.depthwise(x)))


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(DWConv(cin, cout), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class LightUNet(nn.Module):
    """FillLineGaps ``LightUNet`` (``codebase/lite_unet/model.py``): 2 poolings, nf-2nf-4nf.

    ``B×cin×H×W → B×cout×H×W``; H and W must be multiples of 4 (:attr:`stride`)."""
    stride = 4

    def __init__(self, cin: int = 1, cout: int = 1, long_skip: bool = True, nf: int = 32):
        super().__init__()
        self.long_skip = long_skip
        self.enc1, self.enc2, self.enc3 = _stage(cin, nf), _stage(nf, 2 * nf), _stage(2 * nf, 4 * nf)
        self.up2 = nn.ConvTranspose2d(4 * nf, 2 * nf, 4, stride=2, padding=1, bias=False)
        self.dec2 = _stage(4 * nf, 2 * nf)
        self.up1 = nn.ConvTranspose2d(2 * nf, nf, 4, stride=2, padding=1, bias=False)
        self.dec1 = _stage(2 * nf, nf)
        self.out = nn.Conv2d(nf, cout, 3, padding=1)
        for m in self.modules():        # the reference's init: normal(0, sqrt(2 / (k·k·C_out))), zero bias
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                k = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / k))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        e3 = self.enc3(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([F.relu(self.up2(e3)), e2], 1))
        d1 = self.dec1(torch.cat([F.relu(self.up1(d2)), e1], 1))
        y = self.out(d1)
        return y + x[:, :y.shape[1]] if self.long_skip else y


# ---------------------------------------------------------------- ours

class SepConv(nn.Sequential):
    """Depthwise 3×3 (dilation d) → pointwise 1×1 → BN → ReLU."""

    def __init__(self, cin: int, cout: int, dilation: int = 1):
        super().__init__(nn.Conv2d(cin, cin, 3, padding=dilation, dilation=dilation, groups=cin, bias=False),
                         nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class GapUNet(nn.Module):
    """celgraph's gap-closing U-Net: ``levels`` levels, a dilated bottleneck, logits of ink to add.

    ``B×cin×H×W → B×1×H×W``; H and W must be multiples of :attr:`stride` (2^(levels−1))."""

    def __init__(self, cin: int = 2, widths: tuple[int, ...] = (16, 32, 96, 192), dilations: tuple[int, ...] = (1,)):
        super().__init__()
        self.cin, self.widths, self.dilations = cin, tuple(widths), tuple(dilations)
        self.stride = 2 ** (len(widths) - 1)
        self.stem = nn.Sequential(nn.Conv2d(cin, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]),
                                  nn.ReLU(inplace=True))
        self.enc = nn.ModuleList()
        c = widths[0]
        for i, w in enumerate(widths):
            self.enc.append(nn.Sequential(SepConv(c, w), SepConv(w, w)))
            c = w
        self.bottleneck = nn.Sequential(*[SepConv(c, c, d) for d in dilations])
        self.dec = nn.ModuleList()
        for i in range(len(widths) - 2, -1, -1):
            self.dec.append(nn.Sequential(SepConv(c + widths[i], widths[i]), SepConv(widths[i], widths[i])))
            c = widths[i]
        self.head = nn.Conv2d(c, 1, 1)
        nn.init.constant_(self.head.bias, -4.0)     # start near "add nothing" (gaps are rare)

    def forward(self, x):
        h = self.stem(x)
        skips = []
        for i, block in enumerate(self.enc):
            if i:
                h = F.max_pool2d(h, 2)
            h = block(h)
            skips.append(h)
        h = self.bottleneck(h)
        for block, skip in zip(self.dec, reversed(skips[:-1])):
            h = block(torch.cat([F.interpolate(h, scale_factor=2.0, mode="nearest"), skip], 1))
        return self.head(h)


# ---------------------------------------------------------------- factories

def light_unet(long_skip: bool = True, nf: int = 32) -> LightUNet:
    """FillLineGaps LightUNet (nf = 32: 429,067 parameters; RF 52 px by our measurement, 49 px in
    the reference). ``long_skip=False``: logits of the ink to add (our "lite" baseline)."""
    m = LightUNet(1, 1, long_skip=long_skip, nf=nf)
    m.arch = ("light_unet_ref" if long_skip else "lite") if nf == 32 else ""
    return m


def gap_unet() -> GapUNet:
    """celgraph GapUNet (163,809 parameters, RF 106 px, inputs: ink + endpoint map)."""
    m = GapUNet(2, (16, 32, 96, 192), (1,))
    m.arch = "gap_unet"
    return m


# name → (factory kwargs, number of input channels); the name is stored in the weights' metadata
ARCHS: dict[str, dict] = {
    "lite": {"factory": "light_unet", "kwargs": {"long_skip": False, "nf": 32}},
    "light_unet_ref": {"factory": "light_unet", "kwargs": {"long_skip": True, "nf": 32}},
    "gap_unet": {"factory": "gap_unet", "kwargs": {}},
}


def build(arch: str) -> nn.Module:
    """A fresh network by architecture name (see :data:`ARCHS`)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown GapFill architecture {arch!r}; known: {sorted(ARCHS)}")
    a = ARCHS[arch]
    model = {"light_unet": light_unet, "gap_unet": gap_unet}[a["factory"]](**a["kwargs"])
    model.arch = arch
    return model


def in_channels(model: nn.Module) -> int:
    return model.cin if isinstance(model, GapUNet) else 1


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def receptive_field(model: nn.Module, size: int = 512) -> int:
    """Theoretical receptive field (px, one side of the square) found by back-propagating from one
    output pixel of a copy with small positive weights and identity BN statistics, so that no
    activation saturates or cancels and every path counts."""
    import copy
    m = copy.deepcopy(model).double().eval()       # float32 underflows along the longest paths
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.rand_like(p) * 0.01 + 0.01)      # small positive weights: no cancellation,
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.zero_()
                mod.running_var.fill_(1.0)
    x = torch.rand(1, in_channels(model), size, size, dtype=torch.float64, requires_grad=True)
    y = m(x)
    y[0, 0, size // 2, size // 2].backward()
    g = x.grad[0].abs().sum(0) > 0
    ys, xs = torch.nonzero(g, as_tuple=True)
    return int(max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1))


def fuse_for_inference(model: nn.Module) -> nn.Module:
    """A copy in eval mode with every ``Conv2d → BatchNorm2d`` pair of an ``nn.Sequential`` folded
    into one conv (torch's ``fuse_conv_bn_eval``): the same function to float rounding, one pass
    over the activations fewer per layer — on a CPU that is about a third of GapUNet's time."""
    import copy
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    m = copy.deepcopy(model).eval()
    for seq in [mod for mod in m.modules() if isinstance(mod, nn.Sequential)]:
        for i in range(1, len(seq)):
            if isinstance(seq[i], nn.BatchNorm2d) and isinstance(seq[i - 1], nn.Conv2d):
                seq[i - 1] = fuse_conv_bn_eval(seq[i - 1], seq[i])
                seq[i] = nn.Identity()
    for attr in ("arch", "stride", "cin", "widths", "dilations"):
        if hasattr(model, attr):
            setattr(m, attr, getattr(model, attr))
    return m


# ---------------------------------------------------------------- full-frame inference

def tile_grid(length: int, core: int, overlap: int, align: int) -> list[int]:
    """Start offsets of tile cores of ``core`` px covering [0, length), consecutive cores
    overlapping by at least ``overlap`` px, every start a multiple of ``align`` (``length`` and
    ``core`` are multiples of ``align``)."""
    if length <= core:
        return [0]
    step = max((core - overlap) // align * align, align)
    starts = list(range(0, length - core, step))
    return starts + [length - core]


def _ramp(n: int, core_len: int, lo_edge: bool, hi_edge: bool, feather: int) -> np.ndarray:
    """1-D feather weights over a tile core: linear ramps of ``feather`` px at interior edges."""
    w = np.ones(core_len, np.float32)
    f = min(feather, core_len // 2)
    if f > 0:
        r = (np.arange(f, dtype=np.float32) + 0.5) / f
        if not lo_edge:
            w[:f] = np.minimum(w[:f], r)
        if not hi_edge:
            w[-f:] = np.minimum(w[-f:], r[::-1])
    return w


def context_margin(model: nn.Module) -> int:
    """Context (px) a tile needs on each side for exact results: half the receptive field,
    rounded up to the network's stride."""
    rf = {"GapUNet": 106, "LightUNet": 52}.get(type(model).__name__)
    if rf is None or (isinstance(model, GapUNet) and (model.widths, model.dilations) != ((16, 32, 96, 192), (1,))):
        rf = receptive_field(model, 384)
    s = getattr(model, "stride", 4)
    return int(math.ceil(rf / 2 / s) * s)


def _paper_padded(x: np.ndarray, stride: int, margin: int) -> tuple[np.ndarray, int, int]:
    """``x`` (C×H×W) grown to multiples of ``stride`` (Hp×Wp) plus ``margin`` px of paper (zeros)
    on every side; returns (padded, Hp, Wp)."""
    C, H, W = x.shape
    Hp, Wp = int(math.ceil(H / stride) * stride), int(math.ceil(W / stride) * stride)
    pad = np.zeros((C, Hp + 2 * margin, Wp + 2 * margin), np.float32)
    pad[:, margin:margin + H, margin:margin + W] = x
    return pad, Hp, Wp


def predict_logits(model: nn.Module, x: np.ndarray, tile: int | None = 64, margin: int | None = None,
                   feather: int | None = None, device: str = "cpu", half: bool = False,
                   need: np.ndarray | None = None, batch: int = 8,
                   progress: Callable[[int, int], None] | None = None, net: Callable | None = None) -> np.ndarray:
    """Logits (float32 H×W) of the ink to add, for an input stack ``x`` (C×H×W float32).

    The frame is padded with paper (zeros) by ``margin`` px (default :func:`context_margin`: half
    the receptive field) and run either whole (``tile`` None or 0) or as tiles: cores of ``tile``
    px (rounded to the network's stride) on a stride-aligned grid, each run with ``margin`` px of
    context that is then discarded, consecutive cores overlapping by ``feather`` px and blended
    with linear-ramp weights. With the default margin the tiled logits equal the whole-frame ones
    to float rounding, so the default ``feather`` is 0 then (plain stitching is already seamless)
    and 16 px with a smaller, user-chosen margin. need: optional bool H×W — tiles whose core holds no True pixel are not run
    and read −inf. half: fp16 autocast (CUDA only). batch: tiles per forward pass. net: what runs
    the network in place of ``model`` (an ONNX Runtime or TensorRT net of :mod:`.accel`; ``model``
    still gives the stride and context)."""
    C, H, W = x.shape
    s = getattr(model, "stride", 4)
    exact = context_margin(model)
    m = exact if margin is None else int(math.ceil(margin / s) * s)
    if feather is None:
        feather = 0 if m >= exact else 16
    pad, Hp, Wp = _paper_padded(x, s, m)
    dev = torch.device(device)
    use_half = bool(half and dev.type == "cuda" and net is None)
    cl = dev.type == "cpu" and net is None
    forward = model if net is None else net

    def run(arr: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(arr)).to(dev)
        if cl:
            t = t.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if use_half:
                with torch.autocast("cuda", dtype=torch.float16):
                    y = forward(t)
            else:
                y = forward(t)
        return y[:, 0].float().cpu().numpy()

    if not tile or (tile >= Hp and tile >= Wp):
        if need is not None and not need.any():
            return np.full((H, W), -np.inf, np.float32)
        return run(pad[None])[0, m:m + H, m:m + W]
    core = max(int(math.ceil(tile / s) * s), s)
    ch, cw = min(core, Hp), min(core, Wp)
    f = min(feather, ch // 2, cw // 2)
    ys, xs = tile_grid(Hp, ch, f, s), tile_grid(Wp, cw, f, s)
    acc = np.zeros((Hp, Wp), np.float32)
    wsum = np.zeros((Hp, Wp), np.float32)
    jobs = [(y0, x0) for y0 in ys for x0 in xs
            if need is None or need[y0:min(y0 + ch, H), x0:min(x0 + cw, W)].any()]
    for k in range(0, len(jobs), batch):
        part = jobs[k:k + batch]
        wins = np.stack([pad[:, y0:y0 + ch + 2 * m, x0:x0 + cw + 2 * m] for y0, x0 in part])
        ys_out = run(wins)[:, m:m + ch, m:m + cw]
        for (y0, x0), y in zip(part, ys_out):
            w = _ramp(Hp, ch, y0 == 0, y0 + ch >= Hp, f)[:, None] * _ramp(Wp, cw, x0 == 0, x0 + cw >= Wp, f)[None, :]
            acc[y0:y0 + ch, x0:x0 + cw] += y * w
            wsum[y0:y0 + ch, x0:x0 + cw] += w
        if progress is not None:
            progress(min(k + batch, len(jobs)), len(jobs))
    out = np.full((Hp, Wp), -np.inf, np.float32)
    ok = wsum > 0
    out[ok] = acc[ok] / wsum[ok]
    return out[:H, :W]


# Context of the windows mode, px. The exact margin (half the theoretical receptive field, 56 px for
# GapUNet) costs 1.4× the time; past ~32 px the trained network's logits hardly move: on the
# benchmark's 1080p pages the added ink differs from a whole-frame pass by 0-1 px of ~200 per frame.
WINDOW_MARGIN = 32


def reach_boxes(need: np.ndarray, stride: int) -> list[tuple[int, int, int, int]]:
    """Boxes ``(y0, y1, x0, x1)`` covering the True pixels of ``need``: one per 8-connected
    component, corners on the ``stride`` grid; a box inside another is dropped."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(need.astype(np.uint8), connectivity=8)
    boxes = []
    for x, y, w, h, _ in stats[1:]:
        y0, x0 = y // stride * stride, x // stride * stride
        y1, x1 = -(-(y + h) // stride) * stride, -(-(x + w) // stride) * stride
        boxes.append((int(y0), int(y1), int(x0), int(x1)))
    boxes.sort(key=lambda b: (b[1] - b[0]) * (b[3] - b[2]), reverse=True)
    kept: list[tuple[int, int, int, int]] = []
    for b in boxes:
        if not any(k[0] <= b[0] and b[1] <= k[1] and k[2] <= b[2] and b[3] <= k[3] for k in kept):
            kept.append(b)
    return kept


def predict_in_boxes(model: nn.Module, x: np.ndarray, need: np.ndarray, margin: int | None = None,
                     device: str = "cpu", half: bool = False, batch: int = 4,
                     progress: Callable[[int, int], None] | None = None, net: Callable | None = None) -> np.ndarray:
    """Logits (float32 H×W) computed only over :func:`reach_boxes` of ``need`` (−inf elsewhere).

    Each box is run with the exact context margin (half the receptive field) cut from the
    paper-padded frame, so inside a box the logits equal the whole-frame ones to float rounding.
    Stroke ends are sparse on a page, so this touches a small fraction of a 1080p frame — unlike a
    fixed tile grid, whose every tile pays the full margin around a small core. ``margin``: context
    px (rounded up to the stride; default the exact one), smaller is faster and approximate. ``net``:
    as in :func:`predict_logits`."""
    C, H, W = x.shape
    s = getattr(model, "stride", 4)
    m = context_margin(model) if margin is None else int(math.ceil(margin / s) * s)
    pad, Hp, Wp = _paper_padded(x, s, m)
    out = np.full((Hp, Wp), -np.inf, np.float32)
    boxes = reach_boxes(need, s)
    by_shape: dict[tuple[int, int], list[tuple[int, int, int, int]]] = {}
    for b in boxes:                      # windows of one shape run as a batch (most are alike)
        by_shape.setdefault((b[1] - b[0], b[3] - b[2]), []).append(b)
    dev = torch.device(device)
    use_half = bool(half and dev.type == "cuda" and net is None)
    forward = model if net is None else net
    done = 0
    for (h, w), group in by_shape.items():
        for k in range(0, len(group), batch):
            part = group[k:k + batch]
            wins = np.stack([pad[:, y0:y1 + 2 * m, x0:x1 + 2 * m] for y0, y1, x0, x1 in part])
            t = torch.from_numpy(wins).to(dev)
            if dev.type == "cpu" and net is None:
                t = t.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=use_half):
                y = forward(t)[:, 0].float().cpu().numpy()
            for (y0, y1, x0, x1), yi in zip(part, y):
                out[y0:y1, x0:x1] = yi[m:m + h, m:m + w]
            done += len(part)
            if progress is not None:
                progress(done, len(boxes))
    return out[:H, :W]


def close_gaps(model: nn.Module, lines: np.ndarray, max_gap: float = 12.0, threshold: float = 0.5,
               confidence: float = 0.5, inference: str = "windows", tile: int = 64, device: str = "cpu",
               half: bool = False, passes: int = 2, separating: bool = False, match_width: bool = True,
               progress: Callable[[int, int], None] | None = None,
               net: Callable | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Close the gaps of line art (H×W coverage 0..1) with a GapFill network.

    Coverage ≥ ``threshold`` is ink. The stroke ends of the ink (skeleton endpoints) give the
    endpoint-map input and the places worth looking at: the network sees only what lies within
    ``max_gap`` + the line width of a stroke end, and ink is added only there, where its
    probability is ≥ ``confidence`` and the input is paper. ``inference``: ``windows`` (default)
    runs one window per cluster of stroke ends (:func:`predict_in_boxes`), ``tiles`` the
    ``tile``-px grid tiles that hold a stroke end, ``whole`` the whole frame in one pass (a GPU);
    ``tiles`` and ``whole`` give the same logits to float rounding; ``windows`` keeps
    :data:`WINDOW_MARGIN` px of context, a hair short of exact, for speed. ``passes``: each pass
    after the first runs the network again around the tips of the ink added so far, with that ink
    in its input (an extension that stopped a pixel short of a line gets finished). ``separating``:
    keep only added pieces that separate two flood-fill regions (Tahoma2D's rule,
    :func:`celgraph.models.autoclose.keep_separating`). ``match_width``: redraw the added ink at the
    width of the strokes it continues (:func:`stroke_width_ink`). Returns ``(closed, added)``: the input with
    the added ink at coverage 1, and the bool mask of the added ink."""
    from .autoclose import endpoint_map, find_endpoints
    if inference not in ("windows", "tiles", "whole"):
        raise ValueError(f"inference must be windows, tiles or whole, not {inference!r}")
    lines = np.asarray(lines, np.float32)
    ink = lines >= threshold
    H, W = ink.shape
    cut = math.log(confidence / (1.0 - confidence))
    added = np.zeros((H, W), bool)
    current = lines
    ink_eps = None
    for k in range(max(1, passes)):
        eps = find_endpoints(ink | added)
        if k == 0:
            ink_eps = eps                      # nothing added yet: the input's own stroke ends
        if k:                      # later passes: only the tips of the ink added so far
            near = cv2.dilate(added.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
            eps = [e for e in eps if near[e.y, e.x]]
        reach = np.zeros((H, W), np.uint8)
        for e in eps:
            cv2.circle(reach, (e.x, e.y), int(math.ceil(max_gap + e.width / 2 + 3)), 1, -1)
        reach = reach.astype(bool)
        if not reach.any():
            break
        x = np.stack([current, endpoint_map((H, W), eps)])[:in_channels(model)]
        if inference == "windows":
            logits = predict_in_boxes(model, x, reach, margin=WINDOW_MARGIN, device=device, half=half,
                                      progress=progress, net=net)
        else:
            logits = predict_logits(model, x, tile=tile if inference == "tiles" else None, device=device,
                                    half=half, need=reach, progress=progress, net=net)
        new = (logits >= cut) & reach & ~ink & ~added
        if not new.any():
            break
        added |= new
        current = np.where(added, np.float32(1.0), lines).astype(np.float32)
    if separating:
        from .autoclose import keep_separating
        added = keep_separating(ink, added)
    if match_width and added.any():
        added = stroke_width_ink(ink, added, ink_eps)
    closed = np.where(added, np.float32(1.0), lines).astype(np.float32)
    return closed, added


def stroke_width_ink(ink: np.ndarray, added: np.ndarray, eps: list | None = None) -> np.ndarray:
    """Redraw each piece of added ink at the width of the strokes it continues: the piece's
    skeleton, widened to the median width of the input's stroke ends it touches (1-px strokes are
    continued as 8-connected 1-px lines). A network trained on thick synthetic strokes paints a
    blob 2-4× wider than a real drawing's 1-px stroke; this keeps where it closes, not how wide.
    ``eps``: the input's stroke ends when the caller already has them."""
    from .autoclose import find_endpoints, skeletonize
    ink, added = np.asarray(ink, bool), np.asarray(added, bool)
    eps = find_endpoints(ink) if eps is None else eps
    n, lab, stats, _ = cv2.connectedComponentsWithStats(added.astype(np.uint8), connectivity=8)
    H, W = ink.shape
    out = np.zeros_like(added)
    for i in range(1, n):
        x, y, w, h = stats[i, :4]
        pad = 8
        y0, y1, x0, x1 = max(y - pad, 0), min(y + h + pad, H), max(x - pad, 0), min(x + w + pad, W)
        piece = lab[y0:y1, x0:x1] == i
        widths = [e.width for e in eps if y0 <= e.y < y1 and x0 <= e.x < x1
                  and piece[max(e.y - y0 - 2, 0):e.y - y0 + 3, max(e.x - x0 - 2, 0):e.x - x0 + 3].any()]
        if not widths:
            out[y0:y1, x0:x1] |= piece
            continue
        width = float(np.median(widths))
        bone = skeletonize(piece)
        # thinning shortens a piece's ends: keep where it touches the drawing, so a closure stays closed
        bone |= piece & (cv2.dilate(ink[y0:y1, x0:x1].astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
        if width >= 1.5:
            d = cv2.distanceTransform((~bone).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            bone = d <= width / 2.0 + 0.25
        out[y0:y1, x0:x1] |= bone
    return out & ~ink


# ---------------------------------------------------------------- weights

def save_weights(model: nn.Module, path, metadata: dict | None = None) -> Path:
    """Write the state dict as safetensors; the architecture name and ``metadata`` go in its header."""
    return save_state(model, path, {"arch": getattr(model, "arch", ""), "format": "celgraph.gapfill/1"}, metadata)


def load_weights(path, device: str = "cpu") -> tuple[nn.Module, dict]:
    """(model in eval mode on ``device``, metadata) from a safetensors file of :func:`save_weights`."""
    from safetensors import safe_open
    from safetensors.torch import load_file
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
    arch = meta.get("arch")
    if not arch:
        raise ValueError(f"{path}: no 'arch' in the safetensors metadata; not a celgraph GapFill weights file")
    model = build(arch)
    model.load_state_dict(load_file(str(path)))
    return model.to(device).eval(), meta

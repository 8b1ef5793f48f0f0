"""Sketch network: a small U-Net from a colour frame to its line layer (ink coverage).

After Lento's U-Net sketch extractor and the reference's recommendation
(``/shared/reference/lines_and_color.md`` §3, §9.3): a fully convolutional U-Net, 3→1 channels,
trained on synthetic colour frames (degraded: JPEG, rescaling, blur, noise, lighting, screentone)
against their exact ink layer, where shadow and highlight boundaries are *not* lines.

Shape: input ``B×3×H×W`` float32 RGB in 0..1 (H, W multiples of the stride, 32; :func:`predict`
pads), output ``B×1×H×W`` ink **logits** (sigmoid → probability of ink).

Architecture (:func:`sketch_unet`, the shipped variant): 5 stride-2 levels, ``widths``
8-16-32-48-64-96. Full resolution holds only a 3×3 stem and the last 3×3 decoder conv
(8 channels), which keeps a 1920×1080 frame at ≈ 15 GMAC (≈ 0.5-0.6 CPU-seconds); every lower
encoder level has two 3×3 convs + BatchNorm + ReLU (the first with stride 2). Each decoder level
projects the coarse features to the skip's width with a 1×1 conv (cheap, at the coarse
resolution), upsamples bilinearly (fewer checkerboard artifacts than transposed convs, as in
Anime2Sketch's improved variant), concatenates the skip and applies one 3×3 conv. BatchNorm runs
with its running statistics at inference (:func:`fuse_batchnorm` folds it into the convs), so a
pixel's output does not depend on the frame or tile around it as with InstanceNorm.
407,145 parameters.

Weights: :func:`save_weights` / :func:`load_weights` (safetensors; the architecture and the
calibrated binarisation threshold travel in the header).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .safetensors_io import read_metadata, save_state

__all__ = ["SketchUNet", "sketch_unet", "build", "count_parameters", "fuse_batchnorm", "predict", "save_weights", "load_weights",
           "ARCHS"]


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SketchUNet(nn.Module):
    """U-Net colour → ink logits. ``B×cin×H×W`` → ``B×1×H×W``; H, W multiples of 2**(len(widths)−1)."""

    def __init__(self, cin: int = 3, widths: tuple[int, ...] = (8, 16, 32, 48, 64, 96)):
        super().__init__()
        self.cin, self.widths = cin, tuple(widths)
        w = self.widths
        self.stem = _conv(cin, w[0])
        self.down = nn.ModuleList(nn.Sequential(_conv(w[i - 1], w[i], 2), _conv(w[i], w[i]))
                                  for i in range(1, len(w)))
        # decoder level i: 1×1 projection w[i] → w[i-1] at the coarse resolution (cheap), bilinear ×2,
        # concatenation with the skip, one 3×3 conv
        self.proj = nn.ModuleList(nn.Conv2d(w[i], w[i - 1], 1) for i in range(len(w) - 1, 0, -1))
        self.up = nn.ModuleList(_conv(2 * w[i - 1], w[i - 1]) for i in range(len(w) - 1, 0, -1))
        self.head = nn.Conv2d(w[0], 1, 1)

    @property
    def stride(self) -> int:
        return 2 ** (len(self.widths) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for d in self.down:
            skips.append(d(skips[-1]))
        y = skips.pop()
        for proj, up in zip(self.proj, self.up):
            s = skips.pop()
            y = F.interpolate(proj(y), size=s.shape[-2:], mode="bilinear", align_corners=False)
            y = up(torch.cat([y, s], 1))
        return self.head(y)


ARCHS: dict[str, dict] = {
    "sketch_unet": {"widths": (8, 16, 32, 48, 64, 96)},
    "sketch_unet_tiny": {"widths": (4, 8, 16, 16)},         # for tests
}


def build(arch: str = "sketch_unet") -> SketchUNet:
    if arch not in ARCHS:
        raise ValueError(f"unknown Sketch architecture {arch!r}; known: {sorted(ARCHS)}")
    return SketchUNet(**ARCHS[arch])


def sketch_unet() -> SketchUNet:
    """The shipped variant (≈ 0.5 M parameters)."""
    return build("sketch_unet")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fuse_batchnorm(model: SketchUNet) -> SketchUNet:
    """Fold every BatchNorm (at its running statistics) into the conv before it, in place: the same
    outputs for inference, ≈ 20 % faster on CPU. The model can no longer be trained afterwards."""
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        if len(seq) == 3 and isinstance(seq[0], nn.Conv2d) and isinstance(seq[1], nn.BatchNorm2d):
            conv, bn = seq[0], seq[1]
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                              bias=True)
            with torch.no_grad():
                fused.weight.copy_(conv.weight * scale[:, None, None, None])
                b = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                fused.bias.copy_((b - bn.running_mean) * scale + bn.bias)
            seq[0], seq[1] = fused, nn.Identity()
    return model.eval()


# ---------------------------------------------------------------- inference

def _rgb(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image, np.float32)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] in (2, 4):                      # premultiplied alpha: over white paper
        img = img[:, :, :-1] + (1.0 - img[:, :, -1:])
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.clip(img[:, :, :3], 0.0, 1.0)


def _padded(rgb: np.ndarray, stride: int) -> torch.Tensor:
    """``1×3×H′×W′`` float32, channels_last, of an H×W×3 image, its bottom and right edges
    replicated up to multiples of ``stride`` (as ``F.pad(..., mode="replicate")``): the image's own
    memory where no padding is needed, one copy where it is (the HWC array is already the
    channels_last layout; going through NCHW cost two more full-frame copies, ≈ 35 ms at 1080p)."""
    h, w = rgb.shape[:2]
    ph, pw = (-h) % stride, (-w) % stride
    if ph or pw:
        rgb = np.pad(rgb, ((0, ph), (0, pw), (0, 0)), mode="edge")
    return torch.from_numpy(np.ascontiguousarray(rgb, np.float32))[None].permute(0, 3, 1, 2)


def predict(model: SketchUNet, image: np.ndarray, tile: int | None = None, overlap: int = 32,
            device: str = "cpu", progress: Callable[[int, int], None] | None = None,
            net: Callable | None = None) -> np.ndarray:
    """Ink probability (H×W float32 0..1) of an image (H×W×C float, RGB or RGBA premultiplied).

    ``tile``: None (default) runs the frame whole — on our 2-core CPU that was the fastest
    (1920×1080: ≈ 0.5-0.6 CPU-seconds on one thread with torch's allocations on huge pages, as
    :mod:`celgraph.engine.workerenv` asks, ≈ 0.85 without; ≈ 3× less than 512² tiles, whose varying edge shapes also
    make oneDNN rebuild its kernels); a size (a multiple of the network stride) runs tiles that
    overlap by ``overlap`` px of discarded context on each side, for frames too big for memory.
    With BatchNorm at its running statistics, tiles differ from a whole-frame pass only near tile
    seams, by the context cut beyond ``overlap``. ``net``: runs the network in place of ``model``
    (ONNX Runtime or TensorRT, :mod:`.accel`)."""
    rgb = _rgb(image)
    H, W = rgb.shape[:2]
    s = model.stride
    model.eval()

    def run(part: np.ndarray) -> torch.Tensor:
        h, w = part.shape[:2]
        x = _padded(part, s)
        if net is not None:
            return torch.sigmoid(net(x.contiguous().to(device)).float())[..., :h, :w].cpu()
        x = x.to(device).contiguous(memory_format=torch.channels_last)      # a view already on the CPU
        return torch.sigmoid(model(x))[..., :h, :w].float().cpu()

    with torch.inference_mode():
        if tile is None or (H <= tile and W <= tile):
            return run(rgb)[0, 0].numpy()
        core = tile - 2 * overlap
        if core <= 0 or tile % s:
            raise ValueError(f"tile {tile} must be a multiple of {s} and larger than 2×overlap")
        out = np.zeros((H, W), np.float32)
        ys, xs = list(range(0, H, core)), list(range(0, W, core))
        n, i = len(ys) * len(xs), 0
        for y0 in ys:
            for x0 in xs:
                y1, x1 = min(y0 + core, H), min(x0 + core, W)
                ty0, tx0 = max(0, y0 - overlap), max(0, x0 - overlap)
                ty1, tx1 = min(H, y1 + overlap), min(W, x1 + overlap)
                p = run(rgb[ty0:ty1, tx0:tx1])[0, 0].numpy()
                out[y0:y1, x0:x1] = p[y0 - ty0:y1 - ty0, x0 - tx0:x1 - tx0]
                i += 1
                if progress is not None:
                    progress(i, n)
        return out


# ---------------------------------------------------------------- weights

def save_weights(model: SketchUNet, path, metadata: dict | None = None) -> Path:
    """State dict as safetensors; the architecture (widths) and ``metadata`` (e.g. the calibrated
    ``threshold``) go in its header as JSON strings."""
    header = {"format": "celgraph.sketch_unet", "widths": json.dumps(list(model.widths)), "cin": str(model.cin)}
    return save_state(model, path, header, metadata)


def load_weights(path, device: str = "cpu") -> tuple[SketchUNet, dict]:
    """(model in eval mode on ``device``, metadata dict with JSON values decoded)."""
    from safetensors.torch import load_file
    meta = read_metadata(path, "celgraph.sketch_unet", "Sketch U-Net")
    model = SketchUNet(cin=int(meta.get("cin", 3)), widths=tuple(meta["widths"]))
    model.load_state_dict(load_file(str(path)))
    model.eval().to(device).to(memory_format=torch.channels_last)
    return model, meta

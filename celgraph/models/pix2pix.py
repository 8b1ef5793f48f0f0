"""Colorize model: a small pix2pix (U-Net generator + PatchGAN discriminator).

After pix2pix (``/shared/reference/lines_and_color.md`` §4) and the reference's recommendation
for Colorize (§9.4), scaled down for a CPU:

* :class:`UNetGenerator` — input ``B×5×H×W``: channel 0 the line art (ink coverage mapped to
  −1..1), channels 1-3 a colour guide (the hint flat-fill of the Colorize node, −1..1, zero where
  there is none), channel 4 the guide mask (1 where the guide holds a colour). Output
  ``B×3×H×W`` RGB in −1..1 (Tanh). ``depth`` stride-2 4×4 conv levels (LeakyReLU 0.2, BatchNorm
  from the second level, as pix2pix), a decoder of bilinear ×2 + 3×3 conv (against checkerboard
  artifacts, as the DLS-2021 variant) with dropout 0.5 in its innermost ``dropout`` blocks when
  training, concatenated skips, and a last 3×3 conv at full resolution that also sees the input,
  so the lines come out sharp. With ``residual`` (default) the last conv's output is added, in
  Tanh's logit space, to the guide composited with black lines (:func:`flat_base`): an untrained
  generator already returns the hint flat fill, and training only has to learn what the flat
  fill lacks — a short CPU budget then improves on the flat fill instead of first having to
  learn to copy it. H, W multiples of ``2**depth`` (:func:`colorize` pads).
  Without a guide this is pix2pix's line → colour mapping (it learns a show's palette when
  trained on the show); with one it learns what a flat fill lacks — cel shadows, highlights,
  line colours — and keeps the hinted colours (two-stage design of §9.4).
* :class:`PatchDiscriminator` — pix2pix's ``NLayerDiscriminator``: 4×4 convs, ``n_layers``
  stride-2 levels then one stride-1 level and a 1-channel conv (70×70 receptive field for 3
  layers), LeakyReLU 0.2, BatchNorm except on the first; input cat(A, B) = 5 + 3 channels.

Weights: :func:`save_weights` / :func:`load_weights` (safetensors, generator only; the
architecture travels in the header).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .safetensors_io import read_metadata, save_state

__all__ = ["UNetGenerator", "PatchDiscriminator", "flat_base", "build_generator", "build_discriminator",
           "count_parameters", "init_weights", "make_input", "colorize", "save_weights", "load_weights", "ARCHS",
           "IN_CHANNELS"]

IN_CHANNELS = 5


class UNetGenerator(nn.Module):
    """Line art (+ colour guide) → RGB; ``B×5×H×W`` → ``B×3×H×W`` in −1..1."""

    def __init__(self, cin: int = IN_CHANNELS, cout: int = 3, ngf: int = 16, depth: int = 6, max_mult: int = 8,
                 dropout: int = 2, residual: bool = True):
        super().__init__()
        self.cin, self.cout, self.ngf, self.depth, self.max_mult, self.n_dropout = cin, cout, ngf, depth, max_mult, dropout
        self.residual = residual
        w = [ngf * min(2 ** i, max_mult) for i in range(depth)]
        self.widths = w
        down = [nn.Conv2d(cin, w[0], 4, 2, 1)]
        for i in range(1, depth):
            down.append(nn.Sequential(nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(w[i - 1], w[i], 4, 2, 1, bias=False),
                                      nn.BatchNorm2d(w[i])))
        self.down = nn.ModuleList(down)
        up = []
        for i in range(depth - 1, 0, -1):            # from the bottleneck up to ½ resolution
            cin_up = w[i] if i == depth - 1 else 2 * w[i]
            layers = [nn.ReLU(inplace=True), nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                      nn.Conv2d(cin_up, w[i - 1], 3, 1, 1, bias=False), nn.BatchNorm2d(w[i - 1])]
            if depth - 1 - i < dropout:
                layers.append(nn.Dropout(0.5))
            up.append(nn.Sequential(*layers))
        self.up = nn.ModuleList(up)
        self.last = nn.Sequential(nn.ReLU(inplace=True),
                                  nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
        self.out = nn.Conv2d(2 * w[0] + cin, cout, 3, 1, 1)

    @property
    def stride(self) -> int:
        return 2 ** self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        y = x
        for d in self.down:
            y = d(y)
            skips.append(y)
        y = skips.pop()
        for u in self.up:
            y = torch.cat([u(y), skips.pop()], 1)
        y = self.out(torch.cat([self.last(y), x], 1))
        if self.residual:               # a correction of the flat guide with black lines, in tanh's logit space
            y = y + torch.atanh(flat_base(x).clamp(-0.995, 0.995))
        return torch.tanh(y)


def flat_base(x: torch.Tensor) -> torch.Tensor:
    """What the generator corrects (``residual``): the guide colour where the guide mask is set,
    mid grey elsewhere, with the ink laid over it in black; ``B×3×H×W`` in −1..1."""
    ink = (x[:, :1] + 1) * 0.5
    base = x[:, 1:4] * x[:, 4:5]
    return base * (1 - ink) - ink


class PatchDiscriminator(nn.Module):
    """PatchGAN: ``B×(5+3)×H×W`` → ``B×1×h×w`` real/fake logits per patch."""

    def __init__(self, cin: int = IN_CHANNELS + 3, ndf: int = 32, n_layers: int = 3):
        super().__init__()
        layers = [nn.Conv2d(cin, ndf, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=False), nn.BatchNorm2d(ndf * mult),
                       nn.LeakyReLU(0.2, inplace=True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([a, b], 1))


ARCHS: dict[str, dict] = {
    "pix2pix_small": {"ngf": 16, "depth": 6},        # the shipped one, ≈ 0.9 M parameters
    "pix2pix_tiny": {"ngf": 8, "depth": 4},          # for tests
}


def build_generator(arch: str = "pix2pix_small") -> UNetGenerator:
    if arch not in ARCHS:
        raise ValueError(f"unknown Colorize architecture {arch!r}; known: {sorted(ARCHS)}")
    return UNetGenerator(**ARCHS[arch])


def build_discriminator(ndf: int = 32, n_layers: int = 3) -> PatchDiscriminator:
    return PatchDiscriminator(ndf=ndf, n_layers=n_layers)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _init(m: nn.Module) -> None:
    """pix2pix init: conv weights ~ N(0, 0.02), BN weights ~ N(1, 0.02)."""
    if isinstance(m, nn.Conv2d):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def init_weights(model: nn.Module) -> nn.Module:
    model.apply(_init)
    return model


# ---------------------------------------------------------------- inference

def make_input(lines: np.ndarray, guide: np.ndarray | None = None, guide_mask: np.ndarray | None = None) -> np.ndarray:
    """The 5×H×W float32 network input: ink·2−1, guide colour·2−1 (0 where unguided), guide mask."""
    ink = np.clip(np.asarray(lines, np.float32), 0, 1)
    H, W = ink.shape
    x = np.zeros((IN_CHANNELS, H, W), np.float32)
    x[0] = ink * 2 - 1
    if guide is not None:
        m = np.ones((H, W), np.float32) if guide_mask is None else np.asarray(guide_mask, np.float32)
        x[1:4] = (np.clip(np.asarray(guide, np.float32)[:, :, :3], 0, 1) * 2 - 1).transpose(2, 0, 1) * m
        x[4] = m
    return x


def colorize(model: UNetGenerator, lines: np.ndarray, guide: np.ndarray | None = None,
             guide_mask: np.ndarray | None = None, device: str = "cpu", net=None) -> np.ndarray:
    """RGB (H×W×3 float32 0..1) for line art (H×W ink coverage), optionally guided by a flat colour
    map (H×W×3) valid where ``guide_mask`` (H×W) is 1. Runs the whole frame, padded with paper.
    ``net``: runs the network in place of ``model`` (ONNX Runtime or TensorRT, :mod:`.accel`)."""
    x = make_input(lines, guide, guide_mask)
    H, W = x.shape[1:]
    s = model.stride
    ph, pw = (-H) % s, (-W) % s
    if ph or pw:
        pad = np.zeros((IN_CHANNELS, H + ph, W + pw), np.float32)
        pad[0] = -1.0                                   # paper
        pad[:, :H, :W] = x
        x = pad
    model.eval()
    with torch.inference_mode():
        y = (model if net is None else net)(torch.from_numpy(x)[None].to(device))[0, :, :H, :W]
    return ((y.float().cpu().numpy().transpose(1, 2, 0) + 1) * 0.5).clip(0, 1).astype(np.float32)


# ---------------------------------------------------------------- weights

def save_weights(model: UNetGenerator, path, metadata: dict | None = None) -> Path:
    """Generator state dict as safetensors; the architecture and ``metadata`` in the header."""
    arch = {"cin": model.cin, "cout": model.cout, "ngf": model.ngf, "depth": model.depth,
            "max_mult": model.max_mult, "dropout": model.n_dropout, "residual": model.residual}
    return save_state(model, path, {"format": "celgraph.pix2pix", "arch": json.dumps(arch)}, metadata)


def load_weights(path, device: str = "cpu") -> tuple[UNetGenerator, dict]:
    """(generator in eval mode on ``device``, metadata with JSON values decoded)."""
    from safetensors.torch import load_file
    meta = read_metadata(path, "celgraph.pix2pix", "Colorize pix2pix")
    model = UNetGenerator(**meta["arch"])
    model.load_state_dict(load_file(str(path)))
    return model.eval().to(device), meta

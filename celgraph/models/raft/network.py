"""RAFT and RAFT-small optical flow in plain PyTorch, weight-compatible with the official checkpoints.

A clean-room implementation of RAFT (Teed & Deng, "Recurrent All-Pairs Field Transforms for
Optical Flow", ECCV 2020) following the module layout and parameter names of the reference code
(princeton-vl/RAFT, ``core/``), so that ``raft-things.pth``, ``raft-sintel.pth``,
``raft-chairs.pth``, ``raft-kitti.pth`` and ``raft-small.pth`` load as they are; torchvision's
naming (``feature_encoder.*`` ...) is read through an explicit key map. No weights ship with this
module and nothing here downloads any.

Conventions
-----------
* Images are B×3×H×W float RGB in **0..255**; ``RAFT.forward`` maps them to 2·(I/255)−1 itself,
  as upstream does (torchvision expects them normalised already; we do not).
* H and W must be multiples of 8; :class:`InputPadder` pads and crops back.
* Flow is B×2×H×W in pixels, channel 0 = x (right), channel 1 = y (down), and maps pixels of
  image1 to image2: image1(p) ≈ image2(p + flow(p)).

Layout (module names = keys of the state dict)::

    RAFT
    ├── fnet          BasicEncoder(256, instance norm)   | SmallEncoder(128, instance norm)
    ├── cnet          BasicEncoder(256, batch norm)      | SmallEncoder(160, no norm)
    └── update_block  BasicUpdateBlock                   | SmallUpdateBlock
        ├── encoder     BasicMotionEncoder (324 corr ch.) | SmallMotionEncoder (196 corr ch.)
        ├── gru         SepConvGRU (hidden 128)          | ConvGRU (hidden 96)
        ├── flow_head   FlowHead
        └── mask        convex-upsampling mask (large only; small upsamples ×8 bilinearly)

This module is the network (``raft_large``, ``raft_small``: random weights); checkpoints.py reads
and writes weights (``load_raft``, ``save_safetensors``, the key maps), inference.py runs it on
numpy frames (``raft_flow``, ``InputPadder``, ``FeatureCache``). ``celgraph.models.raft`` exports
all three.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["RAFT", "raft_large", "raft_small", "CorrBlock", "coords_grid", "VARIANTS"]

VARIANTS = ("large", "small")


# --------------------------------------------------------------------------------------------
# Encoders (upstream core/extractor.py)
# --------------------------------------------------------------------------------------------

def _norm(norm_fn: str, channels: int) -> nn.Module:
    """The normalisation layer the encoders use: 'batch', 'instance', 'group' or 'none'."""
    if norm_fn == "batch":
        return nn.BatchNorm2d(channels)
    if norm_fn == "instance":       # no affine parameters, no running statistics: no state
        return nn.InstanceNorm2d(channels)
    if norm_fn == "group":
        return nn.GroupNorm(num_groups=channels // 8, num_channels=channels)
    if norm_fn == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm_fn {norm_fn!r} (batch, instance, group or none)")


class ResidualBlock(nn.Module):
    """Two 3×3 convs with a residual skip; B×Cin×H×W → B×C×H/s×W/s.

    A strided block has a 1×1 strided ``downsample`` = (conv, ``norm3``). ``norm3`` is the same
    module as ``downsample.1``, so the state dict holds its entries under both names, as the
    official checkpoints do.
    """

    def __init__(self, in_planes: int, planes: int, norm_fn: str = "group", stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.norm1 = _norm(norm_fn, planes)
        self.norm2 = _norm(norm_fn, planes)
        if stride == 1:
            self.downsample = None
        else:
            self.norm3 = _norm(norm_fn, planes)
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride), self.norm3)

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.norm1(self.conv1(x)))
        y = self.relu(self.norm2(self.conv2(y)))
        if self.downsample is not None:
            x = self.downsample(x)
        return self.relu(x + y)


class BottleneckBlock(nn.Module):
    """1×1 → 3×3 (strided) → 1×1 bottleneck with a residual skip (RAFT-small);
    B×Cin×H×W → B×C×H/s×W/s. ``norm4`` is the same module as ``downsample.1``."""

    def __init__(self, in_planes: int, planes: int, norm_fn: str = "group", stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes // 4, kernel_size=1, padding=0)
        self.conv2 = nn.Conv2d(planes // 4, planes // 4, kernel_size=3, padding=1, stride=stride)
        self.conv3 = nn.Conv2d(planes // 4, planes, kernel_size=1, padding=0)
        self.relu = nn.ReLU(inplace=True)
        self.norm1 = _norm(norm_fn, planes // 4)
        self.norm2 = _norm(norm_fn, planes // 4)
        self.norm3 = _norm(norm_fn, planes)
        if stride == 1:
            self.downsample = None
        else:
            self.norm4 = _norm(norm_fn, planes)
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride), self.norm4)

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.norm1(self.conv1(x)))
        y = self.relu(self.norm2(self.conv2(y)))
        y = self.relu(self.norm3(self.conv3(y)))
        if self.downsample is not None:
            x = self.downsample(x)
        return self.relu(x + y)


class _Encoder(nn.Module):
    """Shared body of the two encoders: stem conv, three stages of two blocks, 1×1 head.

    ``forward`` takes a B×3×H×W tensor (→ B×out×H/8×W/8) or a list/tuple of them, which run as
    one batch and come back as a tuple (upstream runs both frames through ``fnet`` this way).
    """

    block: type[nn.Module]

    def __init__(self, widths: Sequence[int], output_dim: int, norm_fn: str, dropout: float):
        super().__init__()
        self.norm_fn = norm_fn
        stem, w1, w2, w3 = widths
        self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3)
        self.norm1 = _norm(norm_fn, stem)
        self.relu1 = nn.ReLU(inplace=True)
        self.in_planes = stem
        self.layer1 = self._make_layer(w1, stride=1)
        self.layer2 = self._make_layer(w2, stride=2)
        self.layer3 = self._make_layer(w3, stride=2)
        self.dropout = nn.Dropout2d(p=dropout) if dropout > 0 else None
        self.conv2 = nn.Conv2d(w3, output_dim, kernel_size=1)
        for m in self.modules():         # upstream initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)):
                if m.weight is not None:
                    nn.init.constant_(m.weight, 1)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)

    def _make_layer(self, dim: int, stride: int) -> nn.Sequential:
        layer1 = self.block(self.in_planes, dim, self.norm_fn, stride=stride)
        layer2 = self.block(dim, dim, self.norm_fn, stride=1)
        self.in_planes = dim
        return nn.Sequential(layer1, layer2)

    def forward(self, x):
        is_list = isinstance(x, (tuple, list))
        if is_list:
            batch_dim = x[0].shape[0]
            x = torch.cat(x, dim=0)
        x = self.relu1(self.norm1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = self.conv2(x)
        if self.training and self.dropout is not None:
            x = self.dropout(x)
        if is_list:
            return torch.split(x, [batch_dim, batch_dim], dim=0)
        return x


class BasicEncoder(_Encoder):
    """RAFT-large encoder: 7×7/2 conv 3→64, residual stages 64, 96 (/2), 128 (/2), 1×1 → output_dim.
    B×3×H×W → B×output_dim×H/8×W/8."""

    block = ResidualBlock

    def __init__(self, output_dim: int = 128, norm_fn: str = "batch", dropout: float = 0.0):
        super().__init__((64, 64, 96, 128), output_dim, norm_fn, dropout)


class SmallEncoder(_Encoder):
    """RAFT-small encoder: 7×7/2 conv 3→32, bottleneck stages 32, 64 (/2), 96 (/2), 1×1 → output_dim.
    B×3×H×W → B×output_dim×H/8×W/8."""

    block = BottleneckBlock

    def __init__(self, output_dim: int = 128, norm_fn: str = "batch", dropout: float = 0.0):
        super().__init__((32, 32, 64, 96), output_dim, norm_fn, dropout)


# --------------------------------------------------------------------------------------------
# Update blocks (upstream core/update.py)
# --------------------------------------------------------------------------------------------

class FlowHead(nn.Module):
    """3×3 conv → ReLU → 3×3 conv to 2 channels: hidden state B×C×h×w → Δflow B×2×h×w."""

    def __init__(self, input_dim: int = 128, hidden_dim: int = 256):
        super().__init__()
        self.conv1 = nn.Conv2d(input_dim, hidden_dim, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden_dim, 2, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.relu(self.conv1(x)))


def _gru_step(h: Tensor, x: Tensor, convz: nn.Conv2d, convr: nn.Conv2d, convq: nn.Conv2d) -> Tensor:
    """One convolutional GRU update. The z and r gates see the same input, so they run as one
    convolution with the two weight sets stacked (same result, one pass over ``hx``)."""
    hx = torch.cat([h, x], dim=1)
    zr = F.conv2d(hx, torch.cat([convz.weight, convr.weight]), torch.cat([convz.bias, convr.bias]),
                  padding=convz.padding)
    z, r = torch.sigmoid(zr).chunk(2, dim=1)
    q = torch.tanh(convq(torch.cat([r * h, x], dim=1)))
    return (1 - z) * h + z * q


class ConvGRU(nn.Module):
    """Convolutional GRU with 3×3 gates (RAFT-small). h: B×hidden×h×w, x: B×input×h×w → new h."""

    def __init__(self, hidden_dim: int = 128, input_dim: int = 192 + 128):
        super().__init__()
        self.convz = nn.Conv2d(hidden_dim + input_dim, hidden_dim, 3, padding=1)
        self.convr = nn.Conv2d(hidden_dim + input_dim, hidden_dim, 3, padding=1)
        self.convq = nn.Conv2d(hidden_dim + input_dim, hidden_dim, 3, padding=1)

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        return _gru_step(h, x, self.convz, self.convr, self.convq)


class SepConvGRU(nn.Module):
    """Separable convolutional GRU (RAFT-large): a horizontal pass with 1×5 gates (``conv*1``)
    then a vertical pass with 5×1 gates (``conv*2``). h: B×hidden×h×w, x: B×input×h×w → new h."""

    def __init__(self, hidden_dim: int = 128, input_dim: int = 192 + 128):
        super().__init__()
        c = hidden_dim + input_dim
        self.convz1 = nn.Conv2d(c, hidden_dim, (1, 5), padding=(0, 2))
        self.convr1 = nn.Conv2d(c, hidden_dim, (1, 5), padding=(0, 2))
        self.convq1 = nn.Conv2d(c, hidden_dim, (1, 5), padding=(0, 2))
        self.convz2 = nn.Conv2d(c, hidden_dim, (5, 1), padding=(2, 0))
        self.convr2 = nn.Conv2d(c, hidden_dim, (5, 1), padding=(2, 0))
        self.convq2 = nn.Conv2d(c, hidden_dim, (5, 1), padding=(2, 0))

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        h = _gru_step(h, x, self.convz1, self.convr1, self.convq1)
        return _gru_step(h, x, self.convz2, self.convr2, self.convq2)


class BasicMotionEncoder(nn.Module):
    """Correlation + current flow → motion features (RAFT-large).

    corr B×(levels·(2r+1)²)×h×w (324 for 4 levels, r=4), flow B×2×h×w → B×128×h×w
    (126 learnt channels followed by the 2 flow channels).
    """

    def __init__(self, corr_levels: int = 4, corr_radius: int = 4):
        super().__init__()
        cor_planes = corr_levels * (2 * corr_radius + 1) ** 2
        self.convc1 = nn.Conv2d(cor_planes, 256, 1, padding=0)
        self.convc2 = nn.Conv2d(256, 192, 3, padding=1)
        self.convf1 = nn.Conv2d(2, 128, 7, padding=3)
        self.convf2 = nn.Conv2d(128, 64, 3, padding=1)
        self.conv = nn.Conv2d(64 + 192, 128 - 2, 3, padding=1)

    def forward(self, flow: Tensor, corr: Tensor) -> Tensor:
        cor = F.relu(self.convc1(corr))
        cor = F.relu(self.convc2(cor))
        flo = F.relu(self.convf1(flow))
        flo = F.relu(self.convf2(flo))
        out = F.relu(self.conv(torch.cat([cor, flo], dim=1)))
        return torch.cat([out, flow], dim=1)


class SmallMotionEncoder(nn.Module):
    """Correlation + current flow → motion features (RAFT-small).

    corr B×(levels·(2r+1)²)×h×w (196 for 4 levels, r=3), flow B×2×h×w → B×82×h×w.
    """

    def __init__(self, corr_levels: int = 4, corr_radius: int = 3):
        super().__init__()
        cor_planes = corr_levels * (2 * corr_radius + 1) ** 2
        self.convc1 = nn.Conv2d(cor_planes, 96, 1, padding=0)
        self.convf1 = nn.Conv2d(2, 64, 7, padding=3)
        self.convf2 = nn.Conv2d(64, 32, 3, padding=1)
        self.conv = nn.Conv2d(128, 80, 3, padding=1)

    def forward(self, flow: Tensor, corr: Tensor) -> Tensor:
        cor = F.relu(self.convc1(corr))
        flo = F.relu(self.convf1(flow))
        flo = F.relu(self.convf2(flo))
        out = F.relu(self.conv(torch.cat([cor, flo], dim=1)))
        return torch.cat([out, flow], dim=1)


class BasicUpdateBlock(nn.Module):
    """One RAFT-large refinement step.

    ``forward(net, inp, corr, flow)``: hidden B×128×h×w, context B×128×h×w, corr B×324×h×w,
    flow B×2×h×w → (new hidden B×128×h×w, up-mask B×576×h×w (already ×0.25) or None when
    ``upsample`` is false, Δflow B×2×h×w).
    """

    def __init__(self, corr_levels: int = 4, corr_radius: int = 4, hidden_dim: int = 128,
                 input_dim: int = 128):
        super().__init__()
        self.encoder = BasicMotionEncoder(corr_levels, corr_radius)
        self.gru = SepConvGRU(hidden_dim=hidden_dim, input_dim=input_dim + hidden_dim)
        self.flow_head = FlowHead(hidden_dim, hidden_dim=256)
        self.mask = nn.Sequential(
            nn.Conv2d(hidden_dim, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 64 * 9, 1, padding=0))

    def forward(self, net, inp, corr, flow, upsample: bool = True):
        motion_features = self.encoder(flow, corr)
        net = self.gru(net, torch.cat([inp, motion_features], dim=1))
        delta_flow = self.flow_head(net)
        # the 0.25 scale balances the gradients of the mask head (upstream issues #119, #24)
        mask = 0.25 * self.mask(net) if upsample else None
        return net, mask, delta_flow


class SmallUpdateBlock(nn.Module):
    """One RAFT-small refinement step.

    ``forward(net, inp, corr, flow)``: hidden B×96×h×w, context B×64×h×w, corr B×196×h×w,
    flow B×2×h×w → (new hidden, None, Δflow B×2×h×w).
    """

    def __init__(self, corr_levels: int = 4, corr_radius: int = 3, hidden_dim: int = 96):
        super().__init__()
        self.encoder = SmallMotionEncoder(corr_levels, corr_radius)
        self.gru = ConvGRU(hidden_dim=hidden_dim, input_dim=82 + 64)
        self.flow_head = FlowHead(hidden_dim, hidden_dim=128)

    def forward(self, net, inp, corr, flow, upsample: bool = True):
        motion_features = self.encoder(flow, corr)
        net = self.gru(net, torch.cat([inp, motion_features], dim=1))
        return net, None, self.flow_head(net)


# --------------------------------------------------------------------------------------------
# Correlation (upstream core/corr.py)
# --------------------------------------------------------------------------------------------

def coords_grid(batch: int, ht: int, wd: int, device=None, dtype=torch.float32) -> Tensor:
    """Pixel coordinates B×2×ht×wd, channel 0 = x (column), channel 1 = y (row)."""
    ys, xs = torch.meshgrid(torch.arange(ht, device=device, dtype=dtype),
                            torch.arange(wd, device=device, dtype=dtype), indexing="ij")
    return torch.stack([xs, ys], dim=0)[None].repeat(batch, 1, 1, 1)


def _bilinear_sample(img: Tensor, coords: Tensor) -> Tensor:
    """Sample img N×C×H×W at pixel coordinates coords N×h×w×2 (x, y) → N×C×h×w.

    Bilinear, zero outside the image. Upstream normalises by (W−1, H−1) with
    ``align_corners=True``; we do exactly that, except on a level that has collapsed to one
    row or column (inputs under 64 px), where upstream divides by zero and we use the equivalent
    ``align_corners=False`` mapping instead.
    """
    H, W = img.shape[-2:]
    xgrid, ygrid = coords.split([1, 1], dim=-1)
    if H > 1 and W > 1:
        grid = torch.cat([2 * xgrid / (W - 1) - 1, 2 * ygrid / (H - 1) - 1], dim=-1)
        return F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    grid = torch.cat([(2 * xgrid + 1) / W - 1, (2 * ygrid + 1) / H - 1], dim=-1)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class CorrBlock:
    """All-pairs correlation pyramid and its windowed lookup (no parameters).

    Built from fmap1, fmap2 (B×D×h×w): the volume ⟨fmap1(p), fmap2(q)⟩/√D for every pair, then
    ``num_levels`` levels made by 2×2 average pooling over the *target* dimensions of q
    (flooring odd sizes; a dimension down to 1 stays 1).

    ``corr_fn(coords)`` with coords B×2×h×w (x, y in level-0 pixels) returns
    B×(num_levels·(2r+1)²)×h×w: for each level l, the (2r+1)×(2r+1) square window of the
    level-l volume around coords/2^l, sampled bilinearly (zero outside). Channel order, as
    upstream (needed to load its weights): levels 0→L−1; inside each level's block the **x
    offset is the slow index and the y offset the fast one**, offsets running −r..r.
    """

    def __init__(self, fmap1: Tensor, fmap2: Tensor, num_levels: int = 4, radius: int = 4):
        self.num_levels = num_levels
        self.radius = radius
        # Pooling the volume over q equals correlating with a pooled fmap2 (the dot product is
        # linear in fmap2), so each level is one matmul against fmap2 pooled 2×2 l times: no
        # pooling pass over the h·w×h·w volume, and the 1/√D scale is applied to fmap1 only.
        batch, dim, h1, w1 = fmap1.shape
        f1 = (fmap1 * dim ** -0.5).flatten(2).transpose(1, 2)          # B×hw×D
        f2 = fmap2
        self.corr_pyramid = []
        for level in range(num_levels):
            if level:
                # 2×2 average pooling as upstream (odd sizes floored); a dimension already down
                # to 1 (frames under 64 px, where upstream fails) is kept at 1
                k = (2 if f2.shape[-2] > 1 else 1, 2 if f2.shape[-1] > 1 else 1)
                f2 = F.avg_pool2d(f2, k, stride=k)
            h2, w2 = f2.shape[-2:]
            corr = torch.matmul(f1, f2.flatten(2))                        # B×hw×h2w2
            self.corr_pyramid.append(corr.reshape(batch * h1 * w1, 1, h2, w2))

    def __call__(self, coords: Tensor) -> Tensor:
        r = self.radius
        coords = coords.permute(0, 2, 3, 1)
        batch, h1, w1, _ = coords.shape
        d = torch.linspace(-r, r, 2 * r + 1, device=coords.device, dtype=coords.dtype)
        # delta[i, j] = (d[i], d[j]) is added to (x, y): i (slow) is the x offset, j the y offset
        delta = torch.stack(torch.meshgrid(d, d, indexing="ij"), dim=-1).view(1, 2 * r + 1, 2 * r + 1, 2)
        out = []
        for i, corr in enumerate(self.corr_pyramid):
            centroid = coords.reshape(batch * h1 * w1, 1, 1, 2) / 2 ** i
            sampled = _bilinear_sample(corr, centroid + delta)
            out.append(sampled.view(batch, h1, w1, -1))
        return torch.cat(out, dim=-1).permute(0, 3, 1, 2).contiguous().float()


# --------------------------------------------------------------------------------------------
# RAFT (upstream core/raft.py)
# --------------------------------------------------------------------------------------------

class RAFT(nn.Module):
    """RAFT (``small=False``: 5,257,536 parameters) or RAFT-small (``small=True``: 990,162).

    Build with :func:`raft_large` / :func:`raft_small`; load weights with :func:`load_raft`.
    Batch norm in ``cnet`` must run in eval mode for pretrained weights (``model.eval()``, or
    :meth:`freeze_bn` while fine-tuning, as upstream does after the Chairs stage).
    """

    def __init__(self, small: bool = False, dropout: float = 0.0):
        super().__init__()
        self.small = small
        if small:
            self.hidden_dim, self.context_dim = 96, 64
            self.corr_levels, self.corr_radius = 4, 3
            self.fnet = SmallEncoder(output_dim=128, norm_fn="instance", dropout=dropout)
            self.cnet = SmallEncoder(output_dim=96 + 64, norm_fn="none", dropout=dropout)
            self.update_block = SmallUpdateBlock(self.corr_levels, self.corr_radius, hidden_dim=96)
        else:
            self.hidden_dim, self.context_dim = 128, 128
            self.corr_levels, self.corr_radius = 4, 4
            self.fnet = BasicEncoder(output_dim=256, norm_fn="instance", dropout=dropout)
            self.cnet = BasicEncoder(output_dim=128 + 128, norm_fn="batch", dropout=dropout)
            self.update_block = BasicUpdateBlock(self.corr_levels, self.corr_radius, hidden_dim=128)

    @property
    def variant(self) -> str:
        """'large' or 'small'."""
        return "small" if self.small else "large"

    def freeze_bn(self) -> None:
        """Put the batch-norm layers in eval mode (fine-tuning with frozen statistics)."""
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()

    @staticmethod
    def upsample_flow(flow: Tensor, mask: Tensor) -> Tensor:
        """Convex upsampling: flow B×2×h×w, mask B×(9·8·8)×h×w → B×2×8h×8w.

        Each fine pixel is a softmax-weighted combination of the 3×3 coarse neighbours of 8·flow.
        """
        N, _, H, W = flow.shape
        mask = torch.softmax(mask.view(N, 1, 9, 8, 8, H, W), dim=2)
        up_flow = F.unfold(8 * flow, [3, 3], padding=1).view(N, 2, 9, 1, 1, H, W)
        up_flow = torch.sum(mask * up_flow, dim=2)
        return up_flow.permute(0, 1, 4, 2, 5, 3).reshape(N, 2, 8 * H, 8 * W)

    @staticmethod
    def upflow8(flow: Tensor) -> Tensor:
        """Bilinear ×8 upsampling of 8·flow (RAFT-small): B×2×h×w → B×2×8h×8w."""
        h, w = flow.shape[-2:]
        return 8 * F.interpolate(flow, size=(8 * h, 8 * w), mode="bilinear", align_corners=True)

    def forward(self, image1: Tensor, image2: Tensor, iters: int = 12,
                flow_init: Tensor | None = None, test_mode: bool = False):
        """Estimate the flow from image1 to image2.

        Args:
            image1, image2: B×3×H×W RGB in 0..255, H and W multiples of 8 (see InputPadder).
            iters: refinement iterations (12 in training, 20 in demo.py/ToonDecompose, 24-32 in
                upstream's evaluation).
            flow_init: optional warm start, B×2×H/8×W/8 low-resolution flow in 1/8-res pixels.
            test_mode: return only the last prediction (and skip the unused intermediate
                upsampling; the result is the same).

        Returns:
            test_mode false: list of ``iters`` upsampled predictions, each B×2×H×W.
            test_mode true: (low-res flow B×2×H/8×W/8, upsampled flow B×2×H×W).
        """
        if image1.shape != image2.shape or image1.dim() != 4 or image1.shape[1] != 3:
            raise ValueError(f"RAFT needs two B×3×H×W images of one shape, got "
                             f"{tuple(image1.shape)} and {tuple(image2.shape)}")
        H, W = image1.shape[-2:]
        if H % 8 or W % 8:
            raise ValueError(f"RAFT needs H and W divisible by 8, got {H}×{W}; pad with InputPadder")
        fmap1, fmap2 = self.fnet([self.normalize(image1), self.normalize(image2)])
        net, inp = self.context(image1)
        return self.refine(fmap1, fmap2, net, inp, iters=iters, flow_init=flow_init, test_mode=test_mode)

    @staticmethod
    def normalize(image: Tensor) -> Tensor:
        """RGB 0..255 → the −1..1 range the encoders take."""
        return (2 * (image / 255.0) - 1.0).contiguous()

    def features(self, image: Tensor) -> Tensor:
        """The matching features of one B×3×H×W image (0..255) → B×D×H/8×W/8.

        The feature encoder uses instance norm, so this equals the features ``forward`` computes
        for the same image inside its pair: a frame's features can be computed once and reused
        for every pair it takes part in (see :class:`FeatureCache`)."""
        return self.fnet(self.normalize(image))

    def context(self, image1: Tensor) -> tuple[Tensor, Tensor]:
        """The context encoder on the source image (0..255): initial hidden state and context."""
        net, inp = torch.split(self.cnet(self.normalize(image1)), [self.hidden_dim, self.context_dim], dim=1)
        return torch.tanh(net), torch.relu(inp)

    def refine(self, fmap1: Tensor, fmap2: Tensor, net: Tensor, inp: Tensor, iters: int = 12,
               flow_init: Tensor | None = None, test_mode: bool = False):
        """The recurrent part of :meth:`forward`, from the encoders' outputs (same returns)."""
        corr_fn = CorrBlock(fmap1.float(), fmap2.float(), num_levels=self.corr_levels,
                            radius=self.corr_radius)
        N, _, h, w = fmap1.shape
        coords0 = coords_grid(N, h, w, device=fmap1.device)
        coords1 = coords0.clone()
        if flow_init is not None:
            coords1 = coords1 + flow_init

        predictions = []
        flow_up = None
        for itr in range(iters):
            last = itr == iters - 1
            coords1 = coords1.detach()
            corr = corr_fn(coords1)
            flow = coords1 - coords0
            net, up_mask, delta_flow = self.update_block(net, inp, corr, flow,
                                                         upsample=last or not test_mode)
            coords1 = coords1 + delta_flow
            if test_mode and not last:
                continue
            if self.small:
                flow_up = self.upflow8(coords1 - coords0)
            else:
                flow_up = self.upsample_flow(coords1 - coords0, up_mask)
            predictions.append(flow_up)

        if test_mode:
            if flow_up is None:        # iters == 0: the initial flow, upsampled bilinearly
                flow_up = self.upflow8(coords1 - coords0)
            return coords1 - coords0, flow_up
        return predictions


def raft_large(dropout: float = 0.0) -> RAFT:
    """RAFT (large), random weights: 5,257,536 parameters. Load weights with :func:`load_raft`."""
    return RAFT(small=False, dropout=dropout)


def raft_small(dropout: float = 0.0) -> RAFT:
    """RAFT-small, random weights: 990,162 parameters. Load weights with :func:`load_raft`."""
    return RAFT(small=True, dropout=dropout)

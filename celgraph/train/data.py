"""Synthetic optical-flow training pairs from procedural cartoon clips (:mod:`celgraph.synth`).

Every training sample is a pure function of ``(seed, index)``: sample ``i`` belongs to batch
``b = i // batch`` and slot ``j = i % batch``; it is cut from clip number
``c = (b // clip_reuse) * batch + j`` (clip seed ``TRAIN_SEED_BASE + seed * 10**7 + c``), so a batch
holds ``batch`` different clips and each clip serves ``clip_reuse`` consecutive batches before
the next one is rendered. All random choices of the sample come from
``np.random.default_rng([seed, i, 0xF10])``. Nothing depends on global random state, so a run
resumed at step s draws exactly the batches the uninterrupted run would have drawn, with or
without DataLoader workers.

A sample (see :meth:`FlowPairs.sample`):

1. a gap k ∈ {1, …, max_gap} (k = 1 twice as likely as each other gap) and a direction
   (forward t → t+k or backward t → t−k, 50/50) inside a ``n_frames`` clip rendered at
   ``clip_size`` (456×256 by default);
2. the exact ground-truth flow and occlusion for that pair: for |k| = 1 the clip's own
   ``flow_fw``/``flow_bw``; for larger gaps the synth's own exact renderer of flow between two
   arbitrary frames (:func:`pair_flow`), not a composition of adjacent flows (composition would be
   wrong at occlusions and needs resampling);
3. augmentation (RAFT's FlowAugmentor, minus spatial scaling): a random crop; horizontal flip
   (p = 0.5, flow x negated) and vertical flip (p = 0.1, flow y negated); colour jitter
   (brightness, contrast, saturation ±0.4, hue ±0.5/π of a turn, as torchvision's
   ColorJitter(0.4, 0.4, 0.4, 0.5/3.14)) applied with the same parameters to both frames, or
   with independent ones (p = 0.2); an "eraser" (p = 0.5): 1–2 rectangles of frame 2 filled with
   its mean colour, which teaches occlusion.

Arrays are channel-first float32: ``img1``/``img2`` 3×H×W in 0..255 (RAFT's input range),
``flow`` 2×H×W in pixels (channel 0 = +x right, 1 = +y down; img1(p) ≈ img2(p + flow(p))),
``valid`` H×W (1 = counted in the loss: finite flow under 400 px, as upstream), ``occ`` H×W
(1 = occluded in frame 2 or leaving the frame; for metrics only).

Held-out evaluation uses whole 456×256 frames of clips whose integer seeds (:data:`TEST_SEEDS`
10000–10015 for reported numbers, :data:`VAL_SEEDS` 20000–20007 for checkpoint selection) never
occur in training (training clip seeds are ≥ 10**6): see :func:`eval_pairs`.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Iterator, Sequence

import numpy as np

from celgraph.synth import make_clip, metrics

__all__ = [
    "TRAIN_SEED_BASE", "TEST_SEEDS", "VAL_SEEDS", "DataConfig", "FlowPairs", "pair_flow",
    "hflip_pair", "vflip_pair", "color_jitter", "eval_pairs", "collate", "warp",
]

TRAIN_SEED_BASE = 1_000_000
TEST_SEEDS: tuple[int, ...] = tuple(range(10000, 10016))
VAL_SEEDS: tuple[int, ...] = tuple(range(20000, 20008))
MAX_FLOW = 400.0


# --------------------------------------------------------------------------------------------
# ground truth for a pair of frames
# --------------------------------------------------------------------------------------------

def pair_flow(clip, t: int, t2: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact flow (H×W×2 float32) and occlusion (H×W bool) from frame t to frame t2 of a clip.

    Adjacent frames use the clip's stored ``flow_fw``/``flow_bw``; other gaps are rendered by the
    synth's exact per-layer mapping (each pixel follows its owner layer from t to t2: plate and
    sprite transforms, inverse deformation), the same function that made ``flow_fw``.
    """
    if t == t2:
        raise ValueError("pair_flow needs two different frames")
    f = clip.frames[t]
    if t2 == t + 1:
        return f["flow_fw"], f["occ_fw"]
    if t2 == t - 1:
        return f["flow_bw"], f["occ_bw"]
    from celgraph.synth.clip import _flow      # exact flow between any two frames of a clip
    H, W = f["color"].shape[:2]
    return _flow(clip.frames, t, t2, W, H, clip.sprites)


def warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: out(p) = img(p + flow(p)), bilinear, edges replicated. H×W×C, H×W×2
    (:func:`celgraph.synth.metrics.warp_back`)."""
    return metrics.warp_back(img, flow)


# --------------------------------------------------------------------------------------------
# augmentation (HWC numpy, images 0..1)
# --------------------------------------------------------------------------------------------

def hflip_pair(img1, img2, flow, *masks):
    """Mirror left-right: images and masks flip; the flow flips and its x component changes sign."""
    flow = flow[:, ::-1] * np.array([-1.0, 1.0], np.float32)
    return (img1[:, ::-1], img2[:, ::-1], flow, *(m[:, ::-1] for m in masks))


def vflip_pair(img1, img2, flow, *masks):
    """Mirror top-bottom: the flow's y component changes sign."""
    flow = flow[::-1] * np.array([1.0, -1.0], np.float32)
    return (img1[::-1], img2[::-1], flow, *(m[::-1] for m in masks))


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_RGB2YIQ = np.array([[0.299, 0.587, 0.114],
                     [0.595716, -0.274453, -0.321263],
                     [0.211456, -0.522591, 0.311135]], np.float64)
_YIQ2RGB = np.linalg.inv(_RGB2YIQ)


def _jitter_params(rng, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.5 / 3.14):
    return (rng.uniform(1 - brightness, 1 + brightness), rng.uniform(1 - contrast, 1 + contrast),
            rng.uniform(1 - saturation, 1 + saturation), rng.uniform(-hue, hue))


def color_jitter(img: np.ndarray, params) -> np.ndarray:
    """Brightness × b, contrast about the mean grey × c, saturation about the pixel grey × s, hue
    rotated by h turns (in YIQ), clipped to 0..1. ``img`` H×W×3 float 0..1."""
    b, c, s, h = params
    x = img.astype(np.float32) * b
    mean = float((x @ _LUMA).mean())
    x = (x - mean) * c + mean
    grey = (x @ _LUMA)[..., None]
    x = grey + (x - grey) * s
    if h:
        a = 2 * math.pi * h
        rot = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
        x = x @ (_YIQ2RGB @ rot @ _RGB2YIQ).T.astype(np.float32)
    return np.clip(x, 0.0, 1.0)


# --------------------------------------------------------------------------------------------
# the training stream
# --------------------------------------------------------------------------------------------

@dataclass
class DataConfig:
    """What the training stream draws. ``crop`` is (H, W); ``clip_size`` is (W, H) as make_clip."""
    seed: int = 0
    batch: int = 4
    crop: tuple[int, int] = (192, 256)
    clip_size: tuple[int, int] = (456, 256)
    n_frames: int = 6
    max_gap: int = 3
    clip_reuse: int = 4
    hflip_prob: float = 0.5
    vflip_prob: float = 0.1
    jitter: bool = True
    asym_jitter_prob: float = 0.2
    eraser_prob: float = 0.5
    cache_clips: int = 16

    def to_dict(self) -> dict:
        return asdict(self)


class FlowPairs:
    """Map-style dataset of augmented flow pairs: ``ds[i]`` is sample i of the stream described
    in the module docstring (a dict of channel-first float32 arrays). Rendered clips are kept in a
    small LRU cache. Usable as a ``torch.utils.data.Dataset``."""

    def __init__(self, cfg: DataConfig):
        ch, cw = cfg.crop
        W, H = cfg.clip_size
        if ch > H or cw > W:
            raise ValueError(f"crop {ch}×{cw} (H×W) larger than the clips ({H}×{W})")
        if ch % 8 or cw % 8:
            raise ValueError(f"crop {ch}×{cw}: H and W must be multiples of 8 for RAFT")
        if not 1 <= cfg.max_gap < cfg.n_frames:
            raise ValueError(f"max_gap must be in 1..n_frames-1, got {cfg.max_gap}")
        self.cfg = cfg
        self._cache: OrderedDict[int, object] = OrderedDict()
        w = np.array([2.0] + [1.0] * (cfg.max_gap - 1))
        self._gap_p = w / w.sum()

    def __len__(self) -> int:
        return 2 ** 40

    def clip_index(self, i: int) -> int:
        c = self.cfg
        b, j = divmod(int(i), c.batch)
        return (b // max(1, c.clip_reuse)) * c.batch + j

    def clip_seed(self, ci: int) -> int:
        return TRAIN_SEED_BASE + int(self.cfg.seed) * 10_000_000 + int(ci)

    def clip(self, ci: int):
        if ci in self._cache:
            self._cache.move_to_end(ci)
            return self._cache[ci]
        W, H = self.cfg.clip_size
        clip = make_clip(self.clip_seed(ci), W, H, self.cfg.n_frames)
        self._cache[ci] = clip
        while len(self._cache) > max(1, self.cfg.cache_clips):
            self._cache.popitem(last=False)
        return clip

    def sample(self, i: int, augment: bool = True) -> dict:
        """Sample i, as channel-first float32 arrays (see the module docstring) plus ``meta``."""
        c = self.cfg
        rng = np.random.default_rng([int(c.seed), int(i), 0xF10])
        ci = self.clip_index(i)
        clip = self.clip(ci)
        T = len(clip.frames)
        k = int(rng.choice(np.arange(1, c.max_gap + 1), p=self._gap_p))
        backward = bool(rng.random() < 0.5)
        t0 = int(rng.integers(0, T - k))
        t, t2 = (t0 + k, t0) if backward else (t0, t0 + k)
        flow, occ = pair_flow(clip, t, t2)
        img1, img2 = clip.frames[t]["color"], clip.frames[t2]["color"]
        H, W = flow.shape[:2]
        ch, cw = c.crop
        y0, x0 = int(rng.integers(0, H - ch + 1)), int(rng.integers(0, W - cw + 1))
        sl = (slice(y0, y0 + ch), slice(x0, x0 + cw))
        img1, img2, flow, occ = img1[sl], img2[sl], flow[sl], occ[sl]
        flips = []
        if augment:
            if rng.random() < c.hflip_prob:
                img1, img2, flow, occ = hflip_pair(img1, img2, flow, occ)
                flips.append("h")
            if rng.random() < c.vflip_prob:
                img1, img2, flow, occ = vflip_pair(img1, img2, flow, occ)
                flips.append("v")
            if c.jitter:
                p1 = _jitter_params(rng)
                p2 = _jitter_params(rng) if rng.random() < c.asym_jitter_prob else p1
                img1, img2 = color_jitter(img1, p1), color_jitter(img2, p2)
            if rng.random() < c.eraser_prob:
                img2 = np.array(img2, np.float32, copy=True)
                mean = img2.reshape(-1, 3).mean(0)
                lo, hi = max(4, min(ch, cw) // 8), max(5, min(ch, cw) // 4)
                for _ in range(int(rng.integers(1, 3))):
                    x, y = int(rng.integers(0, cw)), int(rng.integers(0, ch))
                    dx, dy = int(rng.integers(lo, hi)), int(rng.integers(lo, hi))
                    img2[y:y + dy, x:x + dx] = mean
        flow = np.asarray(flow, np.float32)
        valid = np.isfinite(flow).all(-1) & (np.linalg.norm(np.nan_to_num(flow), axis=-1) < MAX_FLOW)
        flow = np.nan_to_num(flow)
        chw = lambda a: np.ascontiguousarray(np.moveaxis(np.asarray(a, np.float32), -1, 0))
        return dict(img1=chw(img1) * 255.0, img2=chw(img2) * 255.0, flow=chw(flow),
                    valid=valid.astype(np.float32), occ=np.ascontiguousarray(occ, np.float32),
                    meta=dict(index=int(i), clip_seed=self.clip_seed(ci), t=t, t2=t2, crop=(y0, x0),
                              flips="".join(flips)))

    __getitem__ = sample

    def batch_indices(self, step: int) -> list[int]:
        """The sample indices of training step ``step`` (0-based)."""
        b = self.cfg.batch
        return list(range(step * b, (step + 1) * b))

    def batch(self, step: int) -> dict:
        """Training batch ``step`` as torch tensors (see :func:`collate`)."""
        return collate([self.sample(i) for i in self.batch_indices(step)])

    def batches(self, start: int, stop: int, workers: int = 0) -> Iterator[dict]:
        """Batches start..stop-1, in order; with ``workers`` > 0 through a torch DataLoader
        (the same batches: samples depend on their index only)."""
        if workers <= 0:
            for s in range(start, stop):
                yield self.batch(s)
            return
        import torch
        loader = torch.utils.data.DataLoader(
            _Indexed(self), batch_sampler=[self.batch_indices(s) for s in range(start, stop)],
            num_workers=workers, collate_fn=collate, worker_init_fn=_worker_init,
            persistent_workers=False, prefetch_factor=2)
        yield from loader


class _Indexed:
    def __init__(self, ds: FlowPairs):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        return self.ds.sample(i)


def _worker_init(_):
    import torch
    torch.set_num_threads(1)


def collate(samples: Sequence[dict]) -> dict:
    """Stack samples into torch tensors: img1, img2 B×3×H×W; flow B×2×H×W; valid, occ B×H×W;
    ``meta`` stays a list."""
    import torch
    out = {k: torch.from_numpy(np.stack([s[k] for s in samples])) for k in ("img1", "img2", "flow", "valid", "occ")}
    out["meta"] = [s.get("meta") for s in samples]
    return out


# --------------------------------------------------------------------------------------------
# held-out evaluation pairs
# --------------------------------------------------------------------------------------------

def eval_pairs(seeds: Sequence[int] = TEST_SEEDS, gaps: Sequence[int] = (1, 3), n_frames: int = 8,
               size: tuple[int, int] = (456, 256)) -> list[dict]:
    """Fixed whole-frame evaluation pairs: for each seed a ``make_clip(seed, *size, n_frames)``
    clip; for each gap k the forward pairs t → t+k at t = 0, k+1, 2(k+1), … (k = 1: t = 0, 2, 4, 6;
    k = 3: t = 0, 4 with 8 frames). Each item: img1, img2 (H×W×3 float 0..1), flow (H×W×2), occ
    (H×W bool), seed, t, k."""
    out = []
    for seed in seeds:
        clip = make_clip(int(seed), size[0], size[1], n_frames)
        for k in gaps:
            for t in range(0, n_frames - k, k + 1):
                flow, occ = pair_flow(clip, t, t + k)
                out.append(dict(img1=clip.frames[t]["color"], img2=clip.frames[t + k]["color"],
                                flow=flow, occ=occ, seed=int(seed), t=t, k=int(k)))
    return out

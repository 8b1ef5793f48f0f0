"""Running RAFT on numpy frames: padding to a multiple of 8, the per-frame feature cache shared by
a clip's pairs, and ``raft_flow`` (H×W×3 float 0..1 in, H×W×2 pixels out)."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .network import RAFT

# --------------------------------------------------------------------------------------------
# Padding (upstream core/utils/utils.py)
# --------------------------------------------------------------------------------------------

class InputPadder:
    """Pads images to a multiple of 8 with edge replication, and crops results back.

    mode 'sintel' splits the padding evenly top/bottom and left/right; 'kitti' splits the width
    evenly and puts all the height padding at the bottom.
    """

    def __init__(self, dims: Sequence[int], mode: str = "sintel", multiple: int = 8):
        if mode not in ("sintel", "kitti"):
            raise ValueError(f"InputPadder mode must be 'sintel' or 'kitti', got {mode!r}")
        self.ht, self.wd = int(dims[-2]), int(dims[-1])
        pad_ht = (-self.ht) % multiple
        pad_wd = (-self.wd) % multiple
        if mode == "sintel":
            self._pad = [pad_wd // 2, pad_wd - pad_wd // 2, pad_ht // 2, pad_ht - pad_ht // 2]
        else:
            self._pad = [pad_wd // 2, pad_wd - pad_wd // 2, 0, pad_ht]

    @property
    def padding(self) -> tuple[int, int, int, int]:
        """(left, right, top, bottom) in pixels."""
        return tuple(self._pad)

    def pad(self, *inputs: Tensor) -> list[Tensor]:
        """Each B×C×H×W → B×C×H'×W' with H', W' multiples of 8 (replicated edges)."""
        return [F.pad(x, self._pad, mode="replicate") for x in inputs]

    def unpad(self, x: Tensor) -> Tensor:
        """…×H'×W' → …×H×W: crop the padding off a result."""
        ht, wd = x.shape[-2:]
        left, right, top, bottom = self._pad
        return x[..., top:ht - bottom, left:wd - right]


# --------------------------------------------------------------------------------------------
# numpy frames in, flow out
# --------------------------------------------------------------------------------------------

def _to_tensor(img: np.ndarray) -> Tensor:
    """H×W×C (or N×H×W×C, or H×W) float 0..1 → N×3×H×W float32 0..255."""
    a = np.asarray(img, dtype=np.float32)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an H×W×3 image (or H×W, H×W×1, H×W×4, N×H×W×3), got {np.shape(img)}")
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    a = a[..., :3]                                   # RGBA: the colour alone
    t = torch.from_numpy(np.array(a, np.float32))   # a copy: cached inputs are read-only
    return t.mul_(255.0).permute(0, 3, 1, 2)


class FeatureCache:
    """Per-frame encoder outputs of one model, reused across the frame pairs that share a frame.

    A clip's flow bundle (offsets −3, −1, +1, +3) puts every frame in up to eight pairs; with this
    cache its feature encoder runs once per frame and its context encoder once per source frame,
    instead of once per pair. Keys are the caller's content keys of the (padded) frames; the
    least recently used entries are dropped beyond ``capacity`` frames. Thread-safe.
    """

    def __init__(self, capacity: int = 16):
        self.capacity = int(capacity)
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, compute):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)


def raft_flow(model: RAFT, img1: np.ndarray, img2: np.ndarray, iters: int = 12,
              device="cpu", pad_mode: str = "sintel", cache: FeatureCache | None = None,
              keys: tuple | None = None, net=None) -> np.ndarray:
    """Flow from img1 to img2 with a RAFT model: H×W×3 float 0..1 → H×W×2 float32 pixels.

    img1(p) ≈ img2(p + flow(p)); channel 0 = +x right, 1 = +y down. Also takes N×H×W×3 batches
    (→ N×H×W×2), grey H×W / H×W×1, and RGBA (alpha ignored). Any size: the frames are padded to
    a multiple of 8 (edge replication) and the flow cropped back. Runs under inference mode with
    the model in eval mode (its training flag is restored), on ``device`` (the model is moved
    there; None keeps it where it is). On the CPU the result is deterministic.

    With a :class:`FeatureCache` (one per model) and ``keys`` naming the two frames' contents,
    each frame's encoder outputs are computed once and reused by later pairs: the same flow,
    cheaper over a clip.

    ``net``: an ONNX Runtime or TensorRT net of :mod:`celgraph.models.accel` with ``iters`` fixed in
    it runs in place of the model: an ``accel.RaftSplit`` (encoder and update graphs; with a cache,
    each frame is encoded once, as above) or a whole-pair net (no cache).
    Padded frames under ``accel.RAFT_MIN_SIDE`` (128) px run on the model instead: there the
    coarsest correlation level is one pixel wide, a case the export does not trace.
    """
    a, b = _to_tensor(img1), _to_tensor(img2)
    if a.shape != b.shape:
        raise ValueError(f"frames differ in shape: {np.shape(img1)} vs {np.shape(img2)}")
    if cache is not None and (keys is None or len(keys) != 2 or None in keys):
        raise ValueError("raft_flow with a FeatureCache needs keys=(key1, key2) naming the two frames")
    if device is not None:
        model.to(device)
    dev = next(model.parameters()).device
    padder = InputPadder(a.shape, mode=pad_mode)
    a, b = padder.pad(a.to(dev), b.to(dev))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            if net is not None and min(a.shape[-2:]) >= 128 and hasattr(net, "encode"):
                # encoder and update graphs (accel.RaftSplit): each frame encoded once, like the features below
                tag = (pad_mode, tuple(a.shape), net.tag)
                if cache is None:
                    (fmap1, hidden, inp), (fmap2, _, _) = net.encode(a), net.encode(b)
                else:
                    fmap1, hidden, inp = cache.get(("encoded", keys[0], tag), lambda: net.encode(a))
                    fmap2 = cache.get(("encoded", keys[1], tag), lambda: net.encode(b))[0]
                flow = net.refine(fmap1, fmap2, hidden, inp)
            elif net is not None and min(a.shape[-2:]) >= 128:
                flow = net(a, b)
            elif cache is None:
                _, flow = model(a, b, iters=iters, test_mode=True)
            else:
                tag = (pad_mode, tuple(a.shape))
                fmap1 = cache.get(("features", keys[0], tag), lambda: model.features(a))
                fmap2 = cache.get(("features", keys[1], tag), lambda: model.features(b))
                net, inp = cache.get(("context", keys[0], tag), lambda: model.context(a))
                _, flow = model.refine(fmap1, fmap2, net, inp, iters=iters, test_mode=True)
    finally:
        model.train(was_training)
    out = padder.unpad(flow).permute(0, 2, 3, 1).float().cpu().numpy().astype(np.float32, copy=False)
    return np.ascontiguousarray(out[0] if np.ndim(img1) < 4 else out)

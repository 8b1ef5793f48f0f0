"""Flow between two frames, for every node that needs it: FlowRAFT, WarmupHomography (extra
pairs), Colorize (reference mode). One home for the flow settings (FLOW_PARAMS), the backend
choice, the weights file, its fingerprint and check, and the pair computation with its cache entry.

Declare FLOW_PARAMS in a node's params and call `pair(ctx, ...)`: the pair is cached under one
identity (`PairCache`) keyed by the two images' content keys and the settings, so a pair FlowRAFT
computed is a cache hit for the other nodes and the other way round.
"""
from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from ..core import CheckContext, Choice, Context, Float, Int, Issue, PathParam
from ..core.hashing import file_digest
from ..core.types import as_rgb
from .modelfiles import RUNTIME_PARAM, accelerated, bundled_file, load_model, runtime_issues, weights_issues

BUNDLED_WEIGHTS = {"raft_small": "raft_small_toon.safetensors"}
# What `auto` picks: the backend with the lowest non-occluded EPE on bench/quality.py's synthetic
# clips among those that need no user-supplied file. See bench/results/quality.md: DIS 0.433 px,
# RAFT-small with the bundled toon weights 0.476 px (and about 20× slower on a CPU).
AUTO_BACKEND = "dis"

FLOW_PARAMS = [
    Choice("backend", "auto", choices=("auto", "raft", "raft_small", "dis"),
           help=f"auto = {AUTO_BACKEND} (best on the synthetic benchmark without user files)"),
    PathParam("weights", "", help="RAFT checkpoint (.pth official/torchvision layout, or .safetensors); "
                                  "empty: bundled weights for raft_small", hashed=False),
    Int("iters", 0, min=0, max=64, help="RAFT refinement iterations; 0 = what the weights file recommends "
                                         "(its 'iters' metadata: 8 for the bundled weights), else 12"),
    Float("scale", 1.0, min=0.1, max=1.0, help="working resolution relative to the input"),
    Choice("dis_preset", "medium", choices=("ultrafast", "fast", "medium", "fine"), help="DIS quality/speed"),
    Choice("device", "auto", choices=("auto", "cpu", "cuda"), help="where RAFT runs", hashed=False),
    RUNTIME_PARAM,
]


class PairCache:
    """The identity flow pairs are cached under (Context.cached's owner): FlowRAFT's id, so entries
    written before this module existed stay valid. Bump `version` when a pair's result changes."""
    id, version = "celgraph.FlowRAFT", 1


def bundled_weights(backend: str) -> Path | None:
    return bundled_file(BUNDLED_WEIGHTS.get(backend))


def backend(params) -> str:
    """The backend the params ask for, with `auto` resolved."""
    return AUTO_BACKEND if params["backend"] == "auto" else params["backend"]


def uses_torch(params) -> bool:
    return backend(params) != "dis"


def weights_path(params, ctx: CheckContext) -> Path | None:
    """The RAFT checkpoint: the `weights` param (against the scene's folder) or the bundled file."""
    if params["weights"]:
        return ctx.resolve(params["weights"])
    return bundled_weights(backend(params))


def weight_issues(ctx: CheckContext) -> list[Issue]:
    """The checkpoint check of a node with FLOW_PARAMS (nothing to check for DIS)."""
    b = backend(ctx.params)
    if b == "dis":
        return []
    return weights_issues(weights_path(ctx.params, ctx), ctx.node,
                          f"backend {b} needs a checkpoint: set weights to a RAFT .pth or .safetensors file") + \
        runtime_issues(ctx)


def weights_digest(ctx: Context) -> str | None:
    """The checkpoint's content digest for a node's fingerprint; None for DIS (no file)."""
    if backend(ctx.params) == "dis":
        return None
    return file_digest(weights_path(ctx.params, ctx))


def pair(ctx: Context, from_key: str, to_key: str, img1: np.ndarray, img2: np.ndarray) -> np.ndarray:
    """Flow img1 → img2 (H×W×2, pixels) with the FLOW_PARAMS of ctx.params, as a cache entry keyed
    by the two images' content keys (ctx.input_key) and the settings."""
    parts = {"pair": settings(ctx), "from": from_key, "to": to_key}
    return ctx.cached(parts, lambda: _compute(ctx, as_rgb(img1), as_rgb(img2), (from_key, to_key)), owner=PairCache)


def settings(ctx: Context) -> dict:
    p, b = ctx.params, backend(ctx.params)
    settings = {"backend": b, "scale": p.scale}
    if b == "dis":
        settings["preset"] = p.dis_preset
    else:
        settings.update(iters=_iters(ctx), weights=file_digest(weights_path(p, ctx)))
    return settings


def _iters(ctx: Context) -> int:
    """The iters param, or (0) the weights file's recommendation, else upstream's 12."""
    if ctx.params.iters:
        return ctx.params.iters
    path = weights_path(ctx.params, ctx)
    return (path is not None and _recommended_iters(str(path), file_digest(path))) or 12


def _raft(ctx: Context):
    """(model, feature cache, net): the cache (None without an object cache) lets the pairs of a
    clip share each frame's encoder outputs; net (an encoder and an update graph) runs instead of
    the model when the `runtime` param picks ONNX Runtime or TensorRT, with the same cache."""
    from ..models.raft import FeatureCache, load_raft      # torch: only when RAFT computes
    path = weights_path(ctx.params, ctx)
    (model, _variant), device = load_model(ctx, "raft", path, lambda d: load_raft(path, device=d))
    net, _, _ = accelerated(ctx, path, model, device, iters=_iters(ctx))
    if ctx.objects is None:
        return model, None, net
    return model, ctx.objects.get(("raft", file_digest(path), device, "features"), FeatureCache), net


def _compute(ctx: Context, img1: np.ndarray, img2: np.ndarray, keys: tuple[str, str]) -> np.ndarray:
    p, b = ctx.params, backend(ctx.params)
    h, w = img1.shape[:2]
    if p.scale < 1.0:
        size = (max(8, round(w * p.scale)), max(8, round(h * p.scale)))
        img1 = cv2.resize(np.ascontiguousarray(img1), size, interpolation=cv2.INTER_AREA)
        img2 = cv2.resize(np.ascontiguousarray(img2), size, interpolation=cv2.INTER_AREA)
    if b == "dis":
        from ..models.flow_classical import dis_flow
        flow = dis_flow(img1, img2, preset=p.dis_preset)
    else:
        from ..models.raft import raft_flow
        model, features, net = _raft(ctx)
        flow = raft_flow(model, img1, img2, iters=_iters(ctx), device=None, cache=features, keys=keys, net=net)
    if flow.shape[:2] != (h, w):
        sx, sy = w / flow.shape[1], h / flow.shape[0]
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32([sx, sy])
    return flow.astype(np.float32)


@functools.lru_cache(maxsize=32)
def _recommended_iters(path: str, digest: str) -> int | None:
    """recommended_iters, read once per file content (not on every frame pair)."""
    from ..models.raft import recommended_iters
    return recommended_iters(path)

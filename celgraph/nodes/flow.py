"""Optical flow: FlowRAFT (RAFT / RAFT-small / OpenCV DIS) and a flow visualisation.

FlowRAFT computes, for each frame t, the flow to t+k for every offset k it is asked for (default
−3, −1, +1, +3, as ToonDecompose's step 0). Every (frame, target frame) pair is its own cache
entry, keyed by the two input images' content and the backend settings — so another offset list,
or another node needing the same pair, reuses it instead of recomputing.
"""
from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from .. import colorspace as cs
from ..engine import (Choice, CheckContext, Context, Float, Flow, Image, In, Int, IntList, Issue, NodeType,
                      Out, Path as PathParam)
from ..engine.hashing import file_digest
from ..engine.types import PortType, PortTypeError
from ._weights import bundled_file, weights_issues


def _bundle(value):
    if not isinstance(value, dict):
        raise PortTypeError(f"FlowBundle must be a dict of offset → flow, got {type(value).__name__}")
    out = {}
    for k, v in value.items():
        if not isinstance(v, np.ndarray) or v.ndim != 3 or v.shape[2] != 2:
            raise PortTypeError(f"FlowBundle[{k}] must be an H×W×2 array")
        out[int(k)] = v.astype(np.float32, copy=False)
    return out


FlowBundle = PortType("FlowBundle", "{offset k: H×W×2 flow from frame t to t+k}; offsets outside the clip are "
                                    "absent", _bundle)

BUNDLED_WEIGHTS = {"raft_small": "raft_small_toon.safetensors"}
# What `auto` picks: the backend with the lowest non-occluded EPE on bench/quality.py's synthetic
# clips among those that need no user-supplied file. See bench/results/quality.md: DIS 0.433 px,
# RAFT-small with the bundled toon weights 0.476 px (and about 20× slower on a CPU).
AUTO_BACKEND = "dis"


# The flow settings, shared by every node that computes frame pairs through FlowRAFT.pair()
# (declare them in your node's params and its pairs share FlowRAFT's cache entries).
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
]


def bundled_weights(backend: str) -> Path | None:
    return bundled_file(BUNDLED_WEIGHTS.get(backend))


class FlowRAFT(NodeType):
    """Optical flow between frames t and t+k (RAFT, RAFT-small or OpenCV DIS).

    Outputs the forward (t→t+1) and backward (t→t−1) flow as 2-channel images a compositor can
    write to EXR (zero where the neighbour frame is outside the clip), the bundle of every
    requested offset for the decomposition nodes, and a colour-wheel preview of the forward flow.
    Backends: `dis` needs no weights; `raft_small` uses celgraph's own toon-trained weights unless
    `weights` names a file; `raft` (large) needs `weights` — e.g. the official raft-things.pth or
    raft-sintel.pth, loaded safely (weights only). `auto` picks what bench/quality.py shows is best.
    """
    id, version, category = "celgraph.FlowRAFT", 2, "Flow"
    color_space = cs.DISPLAY                         # RAFT and DIS were tuned on sRGB frames
    inputs = [In("image", Image, help="the clip")]
    outputs = [Out("forward", Flow, "t → t+1, pixels (+x right, +y down)"),
               Out("backward", Flow, "t → t−1"),
               Out("bundle", FlowBundle, "every requested offset"),
               Out("preview", Image, "forward flow on a colour wheel")]
    params = [
        IntList("offsets", [-3, -1, 1, 3], min=-32, max=32, help="frame offsets k to compute (t → t+k)"),
        *FLOW_PARAMS,
    ]
    device = "any"

    # ---- interface hooks --------------------------------------------------------------
    def _backend(self, params) -> str:
        return AUTO_BACKEND if params["backend"] == "auto" else params["backend"]

    def _weights_path(self, params, ctx: CheckContext) -> Path | None:
        if params["weights"]:
            return ctx.resolve(params["weights"])
        return bundled_weights(self._backend(params))

    def uses_torch(self, params) -> bool:
        return self._backend(params) != "dis"

    def check(self, params, ctx: CheckContext) -> list[Issue]:
        if 0 in params["offsets"]:
            return [Issue("param_out_of_range", "offset 0 is the frame itself", ctx.node, "offsets")]
        return self.weight_issues(params, ctx)

    def weight_issues(self, params, ctx: CheckContext) -> list[Issue]:
        """The checkpoint checks (also for nodes that compute pairs through :meth:`pair`)."""
        backend = self._backend(params)
        if backend == "dis":
            return []
        return weights_issues(self._weights_path(params, ctx), ctx.node,
                              f"backend {backend} needs a checkpoint: set weights to a RAFT .pth or .safetensors file")

    def _targets(self, ctx: Context) -> dict[int, int]:
        frames = set(ctx.frames)
        wanted = set(ctx.params.offsets) | {1, -1}
        return {k: ctx.frame + k for k in sorted(wanted) if ctx.frame + k in frames}

    def frames_needed(self, ctx: Context):
        return {"image": sorted({ctx.frame, *self._targets(ctx).values()})}

    def fingerprint(self, ctx: Context):
        if self._backend(ctx.params) == "dis":
            return None
        return {"weights": file_digest(self._weights_path(ctx.params, ctx))}

    # ---- compute ------------------------------------------------------------------------
    def _pair_settings(self, ctx: Context) -> dict:
        p, backend = ctx.params, self._backend(ctx.params)
        settings = {"backend": backend, "scale": p.scale}
        if backend == "dis":
            settings["preset"] = p.dis_preset
        else:
            settings.update(iters=self._iters(ctx), weights=file_digest(self._weights_path(p, ctx)))
        return settings

    def _iters(self, ctx: Context) -> int:
        """The iters param, or (0) the weights file's recommendation, else upstream's 12."""
        if ctx.params.iters:
            return ctx.params.iters
        path = self._weights_path(ctx.params, ctx)
        return (path is not None and _recommended_iters(str(path), file_digest(path))) or 12

    def _model(self, ctx: Context):
        """(model, device, feature cache); the cache (None without an object cache) lets the pairs
        of a clip share each frame's encoder outputs."""
        from ..models.raft import FeatureCache, load_raft
        path = self._weights_path(ctx.params, ctx)
        device = ctx.device if ctx.params.device == "auto" else ctx.params.device
        key = ("raft", file_digest(path), device)
        if ctx.objects is None:
            return load_raft(path, device=device)[0], device, None
        model, _variant = ctx.objects.get(key, lambda: load_raft(path, device=device))
        return model, device, ctx.objects.get(key + ("features",), FeatureCache)

    def _pair(self, ctx: Context, img1: np.ndarray, img2: np.ndarray, keys: tuple[str, str]) -> np.ndarray:
        p, backend = ctx.params, self._backend(ctx.params)
        h, w = img1.shape[:2]
        if p.scale < 1.0:
            size = (max(8, round(w * p.scale)), max(8, round(h * p.scale)))
            img1 = cv2.resize(np.ascontiguousarray(img1), size, interpolation=cv2.INTER_AREA)
            img2 = cv2.resize(np.ascontiguousarray(img2), size, interpolation=cv2.INTER_AREA)
        if backend == "dis":
            from ..models.flow_classical import dis_flow
            flow = dis_flow(img1, img2, preset=p.dis_preset)
        else:
            from ..models.raft import raft_flow
            model, device, features = self._model(ctx)
            flow = raft_flow(model, img1, img2, iters=self._iters(ctx), device=None, cache=features,
                             keys=(keys[0], keys[1]))
        if flow.shape[:2] != (h, w):
            sx, sy = w / flow.shape[1], h / flow.shape[0]
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32([sx, sy])
        return flow.astype(np.float32)

    def pair(self, ctx: Context, from_key: str, to_key: str, img1: np.ndarray, img2: np.ndarray) -> np.ndarray:
        """Flow img1 → img2 with the FLOW_PARAMS of ctx.params, as a FlowRAFT cache entry keyed by the
        two images' content keys (ctx.input_key). Other nodes call this to share FlowRAFT's pairs."""
        parts = {"pair": self._pair_settings(ctx), "from": from_key, "to": to_key}
        return ctx.cached(parts, lambda: self._pair(ctx, _rgb(img1), _rgb(img2), (from_key, to_key)),
                          owner=FlowRAFT)

    def compute(self, ctx: Context, image: dict):
        image = cs.node_in(self, image)
        t = ctx.frame
        bundle = {}
        targets = self._targets(ctx)
        for i, (k, target) in enumerate(targets.items()):
            bundle[k] = self.pair(ctx, ctx.input_key("image", t), ctx.input_key("image", target),
                                  image[t], image[target])
            ctx.progress(i + 1, len(targets), f"flow {t}→{target}")
        h, w = image[t].shape[:2]
        zero = np.zeros((h, w, 2), np.float32)
        forward, backward = bundle.get(1, zero), bundle.get(-1, zero)
        from ..models.flow_viz import flow_to_color
        return {"forward": forward, "backward": backward,
                "bundle": {k: v for k, v in bundle.items() if k in ctx.params.offsets},
                "preview": cs.node_out(self, flow_to_color(forward))}


class FlowViz(NodeType):
    """Flow → colour-wheel image (hue = direction, saturation = speed), for previews and QC."""
    id, version, category = "celgraph.FlowViz", 2, "Flow"
    color_space = cs.DISPLAY                         # the colour wheel is a display image
    inputs = [In("flow", Flow)]
    outputs = [Out("image", Image)]
    params = [Float("max_flow", 0.0, min=0.0, max=10000.0,
                    help="speed drawn at full saturation, in pixels; 0 = the frame's largest")]

    def compute(self, ctx: Context, flow):
        from ..models.flow_viz import flow_to_color
        return {"image": cs.node_out(self, flow_to_color(flow, ctx.params.max_flow or None))}


def _rgb(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img, np.float32)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    return img[:, :, :3]


@functools.lru_cache(maxsize=32)
def _recommended_iters(path: str, digest: str) -> int | None:
    """recommended_iters, read once per file content (not on every frame pair)."""
    from ..models.raft import recommended_iters
    return recommended_iters(path)

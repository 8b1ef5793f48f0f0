"""Optical flow: FlowRAFT (RAFT / RAFT-small / OpenCV DIS) and a flow visualisation.

FlowRAFT computes, for each frame t, the flow to t+k for every offset k it is asked for (default
−3, −1, +1, +3, as ToonDecompose's step 0). Every (frame, target frame) pair is its own cache
entry, keyed by the two input images' content and the backend settings — so another offset list,
or another node needing the same pair, reuses it instead of recomputing.
"""
from __future__ import annotations

import numpy as np

from .. import colorspace as cs
from ..core import CheckContext, Context, Float, Flow, Image, In, IntList, Issue, NodeType, Out
from ..core.types import PortType, PortTypeError
from . import flowpairs


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

# the flow settings, backend, weights and pair computation live in flowpairs.py (shared with
# WarmupHomography and Colorize); re-exported here where they were first defined
AUTO_BACKEND, BUNDLED_WEIGHTS, FLOW_PARAMS, bundled_weights = (flowpairs.AUTO_BACKEND, flowpairs.BUNDLED_WEIGHTS,
                                                              flowpairs.FLOW_PARAMS, flowpairs.bundled_weights)


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
    def uses_torch(self, params) -> bool:
        return flowpairs.uses_torch(params)

    def check(self, ctx: CheckContext) -> list[Issue]:
        if 0 in ctx.params["offsets"]:
            return [Issue("param_out_of_range", "offset 0 is the frame itself", ctx.node, "offsets")]
        return flowpairs.weight_issues(ctx)

    def _targets(self, ctx: Context) -> dict[int, int]:
        frames = set(ctx.frames)
        wanted = set(ctx.params.offsets) | {1, -1}
        return {k: ctx.frame + k for k in sorted(wanted) if ctx.frame + k in frames}

    def frames_needed(self, ctx: Context):
        return {"image": sorted({ctx.frame, *self._targets(ctx).values()})}

    def fingerprint(self, ctx: Context):
        digest = flowpairs.weights_digest(ctx)
        return None if digest is None else {"weights": digest}

    # ---- compute ------------------------------------------------------------------------
    def compute(self, ctx: Context, image: dict):
        image = cs.node_in(self, image)
        t = ctx.frame
        bundle = {}
        targets = self._targets(ctx)
        for i, (k, target) in enumerate(targets.items()):
            bundle[k] = flowpairs.pair(ctx, ctx.input_key("image", t), ctx.input_key("image", target),
                                       image[t], image[target])
            ctx.progress(i + 1, len(targets), f"flow {t}→{target}")
        h, w = image[t].shape[:2]
        zero = np.zeros((h, w, 2), np.float32)
        forward, backward = bundle.get(1, zero), bundle.get(-1, zero)
        out = {"forward": forward, "backward": backward,
               "bundle": {k: v for k, v in bundle.items() if k in ctx.params.offsets}}
        if ctx.wants("preview"):                 # a colour conversion of the frame: only when read
            from ..models.flow_viz import flow_to_color
            out["preview"] = cs.node_out(self, flow_to_color(forward))
        return out


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

"""SynthClip: a procedural cartoon clip with exact ground truth, so scenes run with no external data."""
from __future__ import annotations

import numpy as np

from .. import colorspace as cs
from ..core import Bool, Choice, Context, Flow, Image, Int, Labels, LineArt, Mask, NodeType, Out, Transforms


class SynthClip(NodeType):
    """A procedurally drawn cartoon clip (painted plate, 1-4 outlined cel-shaded sprites moving over
    it) with its exact ground truth: line layer, flat colours, regions, objects, flow, transforms.

    Deterministic from the seed. The clip has as many frames as the scene; frame i of the scene's
    frame list is clip frame i. See docs/synth.md for the conventions.
    """
    id, version, category = "celgraph.SynthClip", 2, "Source"
    color_space = cs.DISPLAY                         # painted in sRGB (the training data's space)
    scope = "clip"
    outputs = [
        Out("image", Image, "the colour frame (RGB)"),
        Out("lines", LineArt, "ground-truth ink coverage of the sprites' line art"),
        Out("fill", Image, "the colour layer without lines"),
        Out("regions", Labels, "flat-colour region ids (0 = background; shadows are their own regions)"),
        Out("objects", Labels, "visible object per pixel: 0 = background plate, k = sprite k (1-based)"),
        Out("flow_fw", Flow, "exact flow t → next frame (zero on the last frame)"),
        Out("flow_bw", Flow, "exact flow t → previous frame (zero on the first frame)"),
        Out("occ_fw", Mask, "1 where the pixel is hidden or leaves the frame in the next frame"),
        Out("transforms", Transforms, "per object (plate first, then sprites) frame → canvas 3×3"),
    ]
    params = [
        Int("seed", 0, min=0, max=2**31 - 1, help="same seed, same clip"),
        Int("width", 456, min=32, max=4096, help="frame width in pixels"),
        Int("height", 256, min=32, max=4096, help="frame height in pixels"),
        Int("sprites", 0, min=0, max=4, help="number of sprites; 0 = random 1-4"),
        Bool("deform", True, help="mild non-rigid deformation of the sprites"),
        Choice("background", "painted", choices=("painted", "detailed"),
               help="painted: a field, town or room of soft painted shapes; detailed: a busy street of "
                    "outlined façades, window frames, lettered signs, leaves and cobbles"),
    ]

    def compute(self, ctx: Context):
        from ..synth import make_clip
        p = ctx.params
        ctx.progress(0, 1, "drawing clip")
        clip = make_clip(p.seed, width=p.width, height=p.height, n_frames=len(ctx.frames),
                         n_sprites=p.sprites or None, deform=p.deform, background=p.background)
        out = {name: {} for name in (o.name for o in self.outputs)}
        for f, fr in zip(ctx.frames, clip.frames):
            alpha = fr["alpha"]
            objects = np.where(alpha.max(axis=0) >= 0.5, alpha.argmax(axis=0) + 1, 0).astype(np.int32)
            out["image"][f] = fr["color"]
            out["lines"][f] = fr["lines"]
            out["fill"][f] = fr["fill"]
            out["regions"][f] = fr["regions"]
            out["objects"][f] = objects
            out["flow_fw"][f] = fr["flow_fw"]
            out["flow_bw"][f] = fr["flow_bw"]
            out["occ_fw"][f] = fr["occ_fw"].astype(np.float32)
            out["transforms"][f] = np.concatenate([fr["plate_transform"][None], fr["transforms"]], axis=0)
        return {**out, "image": cs.node_out(self, out["image"]), "fill": cs.node_out(self, out["fill"])}

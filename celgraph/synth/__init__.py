"""celgraph.synth: procedural cartoon clips and line art with exact ground truth.

Pure numpy + OpenCV + SciPy; imports nothing else from celgraph.  Everything is deterministic
for a given seed (numpy Generator only, no global random state).

    from celgraph.synth import make_clip, make_lineart, degrade_lines, degrade_photo, metrics
    clip = make_clip(0)                 # 456x256, 16 frames, 1-4 sprites
    f = clip.frames[3]                  # dict: color, lines, fill, regions, parts, alpha, ...
    arrays = clip.to_dict()             # flat dict of stacked arrays (+ 'meta' JSON string)

Visualisation helpers live in celgraph.synth.viz.  See docs/synth.md for the data and its conventions.
"""
from . import metrics
from .clip import FRAME_KEYS, Clip, Deformation, Sprite, make_clip
from .degrade import degrade_photo, halftone
from .lineart import degrade_lines, make_lineart

__all__ = [
    "FRAME_KEYS", "Clip", "Deformation", "Sprite", "make_clip", "make_lineart", "degrade_lines",
    "degrade_photo", "halftone", "metrics",
]

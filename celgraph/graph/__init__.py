"""The scene model (above `celgraph.core`): Graph, node instances, links, scene.json load/save,
validation and resolution (a scene's node types, normalised params and frames, checked once)."""
from ..core.node import normalize_params
from .frames import FrameRangeError, format_frames, parse_frames
from .scene import Graph, NodeHandle, NodeSpec, OutputRef, load_scene
from .validate import ResolvedGraph, ResolvedNode, resolve, validate

__all__ = ["Graph", "NodeHandle", "NodeSpec", "OutputRef", "load_scene", "validate", "resolve", "ResolvedGraph",
           "ResolvedNode", "normalize_params", "parse_frames", "format_frames", "FrameRangeError"]

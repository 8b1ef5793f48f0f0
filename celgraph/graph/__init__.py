"""The scene model: Graph, node instances, links, scene.json load/save, validation, builder API."""
from .frames import FrameRangeError, format_frames, parse_frames
from .scene import Graph, NodeHandle, NodeSpec, OutputRef, load_scene
from .validate import normalize_params, validate

__all__ = ["Graph", "NodeHandle", "NodeSpec", "OutputRef", "load_scene", "validate", "normalize_params",
           "parse_frames", "format_frames", "FrameRangeError"]
